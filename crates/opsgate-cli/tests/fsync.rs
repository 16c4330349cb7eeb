//! Durability under load, checked where it happens: the real server runs under strace while
//! clients write, and every write batch it reports committed must come after an fsync (or
//! fdatasync) of the SQLite WAL since the previous one. SIGKILL (the crash test) keeps the page
//! cache and so cannot see a commit that never reached the disk; this can.
//!
//! Runs in `make soak` (`OPSGATE_FSYNC_CHECK=1`, strace installed); `make test` skips it, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use opsgate_tests::{submit, workflows_dir};
use tokio::process::Command;

/// What the strace log says: batches committed, and those with no WAL sync since the previous.
fn audit(log: &str) -> (usize, usize) {
    let (mut batches, mut unsynced, mut synced) = (0, 0, false);
    for line in log.lines() {
        let sync = line.contains("fdatasync(") || line.contains("fsync(");
        if sync && line.contains("-wal>") {
            synced = true;
        } else if line.contains("write(") && line.contains("write batch committed") {
            batches += 1;
            if !synced {
                unsynced += 1;
            }
            synced = false;
        }
    }
    (batches, unsynced)
}

#[test]
fn the_audit_finds_a_batch_without_a_sync() {
    let synced = "1 fdatasync(5</d/x.db-wal>) = 0\n2 write(2</dev/null>, \"... write batch committed writes=3\\n\", 40) = 40\n";
    assert_eq!(audit(synced), (1, 0));
    let unsynced = format!(
        "{synced}2 write(2</dev/null>, \"... write batch committed writes=1\\n\", 40) = 40\n"
    );
    assert_eq!(audit(&unsynced), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_batch_follows_an_fsync_of_the_wal() {
    if std::env::var("OPSGATE_FSYNC_CHECK").is_err() {
        eprintln!("note: fsync check SKIPPED (make soak runs it, with OPSGATE_FSYNC_CHECK=1)");
        return;
    }
    assert!(
        std::process::Command::new("strace")
            .arg("-V")
            .output()
            .is_ok(),
        "the fsync check needs strace: apt-get install strace"
    );
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("strace.log");
    let url = format!("sqlite://{}", dir.path().join("opsgate.db").display());
    let mut server = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-y",
            "-s",
            "200",
            "-e",
            "trace=fsync,fdatasync,write",
            "-o",
        ])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_opsgate"))
        .args([
            "serve",
            "--insecure-dev",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &url,
            "--workflows",
        ])
        .arg(workflows_dir())
        .env("RUST_LOG", "info,opsgate_store::writer=debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("strace runs");
    let addr = opsgate_tests::serving_address(server.stderr.take().unwrap()).await;

    // Eight clients start transitions and submit, concurrently, for a few seconds:
    // the writer commits them in batches of several.
    let c = opsgate_tests::Clients::connect(&format!("http://{addr}")).await;
    let deadline = Instant::now() + Duration::from_secs(4);
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let mut c = c.clone();
            tokio::spawn(async move {
                let mut acked = 0;
                let mut i = 0;
                while Instant::now() < deadline {
                    i += 1;
                    let t = opsgate_tests::start(&mut c, &format!("{n}.{i}")).await;
                    submit(&mut c, &t.id, "support-contacts", "Pat")
                        .await
                        .unwrap();
                    acked += 2;
                }
                acked
            })
        })
        .collect();
    let mut acked = 0;
    for t in tasks {
        acked += t.await.unwrap();
    }
    // Stop the traced server itself (strace only detaches on a signal of its own); strace ends
    // with it, and then the log is complete. The clients' connections close first, so that the
    // server's graceful shutdown does not wait for them.
    drop(c);
    let strace = server.id().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children"))
        .unwrap_or_default();
    assert!(!children.trim().is_empty(), "strace {strace} has no child");
    for pid in children.split_whitespace() {
        let _ = std::process::Command::new("kill").arg(pid).status();
    }
    tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server stops on SIGTERM")
        .unwrap();
    let log = std::fs::read_to_string(&trace).unwrap();
    let (batches, unsynced) = audit(&log);
    eprintln!("{acked} acknowledged writes in {batches} batches; {unsynced} without a WAL fsync");
    assert!(
        batches > 0,
        "no batch was logged: is the writer's debug line still there?"
    );
    assert!(acked as usize >= batches, "fewer writes than batches");
    assert_eq!(
        unsynced, 0,
        "{unsynced} of {batches} batches were acknowledged without an fsync of the WAL"
    );
}
