//! One HTTP POST to a receiver and what its answer means, shared by the webhook, Slack and Teams
//! channels: 2xx delivered; 410 gone (disable the endpoint); 429 and 5xx retried, after their
//! `Retry-After` when they give one; anything else (a redirect included: they are not followed)
//! and every network failure retried on the schedule.

use std::time::Duration;

use crate::Outcome;
use crate::target::{TargetPolicy, check_url, client};

/// Longest wait for a chat receiver's answer.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// A receiver that takes JSON posts (a Slack or Teams webhook): its URL, checked at start-up and
/// at every connection.
#[derive(Debug, Clone)]
pub(crate) struct JsonTarget {
    url: reqwest::Url,
    policy: TargetPolicy,
    http: reqwest::Client,
}

impl JsonTarget {
    /// `what` names the receiver in errors (`the Slack webhook URL`).
    pub(crate) fn new(url: &str, what: &str, policy: TargetPolicy) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("{what} is not a URL: {e}"))?;
        check_url(&url, policy).map_err(|e| e.0)?;
        let http = client(policy, TIMEOUT).map_err(|e| e.to_string())?;
        Ok(Self { url, policy, http })
    }

    /// Posts `body` and classifies the answer.
    pub(crate) async fn post(&self, body: &serde_json::Value) -> Outcome {
        if let Some(refused) = refused(&self.url, self.policy) {
            return refused;
        }
        send(self.http.post(self.url.clone()).json(body), &self.url).await
    }

    /// Posts `body` to `url` instead (a person's own webhook), checked like the channel's.
    pub(crate) async fn post_to(&self, url: &str, body: &serde_json::Value) -> Outcome {
        let url = match reqwest::Url::parse(url) {
            Ok(url) => url,
            Err(e) => {
                return Outcome::Undeliverable {
                    reason: format!("the person's webhook is not a URL: {e}"),
                };
            }
        };
        if let Some(refused) = refused(&url, self.policy) {
            return refused;
        }
        send(self.http.post(url.clone()).json(body), &url).await
    }
}

/// `url` checked again at the time of sending (its name may resolve elsewhere by now): a
/// refusal is retried on the schedule.
pub(crate) fn refused(url: &reqwest::Url, policy: TargetPolicy) -> Option<Outcome> {
    check_url(url, policy).err().map(|refused| Outcome::Retry {
        reason: refused.0,
        after: None,
    })
}

/// A request to `url` that got no answer (a network failure): retried on the schedule.
pub(crate) fn unanswered(url: &reqwest::Url, e: &reqwest::Error) -> Outcome {
    Outcome::Retry {
        reason: format!("{}: {}", redacted(url), error_chain(e)),
        after: None,
    }
}

/// The wait an answer asks for in its `Retry-After`, if it gives one.
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::schedule::retry_after)
}

/// Sends `request` (a POST to `url`) and classifies the answer.
pub(crate) async fn send(request: reqwest::RequestBuilder, url: &reqwest::Url) -> Outcome {
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return unanswered(url, &e),
    };
    let status = response.status();
    if status.is_success() {
        return Outcome::Delivered;
    }
    if status == reqwest::StatusCode::GONE {
        return Outcome::Gone {
            reason: format!("{} answered 410 Gone", redacted(url)),
        };
    }
    let after = retry_after(&response);
    // The receiver's own words, bounded (Slack answers `invalid_token`, `channel_not_found`).
    let said = response
        .text()
        .await
        .map(|t| t.chars().take(200).collect::<String>())
        .unwrap_or_default();
    let said = said.trim();
    Outcome::Retry {
        reason: if said.is_empty() {
            format!("{} answered {status}", redacted(url))
        } else {
            format!("{} answered {status}: {said}", redacted(url))
        },
        after,
    }
}

/// `url` as errors may show it: Slack and Teams webhook URLs carry their secret in the path and
/// query, so only the scheme, host and port are shown.
pub(crate) fn redacted(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        (Some(host), None) => format!("{}://{host}", url.scheme()),
        _ => url.scheme().to_owned(),
    }
}

/// An error with its causes, for the delivery's last error.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_webhook_urls_are_not_shown() {
        let url =
            reqwest::Url::parse("https://hooks.slack.com/services/T000/B000/XXXXSECRET?sig=abc")
                .unwrap();
        assert_eq!(redacted(&url), "https://hooks.slack.com");
        let url = reqwest::Url::parse("http://127.0.0.1:8080/hook").unwrap();
        assert_eq!(redacted(&url), "http://127.0.0.1:8080");
    }
}
