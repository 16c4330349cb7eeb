//! Database faults: a full disk, a read-only database, a dropped PostgreSQL connection. Clients get
//! `ResourceExhausted` or `Unavailable` with a clear message, nothing partial is stored, and the
//! server resumes by itself once the fault clears.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opsgate_proto::v1 as pb;
use opsgate_tests::{
    Clients, TestDb, TestServer, acting, assert_every_log_replays, get, review, start,
    start_payroll, status_of, submit,
};
use tokio::net::{TcpListener, TcpStream};
use tonic::Code;
use tonic_types::StatusExt;

async fn gate_of(c: &mut Clients, version: &str) -> Result<pb::CheckGateResponse, tonic::Status> {
    c.gates
        .check_gate(pb::CheckGateRequest {
            target: Some(pb::check_gate_request::Target::Service(pb::ServiceRef {
                name: "payroll".into(),
                version: version.into(),
            })),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sqlite_database_refuses_writes_with_resource_exhausted_then_recovers() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db).await;
    let mut c = server.clients().await;
    let first = start(&mut c, "1.0").await;

    // The database may not grow any more (it cannot shrink below its size, so 1 means "as now").
    server
        .store()
        .execute_on_write_connection("PRAGMA max_page_count = 1")
        .await
        .unwrap();
    let mut refused = None;
    for n in 0..2_000 {
        let version = format!("2.{n}");
        match c
            .transitions
            .start_transition(acting("Pat", start_payroll(&version)))
            .await
        {
            Ok(_) => {}
            Err(status) => {
                refused = Some((version, status));
                break;
            }
        }
    }
    let (version, status) = refused.expect("the database never filled up");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("the database is full")
            && status
                .message()
                .contains("nothing of this request was stored"),
        "{}",
        status.message()
    );
    assert_eq!(
        gate_of(&mut c, &version).await.unwrap_err().code(),
        Code::NotFound
    );
    // Reads go on while the disk is full.
    assert_eq!(get(&mut c, &first.id).await.event_count, first.event_count);

    // The fault clears: the same request now succeeds, with no restart.
    server
        .store()
        .execute_on_write_connection("PRAGMA max_page_count = 1073741823")
        .await
        .unwrap();
    c.transitions
        .start_transition(acting("Pat", start_payroll(&version)))
        .await
        .expect("writes resume once there is room");
    submit(&mut c, &first.id, "sla", "Pat").await.unwrap();
    server.stop().await;
    assert_every_log_replays(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_sqlite_database_refuses_writes_with_unavailable_then_recovers() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db).await;
    let mut c = server.clients().await;
    let t = start(&mut c, "1.0").await;

    server
        .store()
        .execute_on_write_connection("PRAGMA query_only = 1")
        .await
        .unwrap();
    let status = submit(&mut c, &t.id, "sla", "Pat").await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // A fixed message and a reason; the database's own words stay in the server log.
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "DATABASE_READ_ONLY");
    assert!(info.metadata.contains_key("correlation_id"));
    assert!(
        !status.message().contains("readonly database")
            && status.message().contains("correlation id")
            && status
                .message()
                .contains("nothing of this request was stored"),
        "{}",
        status.message()
    );
    let now = get(&mut c, &t.id).await;
    assert_eq!(now.event_count, t.event_count);
    assert_eq!(status_of(&now, "sla"), pb::NodeStatus::Open);

    server
        .store()
        .execute_on_write_connection("PRAGMA query_only = 0")
        .await
        .unwrap();
    let submitted = submit(&mut c, &t.id, "sla", "Pat").await.unwrap();
    assert_eq!(status_of(&submitted, "sla"), pb::NodeStatus::Submitted);
    server.stop().await;
    assert_every_log_replays(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_postgres_database_refuses_writes_with_unavailable_then_recovers() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let server = TestServer::start(&db).await;
    let mut c = server.clients().await;
    let t = start(&mut c, "1.0").await;

    // As after a fail-over onto a standby: every new session is read-only; end the current ones.
    let drop_sessions = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{db}' AND pid <> pg_backend_pid()";
    db.admin("ALTER DATABASE {db} SET default_transaction_read_only = on")
        .await;
    db.admin(drop_sessions).await;
    let mut refused = None;
    for _ in 0..20 {
        // The first call may meet a connection that was just ended (also Unavailable).
        match submit(&mut c, &t.id, "sla", "Pat").await {
            Err(s) if s.message().contains("read-only") => {
                refused = Some(s);
                break;
            }
            Err(s) => assert_eq!(s.code(), Code::Unavailable, "{s:?}"),
            Ok(_) => panic!("a write succeeded on a read-only database"),
        }
    }
    let status = refused.expect("no read-only refusal");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("nothing of this request was stored"),
        "{}",
        status.message()
    );
    let now = get(&mut c, &t.id).await;
    assert_eq!(now.event_count, t.event_count);

    db.admin("ALTER DATABASE {db} RESET default_transaction_read_only")
        .await;
    db.admin(drop_sessions).await;
    let mut resumed = None;
    for _ in 0..20 {
        match submit(&mut c, &t.id, "sla", "Pat").await {
            Ok(done) => {
                resumed = Some(done);
                break;
            }
            Err(s) => assert_eq!(s.code(), Code::Unavailable, "{s:?}"),
        }
    }
    let submitted = resumed.expect("writes did not resume");
    assert_eq!(status_of(&submitted, "sla"), pb::NodeStatus::Submitted);
    server.stop().await;
    assert_every_log_replays(&db.url).await;
}

/// A TCP proxy on loopback in front of PostgreSQL that can cut every connection and refuse new
/// ones (a network partition), then heal.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (cut2, generation2) = (cut.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    drop(client); // refused: closed at once
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut_now = generation2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_now.changed() => {} // dropping both ends resets the connection
                    }
                });
            }
        });
        Self {
            port,
            cut,
            generation,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// `postgres://user@host:port/db` with host and port replaced by the proxy's.
fn through(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let (user, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let upstream = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    (
        format!("{scheme}://{user}127.0.0.1:{port}/{path}"),
        upstream,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_postgres_connection_gives_unavailable_then_the_server_recovers() {
    let Some(mut db) = TestDb::postgres().await else {
        return;
    };
    let (_, upstream) = through(&db.url, 0);
    let proxy = Proxy::start(upstream).await;
    let direct = db.url.clone();
    db.url = through(&direct, proxy.port).0;
    let server = TestServer::start(&db).await;
    let mut c = server.clients().await;
    let t = start(&mut c, "1.0").await;

    proxy.cut();
    let status = submit(&mut c, &t.id, "sla", "Pat").await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "DATABASE_UNAVAILABLE");
    assert!(
        status
            .message()
            .starts_with("the database cannot be reached")
            && status.message().contains("retry later"),
        "{}",
        status.message()
    );

    proxy.heal();
    // The pool reconnects by itself; the refused submission left nothing behind.
    let mut resumed = None;
    for _ in 0..50 {
        match get_transition(&mut c, &t.id).await {
            Ok(now) => {
                resumed = Some(now);
                break;
            }
            Err(s) if s.code() == Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    let now = resumed.expect("the server did not recover");
    assert_eq!(now.event_count, t.event_count);
    assert_eq!(status_of(&now, "sla"), pb::NodeStatus::Open);
    submit(&mut c, &t.id, "sla", "Pat").await.unwrap();
    review(
        &mut c,
        &t.id,
        "sla",
        pb::ReviewDecision::Approve,
        "",
        "Olga",
    )
    .await
    .unwrap();
    server.stop().await;
    assert_every_log_replays(&direct).await;
}

async fn get_transition(c: &mut Clients, id: &str) -> Result<pb::Transition, tonic::Status> {
    Ok(c.transitions
        .get_transition(pb::GetTransitionRequest {
            transition_id: id.into(),
        })
        .await?
        .into_inner()
        .transition
        .unwrap())
}
