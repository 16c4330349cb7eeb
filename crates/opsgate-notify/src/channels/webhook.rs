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
        // Serialized straight from the notice: no `serde_json::Value` built on the way (a map
        // and a string per field, on every delivery).
        let written = if self.cloudevents {
            serde_json::to_vec(&CloudEvent {
                specversion: "1.0",
                id,
                source: &self.source,
                kind: format!("org.opsgate.{}", notice.kind.as_str()),
                subject: &notice.transition_id,
                time: moment(notice),
                datacontenttype: "application/json",
                data,
            })
        } else {
            serde_json::to_vec(&plain_event(notice, data))
        };
        written.unwrap_or_default()
    }
}

/// The notice as event data: its fields, and `link` when the server knows its web address.
#[derive(Debug, serde::Serialize)]
pub(crate) struct EventData<'a> {
    #[serde(flatten)]
    notice: &'a Notice,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

/// The plain event envelope (webhooks without CloudEvents, NATS).
#[derive(Debug, serde::Serialize)]
pub(crate) struct PlainEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: EventData<'a>,
}

/// The CloudEvents 1.0 JSON envelope.
#[derive(Debug, serde::Serialize)]
struct CloudEvent<'a> {
    specversion: &'static str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    kind: String,
    subject: &'a str,
    time: String,
    datacontenttype: &'static str,
    data: EventData<'a>,
}

/// When `notice` was made, as the envelopes give it (RFC 3339, milliseconds, `Z`).
fn moment(notice: &Notice) -> String {
    notice
        .at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The notice as event data, with its link when there is a web address.
pub(crate) fn event_data<'a>(notice: &'a Notice, link_base: Option<&str>) -> EventData<'a> {
    EventData {
        notice,
        link: link_base.map(|base| format!("{base}{}", notice.transition_id)),
    }
}

/// The plain event envelope of `notice`.
pub(crate) fn plain_event<'a>(notice: &'a Notice, data: EventData<'a>) -> PlainEvent<'a> {
    PlainEvent {
        kind: notice.kind.as_str(),
        timestamp: moment(notice),
        data,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::message::tests::notice;

    fn notifier(cloudevents: bool, link_base: Option<&str>) -> WebhookNotifier {
        WebhookNotifier::new(
            "https://hooks.example.org/opsgate",
            Vec::new(),
            cloudevents,
            "https://opsgate.example".to_owned(),
            link_base.map(str::to_owned),
            TargetPolicy::default(),
        )
        .unwrap()
    }

    /// The notice's fields as the domain serializes them, and the link when given.
    fn expected_data(link: Option<&str>) -> serde_json::Value {
        let mut data = serde_json::to_value(notice()).unwrap();
        if let Some(link) = link {
            data["link"] = link.into();
        }
        data
    }

    #[test]
    fn the_plain_body_is_the_kind_the_moment_and_the_notice_with_its_link() {
        let body =
            notifier(false, Some("https://opsgate.example/transitions/")).body("msg_1", &notice());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "deliverable_submitted",
                "timestamp": "2026-12-01T09:00:00.000Z",
                "data": expected_data(Some(
                    "https://opsgate.example/transitions/0190aaaa-0000-7000-8000-000000000001"
                )),
            })
        );
        // Without a web address there is no link, and nothing else changes.
        let body = notifier(false, None).body("msg_1", &notice());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"], expected_data(None));
        assert_eq!(v["data"]["due"], "2026-12-04");
        assert_eq!(v["data"]["act_next"], serde_json::json!(["Olga", "Oscar"]));
    }

    #[test]
    fn the_cloudevents_body_is_a_structured_cloudevents_1_0_envelope() {
        let body = notifier(true, None).body("msg_2", &notice());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "specversion": "1.0",
                "id": "msg_2",
                "source": "https://opsgate.example",
                "type": "org.opsgate.deliverable_submitted",
                "subject": "0190aaaa-0000-7000-8000-000000000001",
                "time": "2026-12-01T09:00:00.000Z",
                "datacontenttype": "application/json",
                "data": expected_data(None),
            })
        );
    }
}
