//! The `opsgate` binary as a user and a CI pipeline run it: exit codes and what it prints.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use opsgate_tests::{TestDb, TestServer, invalid_workflows_dir, workflows_dir};

async fn opsgate(server: &str, actor: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsgate"));
    cmd.args(args)
        .env("OPSGATE_SERVER", server)
        .env_remove("OPSGATE_ACTOR");
    if let Some(a) = actor {
        cmd.env("OPSGATE_ACTOR", a);
    }
    cmd.output().await.expect("run opsgate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn workflow_validate_exits_0_when_valid_and_1_with_located_problems() {
    let shipped = workflows_dir().join("standard-transition.yaml");
    let out = opsgate(
        "http://127.0.0.1:9",
        None,
        &["workflow", "validate", shipped.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("ok (standard-transition, 14 nodes)"));

    let dir = invalid_workflows_dir();
    let cycle = dir.join("cycle.yaml");
    let unknown = dir.join("unknown-need.yaml");
    let out = opsgate(
        "http://127.0.0.1:9",
        None,
        &[
            "workflow",
            "validate",
            shipped.to_str().unwrap(),
            cycle.to_str().unwrap(),
            unknown.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let expected_cycle = format!(
        "{}:6:9: needs form a cycle: resolver-group -> monitoring -> runbook -> resolver-group (each node needs the next)",
        cycle.display()
    );
    assert!(text.contains(&expected_cycle), "{text}");
    assert!(
        text.contains(&format!(
            "{}:13:31: unknown node 'knowledge-article'",
            unknown.display()
        )),
        "{text}"
    );

    let out = opsgate(
        "http://127.0.0.1:9",
        None,
        &["workflow", "validate", "/no/such/file.yaml"],
    )
    .await;
    // A file that cannot be read is an error (2), not a negative answer (1).
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/no/such/file.yaml: cannot read"));

    // Bytes that are not UTF-8 are located like every other problem.
    let dir = tempfile::tempdir().unwrap();
    let latin1 = dir.path().join("latin1.yaml");
    std::fs::write(&latin1, b"name: x\ndescription: caf\xe9 menu\n").unwrap();
    let out = opsgate(
        "http://127.0.0.1:9",
        None,
        &["workflow", "validate", latin1.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out).trim(),
        format!(
            "{}:2:17: not UTF-8 text (byte 0xE9); save the file as UTF-8",
            latin1.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_check_exits_1_when_closed_0_when_open_2_on_error() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db).await;
    let url = server.url.as_str();
    let go_live = opsgate_tests::go_live();

    let start = [
        "transition",
        "start",
        "--workflow",
        "standard-transition",
        "--service",
        "billing",
        "--service-version",
        "5.0",
        "--project-manager",
        "Pat",
        "--service-manager",
        "Sam",
        "--go-live",
        &go_live,
        "--participant",
        "service_desk_lead=José Müller,Lee",
        "--participant",
        "technical_lead=Tess",
        "--participant",
        "operations_lead=Olga",
        "--participant",
        "service_owner=Owen",
        "-q",
    ];
    let out = opsgate(url, None, &start).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--as NAME or OPSGATE_ACTOR"),
        "{}",
        stderr(&out)
    );

    let out = opsgate(url, Some("Pat"), &start).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // -q prints the id alone, for ID=$(opsgate transition start -q ...).
    let id = stdout(&out).trim().to_owned();
    assert_eq!(id.len(), 36, "{id}");

    let out = opsgate(
        url,
        None,
        &["gate", "check", "--service", "billing", "--version", "5.0"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(": CLOSED"), "{text}");
    assert!(
        text.contains("deliverable 'support-contacts' (Support contacts and escalation paths) is open, waiting on role project_manager: Pat"),
        "{text}"
    );

    let out = opsgate(
        url,
        Some("Tess"),
        &[
            "deliverable",
            "submit",
            &id,
            "runbook",
            "--link",
            "https://x",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "error: deliverable 'runbook' is locked and cannot be submitted: it waits on 'monitoring' (locked) (failed precondition)"
    );

    let get = opsgate(url, None, &["transition", "get", &id]).await;
    let order: Vec<String> = stdout(&get)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("deliverable"))
        .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        // Post-go-live support comes after the gate.
        .filter(|d| d != "hypercare-report")
        .collect();
    assert_eq!(order.len(), 7, "{}", stdout(&get));
    for d in &order {
        let owner = opsgate_tests::owner_of(d);
        let approver = match opsgate_tests::approver_of(d) {
            // A name that is not ASCII acts through the CLI like any other.
            "Dana" => "José Müller",
            other => other,
        };
        let out = opsgate(
            url,
            Some(owner),
            &[
                "deliverable",
                "submit",
                &id,
                d,
                "--text",
                "done",
                "--link",
                "https://kb.example/x",
            ],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{d}: {}", stderr(&out));
        let out = opsgate(url, Some(approver), &["deliverable", "approve", &id, d]).await;
        assert_eq!(out.status.code(), Some(0), "{d}: {}", stderr(&out));
    }
    let get = opsgate(url, None, &["transition", "get", &id]).await;
    assert!(
        stdout(&get).contains("approval any of role service_desk_lead, approved by José Müller"),
        "{}",
        stdout(&get)
    );

    let out = opsgate(url, None, &["gate", "check", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("waiting on service manager Sam to accept the handover"));
    let out = opsgate(url, None, &["gate", "check", &id, "--require-accepted"]).await;
    assert_eq!(out.status.code(), Some(1));

    // The project manager cannot accept their own handover.
    let out = opsgate(url, Some("Pat"), &["handover", "accept", &id]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Pat may not accept the handover: only the transition's service manager, Sam, may (permission denied)"),
        "{}",
        stderr(&out)
    );
    // A bare host:port (as grpcurl takes it) works as --server.
    let bare = url.trim_start_matches("http://");
    let out = opsgate(
        bare,
        Some("Sam"),
        &["handover", "accept", &id, "--comment", "ours now"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("status: handed over"),
        "{}",
        stdout(&out)
    );
    let out = opsgate(url, None, &["gate", "check", &id, "--require-accepted"]).await;
    assert_eq!(out.status.code(), Some(0));

    let out = opsgate(
        url,
        None,
        &["gate", "check", "01900000-0000-7000-8000-000000000000"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not found"));
    server.stop().await;

    let out = opsgate("http://127.0.0.1:1", None, &["gate", "check", &id]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot reach the opsgate server at http://127.0.0.1:1"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_register_reports_new_and_unchanged_versions() {
    let db = TestDb::sqlite();
    let server = TestServer::start_with(&db, None).await;
    let file = workflows_dir().join("standard-transition.yaml");
    let file = file.to_str().unwrap();
    let out = opsgate(&server.url, None, &["workflow", "register", file]).await;
    assert_eq!(out.status.code(), Some(2), "registering needs an actor");
    let out = opsgate(&server.url, Some("Smo"), &["workflow", "register", file]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with("standard-transition v1 registered\n"),
        "{}",
        stdout(&out)
    );
    let out = opsgate(&server.url, Some("Smo"), &["workflow", "register", file]).await;
    assert!(stdout(&out).ends_with("standard-transition v1 unchanged\n"));
    let bad = invalid_workflows_dir().join("duplicate-id.yaml");
    let out = opsgate(
        &server.url,
        Some("Smo"),
        &["workflow", "register", bad.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(":8:9: duplicate id 'sla': already defined at line 5, column 9"),
        "{}",
        stderr(&out)
    );

    // A changed file becomes v2; diff compares registered versions, and a version with a file.
    let dir = tempfile::tempdir().unwrap();
    let shipped = workflows_dir();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    for entry in std::fs::read_dir(shipped.join("templates")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("templates").join(entry.file_name()),
        )
        .unwrap();
    }
    let changed = dir.path().join("standard-transition.yaml");
    let source = std::fs::read_to_string(file).unwrap();
    std::fs::write(
        &changed,
        source.replace("    effort: 10d\n", "    effort: 15d\n"),
    )
    .unwrap();
    let changed = changed.to_str().unwrap();
    let out = opsgate(&server.url, Some("Smo"), &["workflow", "register", changed]).await;
    assert!(stdout(&out).ends_with("standard-transition v2 registered\n"));
    for (old, new, says) in [
        (
            "standard-transition@1",
            "standard-transition@latest",
            "~ deliverable sla: effort: '10d' -> '15d'\n",
        ),
        (
            "standard-transition@2",
            file,
            "~ deliverable sla: effort: '15d' -> '10d'\n",
        ),
        ("standard-transition@2", changed, "no changes\n"),
    ] {
        let out = opsgate(&server.url, None, &["workflow", "diff", old, new]).await;
        assert_eq!(out.status.code(), Some(0), "{old} {new}: {}", stderr(&out));
        assert_eq!(stdout(&out), says, "{old} {new}");
    }
    for (bad, says) in [
        (
            "standard-transition@two",
            "standard-transition@two: 'two' is not a version; give a number from 1, or latest",
        ),
        ("standard-transition@9", "standard-transition@9: "),
        (
            "no-such-file.yaml",
            "no-such-file.yaml: no such file; name a workflow file, or a registered version as NAME@VERSION",
        ),
    ] {
        let out = opsgate(&server.url, None, &["workflow", "diff", bad, file]).await;
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(stderr(&out).contains(says), "{bad}: {}", stderr(&out));
    }
    server.stop().await;
}

#[tokio::test]
async fn the_committed_json_schema_is_the_one_the_binary_prints() {
    let out = opsgate("http://127.0.0.1:9", None, &["workflow", "schema"]).await;
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/workflow.schema.json"
    ))
    .unwrap();
    assert_eq!(
        stdout(&out),
        committed,
        "docs/workflow.schema.json is stale: run `opsgate workflow schema > docs/workflow.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let deliverable = &schema["$defs"]["Deliverable"]["properties"];
    for field in ["owner", "approval", "evidence", "required", "due", "needs"] {
        assert!(
            deliverable.get(field).is_some(),
            "schema lacks deliverable.{field}"
        );
    }
}

#[tokio::test]
async fn plan_graph_and_diff_work_offline() {
    let shipped = workflows_dir().join("standard-transition.yaml");
    let file = shipped.to_str().unwrap();
    let none = "http://127.0.0.1:9";

    let out = opsgate(
        none,
        None,
        &[
            "workflow",
            "plan",
            file,
            "--start",
            "2026-11-02",
            "--go-live",
            "2026-12-14",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("critical path: startup-meeting -> support-contacts -> resolver-group -> monitoring -> runbook -> readiness-review -> operations-gate"),
        "{text}"
    );
    assert!(text.contains("nothing is late for this go-live date"));
    // Three weeks earlier the SLA (due go_live - 20d, ten days of effort) cannot be made: exit 1 names it.
    let out = opsgate(
        none,
        None,
        &[
            "workflow",
            "plan",
            file,
            "--start",
            "2026-11-02",
            "--go-live",
            "2026-11-23",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("late for this go-live date: "),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("sla ") && l.ends_with("LATE")),
        "{}",
        stdout(&out)
    );

    let out = opsgate(
        none,
        None,
        &["workflow", "graph", file, "--format", "mermaid"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("flowchart LR\n"));
    assert!(
        text.contains("  knowledge_articles --> service_desk_training\n"),
        "{text}"
    );
    assert!(
        text.contains("operations_gate{{\"Operations gate"),
        "{text}"
    );
    let out = opsgate(none, None, &["workflow", "graph", file]).await;
    assert!(stdout(&out).contains("\"knowledge-articles\" -> \"service-desk-training\";"));

    let dir = tempfile::tempdir().unwrap();
    // The workflow's templates go with it (they are checked beside the file).
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    for entry in
        std::fs::read_dir(std::path::Path::new(&shipped).with_file_name("templates")).unwrap()
    {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), templates.join(entry.file_name())).unwrap();
    }
    let changed = dir.path().join("changed.yaml");
    let source = std::fs::read_to_string(&shipped).unwrap();
    std::fs::write(
        &changed,
        source.replace("    effort: 10d\n", "    effort: 15d\n"),
    )
    .unwrap();
    let out = opsgate(
        none,
        None,
        &["workflow", "diff", file, changed.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "~ deliverable sla: effort: '10d' -> '15d'\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_describes_every_flag_and_serve_shows_only_its_own() {
    let out = opsgate("http://127.0.0.1:9", None, &["serve", "--help"]).await;
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    assert!(help.contains("--database-url"), "{help}");
    assert!(
        !help.contains("--server") && !help.contains("--as"),
        "{help}"
    );

    let out = opsgate(
        "http://127.0.0.1:9",
        None,
        &["transition", "start", "--help"],
    )
    .await;
    let help = stdout(&out);
    for flag in [
        "--project-manager",
        "--service-manager",
        "--allow-past-go-live",
        "--quiet",
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().trim_start_matches("-q, ").starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} missing:\n{help}"));
        // The description is on the line itself or the next one (clap's long help).
        let i = help.lines().position(|l| l == line).unwrap();
        let next = help.lines().nth(i + 1).unwrap_or_default();
        let described = line
            .split_once(">  ")
            .is_some_and(|(_, d)| !d.trim().is_empty())
            || !next.trim().is_empty() && !next.trim_start().starts_with('-');
        assert!(described, "{flag} has no description:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_database_url_is_a_configuration_error() {
    for (url, says) in [
        (
            "mysql://db.example/opsgate",
            "unsupported database url 'mysql://db.example/opsgate': use sqlite://PATH or postgres://USER@HOST/DB",
        ),
        (
            "postgres://ops:hunter2@db.example:port/opsgate",
            "invalid database url 'postgres://ops:***@db.example:port/opsgate'",
        ),
    ] {
        let out = opsgate(
            "http://127.0.0.1:9",
            None,
            &["serve", "--listen", "127.0.0.1:0", "--database-url", url],
        )
        .await;
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(says), "{err}");
        assert!(
            !err.contains("unavailable") && !err.contains("hunter2"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_reject_reopens_what_the_service_manager_names() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db).await;
    let mut c = server.clients().await;
    let id = opsgate_tests::start(&mut c, "4.0").await.id;
    opsgate_tests::approve_all_before_gate(&mut c, &id).await;
    let reject = [
        "handover",
        "reject",
        &id,
        "--reason",
        "no restore test in the runbook",
        "--reopen",
        "runbook",
    ];
    let out = opsgate(&server.url, Some("Pat"), &reject).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("(permission denied)"),
        "{}",
        stderr(&out)
    );
    let out = opsgate(&server.url, Some("Sam"), &reject).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let runbook = text
        .lines()
        .find(|l| l.contains(" runbook "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        runbook.contains("changes requested")
            && runbook.contains("\"handover rejected: no restore test in the runbook\""),
        "{runbook}"
    );
    let out = opsgate(&server.url, None, &["gate", "check", &id]).await;
    assert_eq!(out.status.code(), Some(1), "the gate closed again");
    // The history shows who rejected, why, and the reopening.
    let out = opsgate(&server.url, None, &["transition", "history", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let history = stdout(&out);
    assert!(
        history
            .lines()
            .next()
            .unwrap()
            .contains("transition_started"),
        "{history}"
    );
    assert!(
        history.contains("Sam")
            && history.contains("handover_rejected  \"no restore test in the runbook\""),
        "{history}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_the_command_line_on_a_secure_server() {
    const BOOTSTRAP: &str = "og_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let db = TestDb::sqlite();
    let server = TestServer::start_secure(&db, BOOTSTRAP).await;
    let url = server.url.as_str();
    let run = |token: Option<String>, args: Vec<String>| async move {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsgate"));
        cmd.args(&args)
            .env("OPSGATE_SERVER", url)
            .env_remove("OPSGATE_ACTOR")
            .env_remove("OPSGATE_TOKEN");
        if let Some(t) = token {
            cmd.env("OPSGATE_TOKEN", t);
        }
        cmd.output().await.unwrap()
    };
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    // The secret alone on stdout, for PAT=$(opsgate token create ...).
    let out = run(
        Some(BOOTSTRAP.into()),
        args(&[
            "token",
            "create",
            "--principal",
            "Pat Doe",
            "--role",
            "project_manager",
            "--expires",
            "90d",
        ]),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pat = stdout(&out).trim().to_owned();
    assert!(pat.starts_with("og_") && pat.len() == 67, "{pat}");
    assert!(stderr(&out).contains("shown once"), "{}", stderr(&out));

    // Without a token, or with --as alone, a secure server refuses.
    let out = run(None, args(&["--as", "Pat Doe", "workflow", "list"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unauthenticated"), "{}", stderr(&out));
    let out = run(Some(pat.clone()), args(&["workflow", "list"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("standard-transition"));

    // Pat may not make tokens; the listing shows no secret.
    let out = run(
        Some(pat.clone()),
        args(&["token", "create", "--principal", "Eve", "--role", "smo"]),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("needs role smo"), "{}", stderr(&out));
    let out = run(Some(BOOTSTRAP.into()), args(&["token", "list"])).await;
    let listing = stdout(&out);
    assert!(
        listing.contains("Pat Doe") && listing.contains("[project_manager]"),
        "{listing}"
    );
    assert!(!listing.contains(&pat[3..]), "the listing shows a secret");
    let id = listing
        .lines()
        .find(|l| l.contains("Pat Doe"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let out = run(Some(BOOTSTRAP.into()), args(&["token", "revoke", &id])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("revoked"), "{}", stdout(&out));
    let out = run(Some(pat), args(&["workflow", "list"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("was revoked"), "{}", stderr(&out));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_its_configuration_file_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("wf")).unwrap();
    std::fs::copy(
        workflows_dir().join("standard-change.yaml"),
        dir.path().join("wf/standard-change.yaml"),
    )
    .unwrap();
    let from_file = dir.path().join("from-file.db");
    let config = dir.path().join("opsgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndatabase_url = \"sqlite://{}\"\nworkflows = \"wf\"\ninsecure_dev = true\nstate_cache_mib = 4\n",
            from_file.display()
        ),
    )
    .unwrap();
    let serve = |extra: Vec<String>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsgate"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("OPSGATE_DATABASE_URL")
            .env_remove("OPSGATE_WORKFLOWS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd.spawn().unwrap()
    };

    // The file's database and workflows directory (relative to the file) are used.
    let mut server = serve(Vec::new());
    let addr = opsgate_tests::serving_address(server.stderr.take().unwrap()).await;
    let out = opsgate(&format!("http://{addr}"), None, &["workflow", "list"]).await;
    assert_eq!(
        stdout(&out).trim(),
        "standard-change v1",
        "{}",
        stderr(&out)
    );
    assert!(from_file.exists());
    server.kill().await.unwrap();

    // A flag wins over the file.
    let from_flag = dir.path().join("from-flag.db");
    let mut server = serve(vec![
        "--database-url".into(),
        format!("sqlite://{}", from_flag.display()),
    ]);
    opsgate_tests::serving_address(server.stderr.take().unwrap()).await;
    assert!(from_flag.exists());
    server.kill().await.unwrap();

    // A typo in the file stops the start with where it is.
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\ndatabse_url = \"x\"\n",
    )
    .unwrap();
    let out = opsgate(
        "http://127.0.0.1:9",
        None,
        &["serve", "--config", config.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "{}:3:1: unknown field `databse_url`",
            config.display()
        )),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deputy_and_a_waiver_from_the_command_line() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db).await;
    let url = server.url.as_str();
    let go_live = opsgate_tests::go_live();
    let out = opsgate(
        url,
        Some("Pat"),
        &[
            "transition",
            "start",
            "-q",
            "--workflow",
            "standard-transition",
            "--service",
            "payroll",
            "--service-version",
            "3.0",
            "--project-manager",
            "Pat",
            "--service-manager",
            "Sam",
            "--go-live",
            &go_live,
            "--participant",
            "service_desk_lead=Dana",
            "--participant",
            "technical_lead=Tess",
            "--participant",
            "operations_lead=Olga",
            "--participant",
            "service_owner=Owen",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();

    let out = opsgate(
        url,
        Some("Owen"),
        &[
            "delegation",
            "add",
            "--to",
            "Dee",
            "--until",
            &go_live,
            "--reason",
            "holiday",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Owen -> Dee"), "{}", stdout(&out));
    let out = opsgate(url, Some("Dee"), &["delegation", "list"]).await;
    assert!(stdout(&out).contains("(holiday)"), "{}", stdout(&out));

    let out = opsgate(
        url,
        Some("Pat"),
        &["deliverable", "submit", &id, "sla", "--text", "signed"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = opsgate(url, Some("Dee"), &["deliverable", "approve", &id, "sla"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = opsgate(
        url,
        Some("smo"),
        &[
            "deliverable",
            "waive",
            &id,
            "runbook",
            "--reason",
            "agreed in the review",
            "--until",
            &go_live,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = opsgate(
        url,
        Some("smo"),
        &[
            "deliverable",
            "waive",
            &id,
            "runbook",
            "--reason",
            "x",
            "--until",
            "31/01/2099",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("must be a date (2026-12-31)"),
        "{}",
        stderr(&out)
    );

    let out = opsgate(url, None, &["transition", "history", &id]).await;
    let history = stdout(&out);
    let approved = history
        .lines()
        .find(|l| l.contains("deliverable_approved sla"))
        .unwrap_or_else(|| panic!("{history}"));
    assert!(approved.contains("Dee"), "{approved}");
    assert!(approved.contains("for Owen (delegation #1)"), "{approved}");
    assert!(approved.contains("as service_owner"), "{approved}");
    assert!(approved.contains("via insecure-dev"), "{approved}");
    assert!(
        history.contains("deliverable_waived runbook  \"agreed in the review\""),
        "{history}"
    );
    let out = opsgate(url, None, &["transition", "get", &id]).await;
    let shown = stdout(&out);
    assert!(shown.contains("WAIVED by smo until"), "{shown}");
    assert!(
        shown.contains("approved by Owen (deputies: Dee)"),
        "{shown}"
    );
    server.stop().await;
}

/// The CLI speaks TLS to `https://` servers: a private CA with `--tls-ca`, a client certificate
/// with `--tls-client-cert`/`--tls-client-key` where the server requires one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_talks_to_a_tls_server_with_a_private_ca_and_client_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    const BOOTSTRAP: &str = "og_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ca_file = write("ca.crt", ca_cert.pem());
    for who in ["server", "client"] {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        write(&format!("{who}.crt"), cert.pem());
        write(&format!("{who}.key"), key.serialize_pem());
    }
    let db = TestDb::sqlite();
    let server = TestServer::start_config(
        &db,
        opsgate_server::Config {
            workflows_dir: Some(workflows_dir()),
            bootstrap_token: Some(BOOTSTRAP.into()),
            tls: Some(opsgate_server::Tls {
                cert: dir.path().join("server.crt"),
                key: dir.path().join("server.key"),
                client_ca: Some(dir.path().join("ca.crt")),
            }),
            ..opsgate_server::Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        },
    )
    .await;
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let https = format!("https://localhost:{port}");
    let run = |extra: &[String]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsgate"));
        cmd.args(["--server", &https])
            .args(extra)
            .args(["workflow", "list"])
            .env("OPSGATE_TOKEN", BOOTSTRAP)
            .env_remove("OPSGATE_ACTOR");
        cmd.output()
    };
    let path = |name: &str| dir.path().join(name).display().to_string();
    let out = run(&[
        "--tls-ca".into(),
        ca_file.clone(),
        "--tls-client-cert".into(),
        path("client.crt"),
        "--tls-client-key".into(),
        path("client.key"),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("standard-transition"));
    // Without the client certificate the server refuses the connection.
    let out = run(&["--tls-ca".into(), ca_file]).await.unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    // Without the private CA the server's certificate is not trusted.
    let out = run(&[
        "--tls-client-cert".into(),
        path("client.crt"),
        "--tls-client-key".into(),
        path("client.key"),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_exits_1_on_a_tampered_log_and_export_writes_hashes() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db).await;
    let url = server.url.as_str();
    let mut c = server.clients().await;
    let id = opsgate_tests::start(&mut c, "4.0").await.id;
    let out = opsgate(url, Some("auditor"), &["audit", "verify"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("every chain is whole"),
        "{}",
        stdout(&out)
    );

    // Nothing is stuck in a transition started a moment ago; a bad duration is a usage error.
    let out = opsgate(
        url,
        Some("auditor"),
        &["audit", "stalled", "--format", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let out = opsgate(
        url,
        Some("auditor"),
        &["audit", "stalled", "--older-than", "3m"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("like 90d or 12w"), "{}", stderr(&out));

    let out = opsgate(url, Some("auditor"), &["audit", "export"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .all(|l| l["hash"].as_str().is_some_and(|h| h.len() == 64))
    );
    assert_eq!(lines[0]["kind"], "transition_started");

    server
        .store()
        .execute_on_write_connection(&format!(
            "UPDATE events SET actor = 'Mallory' WHERE transition_id = '{id}' AND seq = 1"
        ))
        .await
        .unwrap();
    let out = opsgate(url, Some("auditor"), &["audit", "verify"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("BROKEN  transition {id}  event 1  edited")),
        "{}",
        stdout(&out)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_kpis_and_forecast_print_tables_and_json() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db).await;
    let url = server.url.as_str();
    let mut c = server.clients().await;
    let id = opsgate_tests::start(&mut c, "5.0").await.id;

    let out = opsgate(url, Some("auditor"), &["audit", "kpis"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Handovers accepted: 0"),
        "{}",
        stdout(&out)
    );
    let out = opsgate(
        url,
        Some("auditor"),
        &["audit", "kpis", "--since", "2026-01-01", "--format", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let kpis: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(kpis["lead_time"]["samples"], 0);
    assert_eq!(kpis["since"], "2026-01-01T00:00:00Z");
    // A window that ends before it starts is the server's InvalidArgument, exit 2 with why.
    let out = opsgate(
        url,
        Some("auditor"),
        &[
            "audit",
            "kpis",
            "--since",
            "2026-05-01",
            "--until",
            "2026-04-01",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("since"), "{}", stderr(&out));

    // One transition's forecast, node by node; `transition get` ends with its line.
    let out = opsgate(url, Some("Pat"), &["audit", "forecast", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("forecast: go-live "), "{text}");
    assert!(text.contains("critical path: "), "{text}");
    assert!(text.contains("planned 10d, expected 10d"), "{text}");
    let out = opsgate(url, Some("Pat"), &["transition", "get", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("forecast: go-live "),
        "{}",
        stdout(&out)
    );
    let out = opsgate(url, Some("smo"), &["audit", "forecast", "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(first["transition_id"], id.as_str());
    assert_eq!(first["will_miss"], false);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_check_wait_exits_0_within_a_second_of_the_last_approval_1_when_time_is_up() {
    use opsgate_proto::v1 as pb;
    use std::time::{Duration, Instant};
    use tokio::io::AsyncBufReadExt;

    let db = TestDb::sqlite();
    let server = TestServer::start(&db).await;
    let url = server.url.as_str();
    let mut c = server.clients().await;
    let t = opsgate_tests::start(&mut c, "6.0").await;
    let last = opsgate_tests::all_but_the_last_approval(&mut c, &t.id).await;

    // Nothing happens: 1 when the time is up, saying so.
    let began = Instant::now();
    let out = opsgate(url, None, &["gate", "check", &t.id, "--wait", "2s"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(began.elapsed() >= Duration::from_secs(2));
    assert!(
        stderr(&out).contains("the gate is still closed after waiting 2s"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains(": CLOSED"), "{}", stdout(&out));

    // A pipeline waits; the last approval opens the gate and the command exits 0 at once.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsgate"))
        .args([
            "gate",
            "check",
            "--service",
            "payroll",
            "--version",
            "6.0",
            "--wait",
            "30m",
        ])
        .env("OPSGATE_SERVER", url)
        .env_remove("OPSGATE_ACTOR")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Its first decision printed: it is watching.
    let first = lines.next_line().await.unwrap().unwrap();
    assert!(first.ends_with(": CLOSED"), "{first}");
    let approved = Instant::now();
    opsgate_tests::review(
        &mut c,
        &t.id,
        &last,
        pb::ReviewDecision::Approve,
        "",
        opsgate_tests::approver_of(&last),
    )
    .await
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("gate check --wait returns once the gate opens")
        .unwrap();
    let took = approved.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took < Duration::from_secs(1),
        "gate check --wait returned {took:?} after the last approval"
    );
    let mut rest = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(rest.contains(": OPEN"), "{rest}");

    // Already open: at once.
    let out = opsgate(url, None, &["gate", "check", &t.id, "--wait", "1h"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A wait that is not one.
    let out = opsgate(url, None, &["gate", "check", &t.id, "--wait", "3w"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown unit 'w' in '3w': use s, m, h or d"),
        "{}",
        stderr(&out)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn person_set_keeps_what_is_not_given_and_list_shows_it() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let url = server.url.as_str();
        let out = opsgate(
            url,
            Some("smo"),
            &[
                "person",
                "set",
                "Dana Vos",
                "--email",
                "dana.vos@example.org",
                "--slack",
                "U0123ABCD",
            ],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("email: dana.vos@example.org"),
            "{}",
            stdout(&out)
        );

        // Only Slack changes; the email stays.
        let out = opsgate(
            url,
            Some("smo"),
            &["person", "set", "Dana Vos", "--slack", "#payroll-handover"],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("email: dana.vos@example.org"), "{text}");
        assert!(text.contains("slack: #payroll-handover"), "{text}");

        // An empty value clears; a Teams webhook is never printed.
        let out = opsgate(
            url,
            Some("smo"),
            &[
                "person",
                "set",
                "Dana Vos",
                "--email",
                "",
                "--teams-webhook",
                "https://prod.example.logic.azure.com/workflows/secret",
            ],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).contains("email: -"), "{}", stdout(&out));
        assert!(!stdout(&out).contains("secret"), "{}", stdout(&out));

        let out = opsgate(url, Some("smo"), &["person", "list", "--format", "json"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let people: Vec<serde_json::Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(people.len(), 1, "{people:?}");
        assert_eq!(people[0]["name"], "Dana Vos");
        assert_eq!(people[0]["email"], "");
        assert_eq!(people[0]["slack"], "#payroll-handover");
        assert_eq!(people[0]["updated_by"], "smo");

        // Bad details are refused naming the field, and nothing is stored.
        let out = opsgate(
            url,
            Some("smo"),
            &["person", "set", "Lee", "--email", "lee at example"],
        )
        .await;
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("'lee at example' is not an email address"),
            "{}",
            stderr(&out)
        );
        let out = opsgate(url, Some("smo"), &["person", "list", "Lee"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stderr(&out).contains("0 people"), "{}", stderr(&out));
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_show_prints_the_template_stored_with_the_workflow_version() {
    let db = TestDb::sqlite();
    let server = TestServer::start_with(&db, Some(workflows_dir())).await;
    let mut c = server.clients().await;
    let t = opsgate_tests::start(&mut c, "2.0").await;
    let out = opsgate(
        &server.url,
        None,
        &["template", "show", &t.id, "knowledge-articles"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shipped =
        std::fs::read_to_string(workflows_dir().join("templates/knowledge-article.md")).unwrap();
    assert_eq!(stdout(&out), shipped);
    // A deliverable without a template: an error that says so.
    let out = opsgate(
        &server.url,
        None,
        &["template", "show", &t.id, "resolver-group"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("names no template"),
        "{}",
        stderr(&out)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transition_plan_prints_the_dated_schedule_as_a_table_and_as_json() {
    let db = TestDb::sqlite();
    let server = TestServer::start_with(&db, Some(workflows_dir())).await;
    let mut c = server.clients().await;
    let t = opsgate_tests::start(&mut c, "2.0").await;
    let out = opsgate(&server.url, None, &["transition", "plan", &t.id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.contains("the gate can be reached on"), "{table}");
    assert!(table.contains("knowledge-articles"), "{table}");
    let out = opsgate(
        &server.url,
        None,
        &["transition", "plan", &t.id, "--format", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let nodes = json["nodes"].as_array().unwrap();
    let c_path = json["critical_path"].as_array().unwrap();
    assert!(nodes.len() > 5);
    assert_eq!(c_path.last().unwrap(), "operations-gate");
    // Every node's latest finish is on or after its latest start.
    for n in nodes {
        assert!(
            n["latest_finish"].as_str() >= n["latest_start"].as_str(),
            "{n}"
        );
    }
    let out = opsgate(&server.url, None, &["transition", "plan", "not-an-id"]).await;
    assert_eq!(out.status.code(), Some(2));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_docs_writes_the_process_description_offline() {
    let file = workflows_dir().join("standard-transition.yaml");
    let file = file.to_str().unwrap();
    let out = opsgate("http://127.0.0.1:9", None, &["workflow", "docs", file]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("# Service transition: standard-transition"));
    let out = opsgate(
        "http://127.0.0.1:9",
        None,
        &["workflow", "docs", file, "--format", "html"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("<!doctype html>"));
    let out = opsgate(
        "http://127.0.0.1:9",
        None,
        &["workflow", "docs", "no-such-file.yaml"],
    )
    .await;
    assert_ne!(out.status.code(), Some(0));
}
