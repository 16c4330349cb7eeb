//! The README's command-line walk-through, run as written (through bash, with the built `opsgate`
//! on the PATH) against a test server: every line exits as its comment says.
//!
//! Two things are not literal: `OPSGATE_SERVER` points at the test server instead of port 50051,
//! and the README's "... every deliverable ..." line is done here, by each deliverable's owner and
//! approver.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use opsgate_tests::{TestDb, TestServer};

/// The walk-through's code block, as logical lines (continuations joined).
fn walk_through() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let section = readme
        .split("## A transition from the command line")
        .nth(1)
        .expect("the README has the walk-through section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a sh block");
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    lines
}

/// Runs `lines` in one bash, checking each command's exit code: 1 where its comment says
/// `# exit 1`, 0 otherwise. Returns what the script printed with `report` at the end.
async fn run(lines: &[String], server: &str, report: &str) -> String {
    let mut script = String::from("set -u\n");
    let mut expected = Vec::new();
    for line in lines {
        let command = line.trim();
        if command.is_empty() || command.starts_with('#') {
            continue;
        }
        let command = command.replace("http://127.0.0.1:50051", server);
        let code = if command.contains("# exit 1") { 1 } else { 0 };
        script.push_str(&format!("{command}\necho \"__rc {} $?\"\n", expected.len()));
        expected.push((command, code));
    }
    script.push_str(report);
    let bin = Path::new(env!("CARGO_BIN_EXE_opsgate")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("PATH", path)
        .env_remove("OPSGATE_ACTOR")
        .env_remove("OPSGATE_SERVER")
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (i, (command, code)) in expected.iter().enumerate() {
        let got = stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("__rc {i} ")))
            .unwrap_or_else(|| panic!("`{command}` did not run:\n{stdout}\n{stderr}"));
        assert_eq!(
            got,
            code.to_string(),
            "`{command}` exited {got}, the README says {code}:\n{stdout}\n{stderr}"
        );
    }
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_runs_as_written() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db).await;
    let lines = walk_through();
    let split = lines
        .iter()
        .position(|l| l.contains("# ... every deliverable"))
        .expect("the README's placeholder line");
    let exports: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("export "))
        .cloned()
        .collect();

    let out = run(&lines[..split], &server.url, "echo \"__id $ID\"\n").await;
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("__id "))
        .unwrap()
        .to_owned();
    // `transition get` shows the owner, the approval policy, who approved, and the round.
    assert!(
        out.contains(
            "owner project_manager, approval any of role service_desk_lead, approved by José Müller, round 2"
        ),
        "{out}"
    );

    // "... every deliverable, each submitted by its owner and approved by its approvers ..."
    let mut c = server.clients().await;
    let t = opsgate_tests::get(&mut c, &id).await;
    for n in t.nodes.iter().filter(|n| {
        n.kind == opsgate_proto::v1::NodeKind::Deliverable as i32
            && !n.after_go_live
            && n.id != "support-contacts"
    }) {
        let owner = match n.owner_role.as_str() {
            "technical_lead" => "Tess",
            _ => "Pat Doe",
        };
        let approver = match n.approver_role.as_str() {
            "operations_lead" => "Olga",
            "service_owner" => "Owen",
            _ => "José Müller",
        };
        opsgate_tests::submit(&mut c, &id, &n.id, owner)
            .await
            .unwrap();
        opsgate_tests::review(
            &mut c,
            &id,
            &n.id,
            opsgate_proto::v1::ReviewDecision::Approve,
            "",
            approver,
        )
        .await
        .unwrap();
    }

    let mut rest = exports;
    rest.push(format!("ID={id}"));
    rest.extend(lines[split + 1..].iter().cloned());
    let out = run(&rest, &server.url, "").await;
    assert!(out.contains("status: handed over"), "{out}");
    server.stop().await;
}
