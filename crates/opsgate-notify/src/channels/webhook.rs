//! `webhook`: an HTTP POST of the notice as JSON (or in a CloudEvents 1.0 envelope), signed per
//! Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`, every configured
//! secret at once for rotation). 2xx is delivered; 410 disables the endpoint; 429 and 503 (and
//! 502, 504) are retried after their `Retry-After`; anything else, a redirect included, and every
//! network failure, retried on the schedule.

use std::time::Duration;

use crate::signature::{Secret, header};
use crate::target::{TargetPolicy, check_url, client};
use crate::{Attempt, Notice, Notifier};

/// Longest wait for a receiver's answer.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// One webhook endpoint.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    url: reqwest::Url,
    secrets: Vec<Secret>,
    cloudevents: bool,
    /// The `source` of CloudEvents: where opsgate runs.
    source: String,
    /// A link to a transition is this followed by its id.
    link_base: Option<String>,
    policy: TargetPolicy,
    http: reqwest::Client,
}

impl WebhookNotifier {
    /// A notifier posting to `url`; refused when the URL is not http(s) or names a refused
    /// address.
    pub fn new(
        url: &str,
        secrets: Vec<Secret>,
        cloudevents: bool,
        source: String,
        link_base: Option<String>,
        policy: TargetPolicy,
    ) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
        check_url(&url, policy).map_err(|e| e.0)?;
        let http = client(policy, TIMEOUT).map_err(|e| e.to_string())?;
        Ok(Self {
            url,
            secrets,
            cloudevents,
            source,
            link_base,
            policy,
            http,
        })
    }

    /// The body posted for `notice`.
    pub fn body(&self, id: &str, notice: &Notice) -> Vec<u8> {
        let data = event_data(notice, self.link_base.as_deref());
        let value = if self.cloudevents {
            serde_json::json!({
                "specversion": "1.0",
                "id": id,
                "source": self.source,
                "type": format!("org.opsgate.{}", notice.kind.as_str()),
                "subject": notice.transition_id,
                "time": notice.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "datacontenttype": "application/json",
                "data": data,
            })
        } else {
            plain_event(notice, data)
        };
        serde_json::to_vec(&value).unwrap_or_default()
    }
}

/// The notice as event data: its fields, and `link` when the server knows its web address.
pub(crate) fn event_data(notice: &Notice, link_base: Option<&str>) -> serde_json::Value {
    let mut data = serde_json::to_value(notice).unwrap_or(serde_json::Value::Null);
    if let (Some(base), Some(object)) = (link_base, data.as_object_mut()) {
        object.insert(
            "link".to_owned(),
            serde_json::Value::String(format!("{base}{}", notice.transition_id)),
        );
    }
    data
}

/// The plain event envelope (webhooks without CloudEvents, NATS).
pub(crate) fn plain_event(notice: &Notice, data: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "type": notice.kind.as_str(),
        "timestamp": notice.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
}

impl Notifier for WebhookNotifier {
    fn deliver<'a>(&'a self, id: &'a str, notice: &'a Notice) -> Attempt<'a> {
        Box::pin(async move {
            if let Some(refused) = super::http::refused(&self.url, self.policy) {
                return refused;
            }
            let body = self.body(id, notice);
            let timestamp = chrono::Utc::now().timestamp();
            let mut request = self
                .http
                .post(self.url.clone())
                .header(
                    "content-type",
                    if self.cloudevents {
                        "application/cloudevents+json"
                    } else {
                        "application/json"
                    },
                )
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp.to_string());
            if !self.secrets.is_empty() {
                request = request.header(
                    "webhook-signature",
                    header(&self.secrets, id, timestamp, &body),
                );
            }
            super::http::send(request.body(body), &self.url).await
        })
    }
}
