//! Connecting to the server, attaching the acting person, and describing failures for people.

use anyhow::{Context as _, anyhow};
use opsgate_proto::metadata::{ACTOR_METADATA_KEY, AUTHORIZATION_METADATA_KEY, encode_actor};
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
    /// An API token (`og_...`): who the caller is, on any server.
    pub token: Option<String>,
}

impl Context {
    async fn channel(&self) -> anyhow::Result<Channel> {
        let endpoint = Channel::from_shared(server_uri(&self.server))
            .map_err(|e| anyhow!("invalid --server '{}': {e}", self.server))?;
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
