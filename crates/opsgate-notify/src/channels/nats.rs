//! `nats`: each notice's event JSON (the webhook's plain body) published to `SUBJECT.KIND` on a
//! NATS server, with the delivery id as `Nats-Msg-Id`. With `jetstream`, the delivery counts only
//! once the stream acknowledges it (and JetStream drops a retry it already stored, by that id);
//! without, once the server has the message (a flush).

use std::time::Duration;

use tokio::sync::OnceCell;

use super::webhook::{event_data, plain_event};
use crate::{Attempt, Notice, Notifier, Outcome};

/// Longest wait to connect, and for JetStream's acknowledgement.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// One NATS server (or cluster) and the subject prefix of the channel.
pub struct NatsNotifier {
    url: String,
    /// Where the server is, without credentials (for errors).
    server: String,
    subject: String,
    jetstream: bool,
    link_base: Option<String>,
    /// Connected on the first delivery; the client reconnects by itself afterwards.
    client: OnceCell<async_nats::Client>,
}

impl std::fmt::Debug for NatsNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsNotifier")
            .field("server", &self.server)
            .field("subject", &self.subject)
            .field("jetstream", &self.jetstream)
            .finish_non_exhaustive()
    }
}

impl NatsNotifier {
    /// A notifier publishing to `subject.KIND` on the server at `url` (`nats://host:4222`,
    /// `tls://...`; user and password in the URL).
    pub fn new(
        url: &str,
        subject: &str,
        jetstream: bool,
        link_base: Option<String>,
    ) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("the NATS URL is not a URL: {e}"))?;
        if parsed.host_str().is_none() {
            return Err("the NATS URL names no host".to_owned());
        }
        // Without user and password.
        let server = super::http::redacted(&parsed);
        let valid = |t: &str| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        };
        if !subject.split('.').all(valid) {
            return Err(format!(
                "subject '{subject}': dot-separated tokens of letters, digits, - and _ (no \
                 wildcards; the notice kind is appended)"
            ));
        }
        Ok(Self {
            url: url.to_owned(),
            server,
            subject: subject.to_owned(),
            jetstream,
            link_base,
            client: OnceCell::new(),
        })
    }

    async fn client(&self) -> Result<&async_nats::Client, String> {
        self.client
            .get_or_try_init(|| async {
                async_nats::ConnectOptions::new()
                    .connection_timeout(TIMEOUT)
                    .connect(self.url.as_str())
                    .await
                    .map_err(|e| format!("{}: {e}", self.server))
            })
            .await
    }

    async fn publish(&self, id: &str, notice: &Notice) -> Result<(), String> {
        let client = self.client().await?;
        let subject = format!("{}.{}", self.subject, notice.kind.as_str());
        let body = serde_json::to_vec(&plain_event(
            notice,
            event_data(notice, self.link_base.as_deref()),
        ))
        .map_err(|e| e.to_string())?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
        if self.jetstream {
            let ack = async_nats::jetstream::new(client.clone())
                .publish_with_headers(subject.clone(), headers, body.into())
                .await
                .map_err(|e| format!("{}: {subject}: {e}", self.server))?;
            tokio::time::timeout(TIMEOUT, ack.into_future())
                .await
                .map_err(|_| format!("{}: {subject}: no acknowledgement in time", self.server))?
                .map_err(|e| format!("{}: {subject}: {e}", self.server))?;
        } else {
            client
                .publish_with_headers(subject.clone(), headers, body.into())
                .await
                .map_err(|e| format!("{}: {subject}: {e}", self.server))?;
            client
                .flush()
                .await
                .map_err(|e| format!("{}: {e}", self.server))?;
        }
        Ok(())
    }
}

impl Notifier for NatsNotifier {
    fn deliver<'a>(&'a self, id: &'a str, notice: &'a Notice) -> Attempt<'a> {
        Box::pin(async move {
            match self.publish(id, notice).await {
                Ok(()) => Outcome::Delivered,
                Err(reason) => Outcome::Retry {
                    reason,
                    after: None,
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_checked() {
        assert!(NatsNotifier::new("nats://127.0.0.1:4222", "opsgate.events", true, None).is_ok());
        for bad in ["", "ops.*", "ops.>", "ops..x", "ops gate"] {
            assert!(
                NatsNotifier::new("nats://127.0.0.1:4222", bad, true, None).is_err(),
                "{bad}"
            );
        }
        assert!(
            NatsNotifier::new("not a url", "ops", false, None)
                .unwrap_err()
                .contains("not a URL")
        );
    }
}
