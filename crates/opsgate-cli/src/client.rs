//! Connecting to the server, attaching the acting person, and describing failures for people.

use anyhow::{Context as _, anyhow};
use opsgate_proto::metadata::{ACTOR_METADATA_KEY, AUTHORIZATION_METADATA_KEY, encode_actor};
use opsgate_proto::v1::audit_service_client::AuditServiceClient;
use opsgate_proto::v1::gate_service_client::GateServiceClient;
use opsgate_proto::v1::identity_service_client::IdentityServiceClient;
use opsgate_proto::v1::transition_service_client::TransitionServiceClient;
use opsgate_proto::v1::workflow_service_client::WorkflowServiceClient;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// What every client command knows: where the server is, its credential, and who acts.
#[derive(Debug)]
pub(crate) struct Context {
    pub server: String,
    pub actor: Option<String>,
    /// An API token (`og_...`) or a CI OIDC ID token: who the caller is, on any server.
    pub token: Option<String>,
    /// TLS (`https://` servers): a CA bundle to trust instead of the public roots, and a client
    /// certificate with its key for servers that require one.
    pub tls: TlsFiles,
}

/// PEM files for TLS connections.
#[derive(Debug, Default, Clone)]
pub(crate) struct TlsFiles {
    pub ca: Option<std::path::PathBuf>,
    pub client_cert: Option<std::path::PathBuf>,
    pub client_key: Option<std::path::PathBuf>,
}

impl TlsFiles {
    fn client_config(&self, uri: &str) -> anyhow::Result<tonic::transport::ClientTlsConfig> {
        let read = |path: &std::path::PathBuf| {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        };
        let mut tls = tonic::transport::ClientTlsConfig::new();
        if let Some(host) = uri
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
            .filter(|h| !h.is_empty())
        {
            tls = tls.domain_name(host);
        }
        tls = match &self.ca {
            Some(ca) => tls.ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?)),
            None => tls.with_webpki_roots(),
        };
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(tonic::transport::Identity::from_pem(
                    read(cert)?,
                    read(key)?,
                ));
            }
            (None, None) => {}
            _ => anyhow::bail!(
                "a client certificate needs both --tls-client-cert and --tls-client-key"
            ),
        }
        Ok(tls)
    }
}

impl Context {
    async fn channel(&self) -> anyhow::Result<Channel> {
        let uri = server_uri(&self.server);
        let mut endpoint = Channel::from_shared(uri.clone())
            .map_err(|e| anyhow!("invalid --server '{}': {e}", self.server))?;
        if uri.starts_with("https://") {
            endpoint = endpoint
                .tls_config(self.tls.client_config(&uri)?)
                .map_err(|e| anyhow!("TLS settings: {e}"))?;
        } else if self.tls.ca.is_some() || self.tls.client_cert.is_some() {
            anyhow::bail!("TLS files given, but --server is not an https:// address");
        }
        endpoint.connect().await.with_context(|| {
            format!(
                "cannot reach the opsgate server at {} (start one with `opsgate serve`, or set --server / OPSGATE_SERVER)",
                self.server
            )
        })
    }

    pub async fn workflows(&self) -> anyhow::Result<WorkflowServiceClient<Channel>> {
        Ok(WorkflowServiceClient::new(self.channel().await?))
    }

    pub async fn transitions(&self) -> anyhow::Result<TransitionServiceClient<Channel>> {
        Ok(TransitionServiceClient::new(self.channel().await?))
    }

    pub async fn gates(&self) -> anyhow::Result<GateServiceClient<Channel>> {
        Ok(GateServiceClient::new(self.channel().await?))
    }

    pub async fn identity(&self) -> anyhow::Result<IdentityServiceClient<Channel>> {
        Ok(IdentityServiceClient::new(self.channel().await?))
    }

    pub async fn audit(&self) -> anyhow::Result<AuditServiceClient<Channel>> {
        Ok(AuditServiceClient::new(self.channel().await?))
    }

    pub async fn catalog(
        &self,
    ) -> anyhow::Result<opsgate_proto::v1::catalog_service_client::CatalogServiceClient<Channel>>
    {
        Ok(
            opsgate_proto::v1::catalog_service_client::CatalogServiceClient::new(
                self.channel().await?,
            ),
        )
    }

    pub async fn notifications(
        &self,
    ) -> anyhow::Result<
        opsgate_proto::v1::notification_service_client::NotificationServiceClient<Channel>,
    > {
        Ok(
            opsgate_proto::v1::notification_service_client::NotificationServiceClient::new(
                self.channel().await?,
            ),
        )
    }

    /// A request that changes something: with the token when there is one, else (development
    /// servers only) with the acting person; fails before any network call when neither is set.
    pub fn acting<T>(&self, message: T) -> anyhow::Result<Request<T>> {
        if self.token().is_some() {
            return self.reading(message);
        }
        let actor = self
            .actor
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "this command changes state: give your API token with --token or OPSGATE_TOKEN \
                     (on a development server, --as NAME or OPSGATE_ACTOR)"
                )
            })?;
        // Names are Unicode; metadata is ASCII: percent-encode what is not (the server decodes).
        let value = MetadataValue::try_from(encode_actor(actor))
            .map_err(|_| anyhow!("--as '{actor}' cannot be sent"))?;
        let mut request = Request::new(message);
        request.metadata_mut().insert(ACTOR_METADATA_KEY, value);
        Ok(request)
    }

    /// A request carrying the token, when there is one (reads need none on a development server).
    pub fn reading<T>(&self, message: T) -> anyhow::Result<Request<T>> {
        let mut request = Request::new(message);
        if let Some(token) = self.token() {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| anyhow!("--token must be the og_... text the SMO gave you"))?;
            request
                .metadata_mut()
                .insert(AUTHORIZATION_METADATA_KEY, value);
        }
        Ok(request)
    }

    fn token(&self) -> Option<&str> {
        self.token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }
}

/// `--server` as a URI: a bare `host:port` (the form grpcurl takes) means plaintext `http://`.
pub(crate) fn server_uri(server: &str) -> String {
    let server = server.trim();
    if server.contains("://") {
        server.to_owned()
    } else {
        format!("http://{server}")
    }
}

/// A failure as one readable text: gRPC statuses show their code, message and field violations.
pub(crate) fn describe(err: &anyhow::Error) -> String {
    let Some(status) = err.downcast_ref::<tonic::Status>() else {
        return format!("{err:#}");
    };
    let mut text = format!("{} ({})", status.message(), code_words(status.code()));
    if let Some(bad) = status.get_details_bad_request() {
        for v in bad.field_violations {
            if !status.message().contains(&v.description) {
                text.push_str(&format!("\n  {}: {}", v.field, v.description));
            }
        }
    }
    text
}

/// `FailedPrecondition` as "failed precondition".
fn code_words(code: tonic::Code) -> String {
    let name = format!("{code:?}");
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}
