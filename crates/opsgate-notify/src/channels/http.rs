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
    // The receiver's own words, bounded (Slack answers `invalid_token`, `channel_not_found`):
    // the first bytes only, whatever the receiver sends after them.
    let said = first_bytes(response, 1024).await.unwrap_or_default();
    let said: String = String::from_utf8_lossy(&said).chars().take(200).collect();
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

/// At most `limit` bytes of `response`'s body: read a chunk at a time and cut there, so that a
/// receiver answering with a body of any size (or one that never ends) costs at most `limit`
/// bytes of memory and no wait beyond them.
pub(crate) async fn first_bytes(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await? {
            Some(chunk) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            None => break,
        }
    }
    Ok(body)
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
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A receiver on loopback answering every request 500 with a chunked body that never ends
    /// (a broken proxy, or a hostile endpoint); it counts the bytes it managed to send.
    async fn endless_receiver() -> (String, tokio::sync::oneshot::Receiver<usize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (sent, counted) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n\
                        transfer-encoding: chunked\r\n\r\n";
            let mut total = 0;
            if socket.write_all(head.as_bytes()).await.is_ok() {
                let chunk = format!("1000\r\n{}\r\n", "x".repeat(0x1000));
                // Until the client hangs up (or 1 GiB, should it never).
                while total < 1 << 30 && socket.write_all(chunk.as_bytes()).await.is_ok() {
                    total += 0x1000;
                }
            }
            let _ = sent.send(total);
        });
        (url, counted)
    }

    #[tokio::test]
    async fn an_endless_error_body_is_read_only_as_far_as_the_reason_needs() {
        let (url, counted) = endless_receiver().await;
        let policy = TargetPolicy {
            allow_loopback: true,
            allow_private: false,
        };
        let target = JsonTarget::new(&url, "the test receiver", policy).unwrap();
        let outcome = target.post(&serde_json::json!({"text": "hello"})).await;
        let Outcome::Retry { reason, after } = outcome else {
            panic!("{outcome:?}");
        };
        // The receiver's words, cut at 200 characters: not a timeout.
        assert_eq!(
            reason,
            format!(
                "{} answered 500 Internal Server Error: {}",
                redacted(&reqwest::Url::parse(&url).unwrap()),
                "x".repeat(200)
            )
        );
        assert_eq!(after, None);
        // The connection was dropped once those bytes were in: the receiver could send only
        // what the socket buffers held, far from the 1 GiB it would have.
        let sent = counted.await.unwrap();
        assert!(sent < 64 << 20, "the receiver sent {sent} bytes");
    }

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
