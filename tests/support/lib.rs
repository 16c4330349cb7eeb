//! Test support: fresh databases per test (SQLite always, PostgreSQL when configured) and in-process servers on port 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use opsgate_proto::metadata::{ACTOR_METADATA_KEY, encode_actor};
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::gate_service_client::GateServiceClient;
use opsgate_proto::v1::identity_service_client::IdentityServiceClient;
use opsgate_proto::v1::transition_service_client::TransitionServiceClient;
use opsgate_proto::v1::workflow_service_client::WorkflowServiceClient;
use opsgate_server::{Config, RunningServer};
use sea_orm::{ConnectionTrait, Database};
use tonic::Request;
use tonic::transport::Channel;

/// Environment variable with an admin URL of a PostgreSQL server; PostgreSQL tests run when it is set.
pub const POSTGRES_ENV: &str = "OPSGATE_TEST_POSTGRES_URL";

/// A database that exists for one test: a SQLite file in a temporary directory, or a PostgreSQL
/// database created for the test and dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub backend: &'static str,
    dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// A fresh SQLite database file.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("opsgate.db").display());
        Self {
            url,
            backend: "sqlite",
            dir: Some(dir),
            postgres: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` when `OPSGATE_TEST_POSTGRES_URL` is not set.
    pub async fn postgres() -> Option<Self> {
        let Some(admin) = std::env::var(POSTGRES_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
        else {
            note_postgres_skipped();
            return None;
        };
        let name = format!("opsgate_test_{}", uuid::Uuid::now_v7().simple());
        let conn = Database::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_ENV}={admin} does not connect: {e}"));
        conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        conn.close().await.ok();
        Some(Self {
            url: with_database(&admin, &name),
            backend: "postgres",
            dir: None,
            postgres: Some((admin, name)),
        })
    }

    /// SQLite, plus PostgreSQL when configured: run a test body once for each.
    pub async fn all() -> Vec<Self> {
        let mut dbs = vec![Self::sqlite()];
        dbs.extend(Self::postgres().await);
        dbs
    }

    /// PostgreSQL only: runs `sql` as the admin on the server (for fault drills such as making the
    /// test database read-only); `{db}` in `sql` is replaced by the test database's name.
    pub async fn admin(&self, sql: &str) {
        let (admin, name) = self.postgres.as_ref().expect("a PostgreSQL test database");
        let conn = Database::connect(admin).await.expect("admin connection");
        conn.execute_unprepared(&sql.replace("{db}", name))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.ok();
    }

    /// Directory of the SQLite file (for tests that add files beside it).
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside any async context we could borrow; use a short-lived runtime on its own thread.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let conn = Database::connect(&admin).await?;
                conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                conn.close().await?;
                Ok::<_, anyhow::Error>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("warning: could not drop test database: {e}");
        }
    }
}

/// Says once per test binary, past the test harness's output capture, that the PostgreSQL half
/// of its tests did not run: a local run without the variable must not read as full coverage.
fn note_postgres_skipped() {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .map(|stem| match stem.rsplit_once('-') {
                Some((name, _hash)) => name.to_owned(),
                None => stem,
            })
            .unwrap_or_default();
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!(
                "note: {exe}: PostgreSQL tests SKIPPED ({POSTGRES_ENV} is not set; \
                 .ci/run sets it)\n"
            )
            .as_bytes(),
        );
    });
}

/// `postgres://u@h:p/db?x` with `db` replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    format!("{base}/{name}{query}")
}

/// The shipped workflows directory.
pub fn workflows_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../workflows")
}

/// The invalid-workflow test data directory.
/// Copies the shipped workflows' templates into `dir/templates`, for a test that writes a shipped
/// workflow into a directory of its own (its `template:` paths are checked beside it).
pub fn copy_templates(dir: &std::path::Path) {
    let to = dir.join("templates");
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(workflows_dir().join("templates")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

pub fn invalid_workflows_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/invalid")
}

/// A server running in this process on a loopback port.
#[derive(Debug)]
pub struct TestServer {
    server: Option<RunningServer>,
    pub url: String,
    /// The HTTP listener (`/metrics`): every test server has one.
    pub http_url: String,
}

impl TestServer {
    /// Starts a server on `db` with the shipped workflows loaded.
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db, Some(workflows_dir())).await
    }

    /// Starts a development server (`--insecure-dev`: the actor comes from `x-opsgate-actor`) on
    /// `db`, loading `workflows` when given.
    pub async fn start_with(db: &TestDb, workflows: Option<PathBuf>) -> Self {
        Self::start_config(
            db,
            Config {
                workflows_dir: workflows,
                insecure_dev: true,
                ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
            },
        )
        .await
    }

    /// Starts a secure server (tokens only) on `db` with the shipped workflows and the bootstrap
    /// token `bootstrap` (principal `bootstrap`, role `smo`).
    pub async fn start_secure(db: &TestDb, bootstrap: &str) -> Self {
        Self::start_config(
            db,
            Config {
                workflows_dir: Some(workflows_dir()),
                bootstrap_token: Some(bootstrap.to_owned()),
                ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
            },
        )
        .await
    }

    /// Starts a server with `config` (its database URL should be `db`'s).
    pub async fn start_config(db: &TestDb, mut config: Config) -> Self {
        config.http = config.http.or(Some("127.0.0.1:0".parse().unwrap()));
        let server = opsgate_server::start(config)
            .await
            .unwrap_or_else(|e| panic!("server failed to start on {}: {e}", db.backend));
        let url = format!("http://{}", server.local_addr());
        let http_url = format!("http://{}", server.http_addr().unwrap());
        Self {
            server: Some(server),
            url,
            http_url,
        }
    }

    /// The server's store (for fault drills on its write connection).
    pub fn store(&self) -> &opsgate_store::Store {
        self.server.as_ref().expect("server is running").store()
    }

    /// Stops the server gracefully and closes its database.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }

    pub async fn clients(&self) -> Clients {
        Clients::connect(&self.url).await
    }
}

/// One client per service, over one channel; with [`Credentials`], every request the helpers
/// make carries the acting person's own API token instead of `x-opsgate-actor`.
#[derive(Debug, Clone)]
pub struct Clients {
    pub workflows: WorkflowServiceClient<Channel>,
    pub transitions: TransitionServiceClient<Channel>,
    pub gates: GateServiceClient<Channel>,
    pub identity: IdentityServiceClient<Channel>,
    pub credentials: Option<std::sync::Arc<Credentials>>,
}

/// API tokens by person, and one for reading (a secure server answers nobody without one).
#[derive(Debug, Default)]
pub struct Credentials {
    pub tokens: std::collections::HashMap<String, String>,
    pub reader: String,
}

impl Clients {
    /// One client per service over one channel to the server at `url`.
    pub async fn connect(url: &str) -> Self {
        let channel = Channel::from_shared(url.to_owned())
            .unwrap()
            .connect()
            .await
            .expect("connect to the server");
        Clients {
            workflows: WorkflowServiceClient::new(channel.clone()),
            transitions: TransitionServiceClient::new(channel.clone()),
            gates: GateServiceClient::new(channel.clone()),
            identity: IdentityServiceClient::new(channel),
            credentials: None,
        }
    }

    /// A request made by `actor`: with their token when these clients have credentials.
    pub fn as_<T>(&self, actor: &str, message: T) -> Request<T> {
        match &self.credentials {
            Some(c) => bearer(
                c.tokens
                    .get(actor)
                    .unwrap_or_else(|| panic!("no token for {actor}")),
                message,
            ),
            None => acting(actor, message),
        }
    }

    /// A request that only reads.
    pub fn read<T>(&self, message: T) -> Request<T> {
        match &self.credentials {
            Some(c) => bearer(&c.reader, message),
            None => Request::new(message),
        }
    }
}

/// A new API token for `principal` with `roles`, created on the server at `url` with the
/// bootstrap (or any smo) token `smo`; valid for a day.
pub async fn create_token(url: &str, smo: &str, principal: &str, roles: &[&str]) -> String {
    IdentityServiceClient::connect(url.to_owned())
        .await
        .unwrap()
        .create_token(bearer(
            smo,
            pb::CreateTokenRequest {
                principal: principal.into(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                expires_in_days: 1,
                description: format!("{principal} (test)"),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .token
}

/// A request with `authorization: Bearer TOKEN`.
pub fn bearer<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        opsgate_proto::metadata::AUTHORIZATION_METADATA_KEY,
        format!("Bearer {token}").parse().unwrap(),
    );
    request
}

/// A request made by `actor`.
pub fn acting<T>(actor: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(ACTOR_METADATA_KEY, encode_actor(actor).parse().unwrap());
    request
}

/// A target go-live 90 days from today: always in the future, as a start requires.
pub fn go_live() -> String {
    (chrono::Utc::now().date_naive() + chrono::Days::new(90)).to_string()
}

/// The people of the standard workflow in the end-to-end tests: Pat (project manager) and Sam
/// (service manager) by their own fields; Dana the service desk lead, Tess the technical lead,
/// Olga the operations lead, Owen the service owner.
pub fn payroll_participants() -> Vec<pb::Participant> {
    // The service owners' board agrees the SLA: Owen, Olga, and "reviewer 0" to "reviewer 63"
    // (the concurrency tests send one approval from each at once).
    let owners: Vec<String> = ["Owen".to_owned(), "Olga".to_owned()]
        .into_iter()
        .chain((0..64).map(|i| format!("reviewer {i}")))
        .collect();
    [
        ("service_desk_lead", vec!["Dana".to_owned()]),
        ("technical_lead", vec!["Tess".to_owned()]),
        ("operations_lead", vec!["Olga".to_owned()]),
        ("service_owner", owners),
    ]
    .into_iter()
    .map(|(role, people)| pb::Participant {
        role: role.into(),
        people,
    })
    .collect()
}

/// Who owns each deliverable of the standard workflow in the end-to-end tests.
pub fn owner_of(deliverable: &str) -> &'static str {
    match deliverable {
        "knowledge-articles" | "monitoring" | "runbook" => "Tess",
        _ => "Pat",
    }
}

/// Who approves each deliverable of the standard workflow in the end-to-end tests.
pub fn approver_of(deliverable: &str) -> &'static str {
    match deliverable {
        "resolver-group" | "monitoring" | "runbook" => "Olga",
        "sla" => "Owen",
        _ => "Dana",
    }
}

/// The request the end-to-end tests start `payroll 2.0` with.
pub fn start_payroll(service_version: &str) -> pb::StartTransitionRequest {
    pb::StartTransitionRequest {
        workflow_name: "standard-transition".into(),
        workflow_version: None,
        service_name: "payroll".into(),
        service_version: service_version.into(),
        project_manager: "Pat".into(),
        service_manager: "Sam".into(),
        target_go_live: go_live(),
        participants: payroll_participants(),
        allow_past_go_live: false,
    }
}

/// Starts `payroll SERVICE_VERSION` on the standard workflow as Pat.
pub async fn start(c: &mut Clients, service_version: &str) -> pb::Transition {
    start_with(c, start_payroll(service_version)).await
}

/// Starts the transition `request` describes, as Pat.
pub async fn start_with(c: &mut Clients, request: pb::StartTransitionRequest) -> pb::Transition {
    let request = c.as_("Pat", request);
    c.transitions
        .start_transition(request)
        .await
        .expect("start transition")
        .into_inner()
        .transition
        .unwrap()
}

/// A workflow of `n` deliverables that need only the start, owned by the project manager and
/// approved by role `desk`: room for a lot of evidence.
pub fn wide_workflow(n: usize) -> String {
    let mut yaml = String::from(
        "name: wide\nroles:\n  desk: {description: d}\nmilestones:\n  - {id: start, title: Start}\ndeliverables:\n",
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "  - {{id: d{i}, title: D{i}, owner: project_manager, approver: desk, needs: [start]}}\n"
        ));
    }
    let needs: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    yaml.push_str(&format!(
        "gate: {{id: gate, title: Gate, needs: [{}]}}\n",
        needs.join(", ")
    ));
    yaml
}

/// The address an `opsgate serve` child logs once serving (`serving gRPC addr=...`), read from
/// its stderr; the rest of its log is drained in the background so that it never blocks.
pub async fn serving_address(stderr: tokio::process::ChildStderr) -> String {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(stderr).lines();
    let addr = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("serving gRPC")
                && let Some(rest) = line.split("addr=").nth(1)
            {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("opsgate serve exited before serving");
    })
    .await
    .expect("opsgate serve did not start within 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    addr
}

/// Starts the real binary `bin` (the test's `env!("CARGO_BIN_EXE_opsgate")`) as `bin serve
/// ARGS...` (it should listen on port 0) and returns it, killed when dropped, with the gRPC URL it
/// logged.
pub async fn spawn_serve(bin: &str, args: &[&std::ffi::OsStr]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(bin)
        .arg("serve")
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn opsgate serve");
    let addr = serving_address(child.stderr.take().unwrap()).await;
    (child, format!("http://{addr}"))
}

/// Submits a deliverable with one evidence link.
pub async fn submit(
    c: &mut Clients,
    id: &str,
    deliverable: &str,
    actor: &str,
) -> Result<pb::Transition, tonic::Status> {
    let request = c.as_(
        actor,
        pb::SubmitDeliverableRequest {
            transition_id: id.into(),
            deliverable_id: deliverable.into(),
            evidence: Some(pb::Evidence {
                links: vec![format!("https://wiki.example/{deliverable}")],
                text: String::new(),
                attachments: Vec::new(),
            }),
        },
    );
    Ok(c.transitions
        .submit_deliverable(request)
        .await?
        .into_inner()
        .transition
        .unwrap())
}

/// Reviews a deliverable.
pub async fn review(
    c: &mut Clients,
    id: &str,
    deliverable: &str,
    decision: pb::ReviewDecision,
    comment: &str,
    actor: &str,
) -> Result<pb::Transition, tonic::Status> {
    let request = c.as_(
        actor,
        pb::ReviewDeliverableRequest {
            transition_id: id.into(),
            deliverable_id: deliverable.into(),
            decision: decision.into(),
            comment: comment.into(),
        },
    );
    Ok(c.transitions
        .review_deliverable(request)
        .await?
        .into_inner()
        .transition
        .unwrap())
}

/// Submits (as its owner) and approves (as its approver) every deliverable before the gate of a
/// standard-workflow transition, in order: the gate is open afterwards.
pub async fn approve_all_before_gate(c: &mut Clients, id: &str) {
    let t = get(c, id).await;
    for n in t
        .nodes
        .iter()
        .filter(|n| n.kind == pb::NodeKind::Deliverable as i32 && !n.after_go_live)
    {
        submit(c, id, &n.id, owner_of(&n.id)).await.unwrap();
        review(
            c,
            id,
            &n.id,
            pb::ReviewDecision::Approve,
            "",
            approver_of(&n.id),
        )
        .await
        .unwrap();
    }
}

/// Submits and approves every deliverable before the gate except the last approval; returns the
/// deliverable left to approve.
pub async fn all_but_the_last_approval(c: &mut Clients, id: &str) -> String {
    let t = get(c, id).await;
    let before_gate: Vec<String> = t
        .nodes
        .iter()
        .filter(|n| n.kind == pb::NodeKind::Deliverable as i32 && !n.after_go_live)
        .map(|n| n.id.clone())
        .collect();
    let (last, rest) = before_gate.split_last().unwrap();
    for d in rest {
        submit(c, id, d, owner_of(d)).await.unwrap();
        review(c, id, d, pb::ReviewDecision::Approve, "", approver_of(d))
            .await
            .unwrap();
    }
    submit(c, id, last, owner_of(last)).await.unwrap();
    last.clone()
}

/// The transition as the server has it now.
pub async fn get(c: &mut Clients, id: &str) -> pb::Transition {
    c.transitions
        .get_transition(c.read(pb::GetTransitionRequest {
            transition_id: id.into(),
        }))
        .await
        .expect("get transition")
        .into_inner()
        .transition
        .unwrap()
}

/// Every stored transition's event log has one event per `seq` and replays to exactly its stored
/// state: nothing half-written. Opens its own store on `url` (run it once the server has stopped).
/// Returns how many transitions it checked.
pub async fn assert_every_log_replays(url: &str) -> usize {
    let store = opsgate_store::Store::connect(opsgate_store::ConnectOptions::new(url))
        .await
        .unwrap();
    let mut token = None;
    let mut checked = 0;
    loop {
        let page = store.list_transitions(500, token.as_deref()).await.unwrap();
        checked += page.transitions.len();
        for t in &page.transitions {
            let view = store.get_transition(&t.id).await.unwrap();
            let events = store.events(&t.id).await.unwrap();
            assert_eq!(events.len() as u64, view.state.seq, "transition {}", t.id);
            let replayed =
                opsgate_domain::TransitionState::replay(&view.workflow.workflow, &events).unwrap();
            assert_eq!(replayed, view.state, "transition {}", t.id);
        }
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    store.close().await.unwrap();
    checked
}

/// The status of one node.
pub fn status_of(t: &pb::Transition, node: &str) -> pb::NodeStatus {
    let n = t
        .nodes
        .iter()
        .find(|n| n.id == node)
        .unwrap_or_else(|| panic!("no node {node}"));
    pb::NodeStatus::try_from(n.status).unwrap()
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://u@h", "x"),
            "postgres://u@h/x"
        );
    }
}

/// An empty message: every opsgate request decodes from it (all fields default).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// Every RPC of the published contract, as `opsgate.v1.Service/Method`.
pub fn every_rpc() -> Vec<String> {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(opsgate_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut out = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == "opsgate.v1") {
        for service in &file.service {
            for method in &service.method {
                out.push(format!("opsgate.v1.{}/{}", service.name(), method.name()));
            }
        }
    }
    out.sort();
    out
}

/// Calls `method` (`opsgate.v1.Service/Method`) with an empty request and `token` (if any); the status code it answers.
pub async fn call_empty(url: &str, method: &str, token: Option<&str>) -> tonic::Code {
    let channel = tonic::transport::Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let request = match token {
        Some(t) => bearer(t, Empty {}),
        None => Request::new(Empty {}),
    };
    let path: tonic::codegen::http::uri::PathAndQuery = format!("/{method}").parse().unwrap();
    let result: Result<tonic::Response<Empty>, tonic::Status> = grpc
        .unary(request, path, tonic_prost::ProstCodec::default())
        .await;
    result.map_or_else(|s| s.code(), |_| tonic::Code::Ok)
}

/// The server's clock in a test: real time plus an offset the test moves forward, or a moment
/// the test pins.
#[derive(Debug, Clone, Default)]
pub struct MovingClock {
    offset_seconds: std::sync::Arc<std::sync::atomic::AtomicI64>,
    pinned: std::sync::Arc<std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>>,
}

impl MovingClock {
    /// The store clock to start a server with; it follows this one's offset or pinned moment.
    pub fn clock(&self) -> opsgate_store::Clock {
        let offset = self.offset_seconds.clone();
        let pinned = self.pinned.clone();
        opsgate_store::Clock::from_fn(move || {
            if let Some(at) = *pinned.lock().unwrap() {
                return at;
            }
            chrono::Utc::now()
                + chrono::Duration::seconds(offset.load(std::sync::atomic::Ordering::SeqCst))
        })
    }

    /// From now on the server's time is exactly `at`, until pinned again.
    pub fn pin(&self, at: chrono::DateTime<chrono::Utc>) {
        *self.pinned.lock().unwrap() = Some(at);
    }

    /// From now on the server's time is `days` after real time.
    pub fn set_days(&self, days: i64) {
        self.offset_seconds
            .store(days * 86_400, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A workflow whose every transition makes exactly four notices: the deliverable unlocked at
/// the start, submitted, the gate open on its approval, the handover accepted.
pub const ONE: &str = "\
name: one
roles: {desk: {description: reviews}}
deliverables:
  - {id: d, title: D, owner: project_manager, approver: desk}
gate: {id: gate, title: Gate, needs: [d]}
";

/// A server on `db` with the workflow [`ONE`] loaded: secure with the bootstrap token
/// `bootstrap` when given, a development server otherwise. The workflow's directory lives as
/// long as the returned guard.
pub async fn server_with_one(
    db: &TestDb,
    bootstrap: Option<&str>,
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.yaml"), ONE).unwrap();
    let server = TestServer::start_config(
        db,
        opsgate_server::Config {
            workflows_dir: Some(dir.path().to_owned()),
            insecure_dev: bootstrap.is_none(),
            bootstrap_token: bootstrap.map(str::to_owned),
            ..opsgate_server::Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        },
    )
    .await;
    (server, dir)
}

/// Starts a transition of the workflow `one` (Pat manages the project, Sam the service, Dana
/// reviews for the desk).
pub async fn start_one(c: &mut Clients, service: &str, version: &str) -> pb::Transition {
    start_one_request(c, acting("Pat", one_request(service, version))).await
}

/// [`start_one`] by Pat's API token `token` (a secure server).
pub async fn start_one_by(
    c: &mut Clients,
    token: &str,
    service: &str,
    version: &str,
) -> pb::Transition {
    start_one_request(c, bearer(token, one_request(service, version))).await
}

fn one_request(service: &str, version: &str) -> pb::StartTransitionRequest {
    pb::StartTransitionRequest {
        workflow_name: "one".into(),
        service_name: service.into(),
        service_version: version.into(),
        project_manager: "Pat".into(),
        service_manager: "Sam".into(),
        target_go_live: go_live(),
        participants: vec![pb::Participant {
            role: "desk".into(),
            people: vec!["Dana".into()],
        }],
        ..Default::default()
    }
}

async fn start_one_request(
    c: &mut Clients,
    request: Request<pb::StartTransitionRequest>,
) -> pb::Transition {
    c.transitions
        .start_transition(request)
        .await
        .unwrap()
        .into_inner()
        .transition
        .unwrap()
}

/// Undoes migration `name` and every one applied after it, then applies them all again: a
/// database as it was before `name`, upgraded.
pub async fn migrate_again_since(conn: &sea_orm::DatabaseConnection, name: &str) {
    use opsgate_migration::MigratorTrait as _;
    undo_migrations_since(conn, name).await;
    opsgate_migration::Migrator::up(conn, None).await.unwrap();
}

/// Undoes the migration `name` and every one applied after it (by name, not by a count that
/// breaks when migrations are added).
pub async fn undo_migrations_since(conn: &sea_orm::DatabaseConnection, name: &str) {
    use opsgate_migration::MigratorTrait as _;
    let applied = opsgate_migration::Migrator::get_applied_migrations(conn)
        .await
        .unwrap();
    let position = applied
        .iter()
        .position(|m| m.name() == name)
        .unwrap_or_else(|| panic!("migration {name} is not applied"));
    let since = u32::try_from(applied.len() - position).unwrap();
    opsgate_migration::Migrator::down(conn, Some(since))
        .await
        .unwrap();
}
