//! The opsgate gRPC server: tonic services over the store, health and reflection, start-up and graceful shutdown.

mod actor;
pub mod auth;
pub mod config;
mod convert;
mod dispatch;
mod error;
mod http;
mod idempotency;
pub mod loader;
mod metrics;
mod oidc;
mod proxy;
mod services;
mod timers;

use std::net::SocketAddr;
use std::path::PathBuf;

use opsgate_proto::v1::audit_service_server::AuditServiceServer;
use opsgate_proto::v1::catalog_service_server::CatalogServiceServer;
use opsgate_proto::v1::gate_service_server::GateServiceServer;
use opsgate_proto::v1::identity_service_server::IdentityServiceServer;
use opsgate_proto::v1::notification_service_server::NotificationServiceServer;
use opsgate_proto::v1::transition_service_server::TransitionServiceServer;
use opsgate_proto::v1::workflow_service_server::WorkflowServiceServer;
use opsgate_store::{Clock, ConnectOptions, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::ERROR_DOMAIN;
pub use error::StartError;
pub use loader::{LOADER_ACTOR, LoadedWorkflow, load_workflows};
pub use opsgate_proto::metadata::{ACTOR_BIN_METADATA_KEY, ACTOR_METADATA_KEY};

/// The principal of the bootstrap token.
pub const BOOTSTRAP_PRINCIPAL: &str = "bootstrap";

/// Largest request accepted (a workflow source is at most 1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 2 * 1024 * 1024;
/// Largest response sent: the default limit of gRPC clients. A whole transition fits: its
/// content is bounded by `MAX_TRANSITION_CONTENT` (1 MiB), its structure by its workflow.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// What `opsgate serve` is told.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (see [`RunningServer::local_addr`]).
    pub listen: SocketAddr,
    /// The HTTP listener (`/metrics`), when set; port 0 picks a free port (see
    /// [`RunningServer::http_addr`]).
    pub http: Option<SocketAddr>,
    pub database_url: String,
    /// Directory whose `*.yaml` workflows are registered at start-up.
    pub workflows_dir: Option<PathBuf>,
    /// Bytes of decoded transition states the server keeps in memory (0: none).
    pub state_cache_bytes: usize,
    /// Development only: calls without a token may name their actor with `x-opsgate-actor`.
    pub insecure_dev: bool,
    /// A token secret that must exist, for principal `bootstrap` with role `smo`: how the SMO
    /// gets in on a fresh database (`OPSGATE_BOOTSTRAP_TOKEN`).
    pub bootstrap_token: Option<String>,
    /// Trusted CI token issuers and their claim rules (`[[oidc.issuers]]`).
    pub oidc: Vec<config::IssuerConfig>,
    /// Serve over TLS with these PEM files.
    pub tls: Option<Tls>,
    /// Where decisions read the time (tests move it).
    pub clock: Clock,
    /// Notification channels and routes (`[notify]`); none: notifications off.
    pub notify: config::NotifySection,
    /// Web sign-in behind an SSO reverse proxy (`[auth_proxy]`, `--auth-proxy-header`).
    pub auth_proxy: config::AuthProxySection,
    /// How a transition's calendar places its meetings (`[calendar]`).
    pub calendar: config::CalendarSection,
    /// The service catalog (`[catalog]`).
    pub catalog: config::CatalogSection,
}

/// TLS settings: the server's certificate chain and key, and optionally the CA whose client
/// certificates are required.
#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl Tls {
    fn server_config(&self) -> Result<tonic::transport::ServerTlsConfig, StartError> {
        let read = |what: &str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| {
                StartError::Config(format!(
                    "cannot read the TLS {what} {}: {e}",
                    path.display()
                ))
            })
        };
        let identity = tonic::transport::Identity::from_pem(
            read("certificate", &self.cert)?,
            read("key", &self.key)?,
        );
        let mut tls = tonic::transport::ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(read(
                "client CA",
                ca,
            )?));
        }
        Ok(tls)
    }
}

impl Config {
    /// Listen on `listen`, store in `database_url`, no workflows directory, default cache.
    pub fn new(listen: SocketAddr, database_url: impl Into<String>) -> Self {
        Self {
            listen,
            http: None,
            database_url: database_url.into(),
            workflows_dir: None,
            state_cache_bytes: opsgate_store::DEFAULT_STATE_CACHE_MIB * 1024 * 1024,
            insecure_dev: false,
            bootstrap_token: None,
            oidc: Vec::new(),
            tls: None,
            clock: Clock::default(),
            notify: config::NotifySection::default(),
            auth_proxy: config::AuthProxySection::default(),
            calendar: config::CalendarSection::default(),
            catalog: config::CatalogSection::default(),
        }
    }
}

/// A server that is accepting requests.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    http_task: Option<JoinHandle<std::io::Result<()>>>,
    dispatcher: Option<dispatch::Dispatcher>,
    store: Store,
}

impl RunningServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound address of the HTTP listener, when there is one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The store the server runs on (for tests and fault drills).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops accepting, lets in-flight requests finish, then closes the database.
    pub async fn shutdown(self) -> Result<(), StartError> {
        let _ = self.stop.send(true);
        let served = self
            .task
            .await
            .map_err(|e| StartError::Task(e.to_string()))?;
        served?;
        if let Some(task) = self.http_task {
            task.await
                .map_err(|e| StartError::Task(e.to_string()))?
                .map_err(|e| StartError::Task(format!("HTTP listener: {e}")))?;
        }
        if let Some(dispatcher) = self.dispatcher {
            dispatcher.finish().await;
        }
        self.store.close().await?;
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Opens the database (migrating it), registers the workflows directory, binds and starts serving.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let mut options = ConnectOptions::new(&config.database_url);
    // The server owns its SQLite file: one server per file, reads served from memory.
    options.exclusive = true;
    options.state_cache_bytes = config.state_cache_bytes;
    options.clock = config.clock.clone();
    options.notifications = !config.notify.channels.is_empty();
    let problems = config.notify.problems();
    if !problems.is_empty() {
        return Err(StartError::Config(problems.join("\n")));
    }
    let oidc = oidc::Oidc::new(&config.oidc).map_err(StartError::Config)?;
    let auth_proxy = proxy::AuthProxy::new(&config.auth_proxy)
        .map_err(|problems| StartError::Config(problems.join("\n")))?;
    let calendar = config
        .calendar
        .options(config.notify.base_url.as_deref())
        .map_err(|problems| StartError::Config(problems.join("\n")))?;
    let tls = config.tls.as_ref().map(Tls::server_config).transpose()?;
    let store = Store::connect(options).await?;
    if let Some(dir) = &config.workflows_dir {
        for loaded in load_workflows(&store, dir).await? {
            tracing::info!(
                file = %loaded.file.display(),
                workflow = %loaded.name,
                version = loaded.version,
                created = loaded.created,
                "workflow loaded"
            );
        }
    }
    if let Some(secret) = &config.bootstrap_token {
        let bootstrap = opsgate_store::NewToken {
            principal: opsgate_domain::Actor::parse(BOOTSTRAP_PRINCIPAL)
                .map_err(|e| StartError::Workflows(e.to_string()))?,
            roles: vec![opsgate_domain::Access::Smo],
            expires_at: None,
            description: "bootstrap (OPSGATE_BOOTSTRAP_TOKEN)".to_owned(),
        };
        let token = store.ensure_token(secret.trim(), &bootstrap).await?;
        if token.revoked_at.is_some() {
            tracing::warn!(token = %token.id, "the bootstrap token was revoked and stays revoked");
        } else {
            tracing::info!(token = %token.id, prefix = %token.prefix, "bootstrap token ready (principal bootstrap, role smo)");
        }
    }
    if config.insecure_dev {
        tracing::warn!(
            "INSECURE DEVELOPMENT MODE (--insecure-dev): calls without a token act as whoever \
             x-opsgate-actor names; never expose this server"
        );
    } else if store.list_tokens(false).await?.is_empty() && oidc.is_empty() {
        tracing::warn!(
            "no active API token exists: set OPSGATE_BOOTSTRAP_TOKEN=og_<64 hex digits> to create \
             the first (role smo), or start with --insecure-dev for development"
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;

    for issuer in &config.oidc {
        tracing::info!(issuer = %issuer.issuer, audience = %issuer.audience, rules = issuer.rules.len(), "trusting CI tokens");
    }
    let secure = tls.is_some();
    let api = services::Api::new(store.clone(), config.insecure_dev, oidc)
        .with_calendar(calendar)
        .with_closed_catalog(config.catalog.closed);
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<WorkflowServiceServer<services::Api>>()
        .await;
    health
        .set_serving::<TransitionServiceServer<services::Api>>()
        .await;
    health
        .set_serving::<GateServiceServer<services::Api>>()
        .await;
    health
        .set_serving::<IdentityServiceServer<services::Api>>()
        .await;
    health
        .set_serving::<AuditServiceServer<services::Api>>()
        .await;
    health
        .set_serving::<NotificationServiceServer<services::Api>>()
        .await;
    health
        .set_serving::<CatalogServiceServer<services::Api>>()
        .await;
    // Reflection v1, and v1alpha beside it: Python's grpcio-reflection client, Evans and older
    // grpcui speak only v1alpha.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(opsgate_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;

    let (stop, stopped) = watch::channel(false);
    // Gate watches hear of other replicas' commits (PostgreSQL; nothing to do on SQLite).
    store.listen_for_changes();
    let dispatcher = if config.notify.channels.is_empty() {
        None
    } else {
        Some(
            dispatch::Dispatcher::start(store.clone(), &config.notify, stopped.clone())
                .await
                .map_err(StartError::Config)?,
        )
    };
    let metrics = std::sync::Arc::new(metrics::Metrics::default());
    let (http_addr, http_task) = match config.http {
        Some(addr) => {
            let (bound, task) = http::serve(
                addr,
                api.clone(),
                metrics.clone(),
                auth_proxy.map(std::sync::Arc::new),
                stopped.clone(),
            )
            .await?;
            (Some(bound), Some(task))
        }
        None => (None, None),
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let mut stopped = stopped;
    let router = builder
        .layer(metrics::MetricsLayer(metrics))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(
            WorkflowServiceServer::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            TransitionServiceServer::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            GateServiceServer::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            IdentityServiceServer::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            AuditServiceServer::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            NotificationServiceServer::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .add_service(
            CatalogServiceServer::new(api)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        );
    // No Nagle: a response written in several frames must not wait for the client's delayed ACK
    // (a 40 ms stall per call otherwise; see docs/benchmarks.md).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async move {
        let _ = stopped.wait_for(|stopped| *stopped).await;
    }));
    tracing::info!(addr = %local_addr, backend = ?store.backend(), tls = secure, "serving gRPC");
    if !secure && !local_addr.ip().is_loopback() {
        tracing::warn!(
            "serving without TLS on a non-loopback address: tokens cross the network in clear \
             text (use --tls-cert and --tls-key)"
        );
    }
    Ok(RunningServer {
        local_addr,
        http_addr,
        stop,
        task,
        http_task,
        dispatcher,
        store,
    })
}
