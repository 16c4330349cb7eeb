//! `slack` with a bot token: messages posted through Slack's Web API (`chat.postMessage`), so
//! that a route with `to = "people"` reaches each person in a direct message from the app (an
//! incoming webhook can only post to the one channel it was made for). The same Block Kit
//! layout as the webhook (`slack::blocks`). Slack answers most errors with HTTP 200 and
//! `{"ok": false, "error": ...}`, so the answer's body decides the outcome, not its status.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::Value;

use super::chat::slack_mention;
use super::http::{TIMEOUT, redacted, refused, retry_after, unanswered};
use super::message::Message;
use crate::target::{TargetPolicy, check_url, client};
use crate::{Attempt, Notice, Notifier, Outcome, Recipient};

/// Slack's Web API.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// A Slack app's bot user, posting with its token.
#[derive(Clone)]
pub struct SlackBot {
    /// `.../chat.postMessage` under the API base.
    post_message: reqwest::Url,
    /// `Bearer xoxb-...`, marked sensitive (never printed by the HTTP stack).
    authorization: HeaderValue,
    /// Where a route to the channel posts (a channel id such as `C0123ABCD`, or `#name`).
    channel: Option<String>,
    link_base: Option<String>,
    policy: TargetPolicy,
    http: reqwest::Client,
}

impl std::fmt::Debug for SlackBot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackBot")
            .field("api", &redacted(&self.post_message))
            .field("token", &"(secret)")
            .field("channel", &self.channel)
            .finish()
    }
}

/// Whether `token` is a Slack bot token (`xoxb-...`): a user token would post as that person.
pub fn is_bot_token(token: &str) -> bool {
    token.starts_with("xoxb-")
        && token.len() <= 256
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl SlackBot {
    /// A bot posting with `token` through the Web API at `api_url` (`DEFAULT_API_URL` when
    /// `None`); `channel` is where routes to the channel post.
    pub fn new(
        api_url: Option<&str>,
        token: &str,
        channel: Option<String>,
        link_base: Option<String>,
        policy: TargetPolicy,
    ) -> Result<Self, String> {
        if !is_bot_token(token) {
            return Err("the Slack token is not a bot token (xoxb-...)".into());
        }
        let base = api_url.unwrap_or(DEFAULT_API_URL).trim_end_matches('/');
        let post_message = reqwest::Url::parse(&format!("{base}/chat.postMessage"))
            .map_err(|e| format!("the Slack API URL is not a URL: {e}"))?;
        check_url(&post_message, policy).map_err(|e| e.0)?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the Slack token is not a bot token (xoxb-...)".to_owned())?;
        authorization.set_sensitive(true);
        let http = client(policy, TIMEOUT).map_err(|e| e.to_string())?;
        Ok(Self {
            post_message,
            authorization,
            channel,
            link_base,
            policy,
            http,
        })
    }

    /// The `chat.postMessage` body for `notice` in `channel`, opened with `For <mention>` when
    /// the message goes to a channel on someone's behalf.
    pub fn body(&self, notice: &Notice, channel: &str, mention: Option<&str>) -> Value {
        let mut body = super::slack::blocks(&Message::of(notice, self.link_base.as_deref()));
        if let Some(mention) = mention {
            body = super::chat::addressed(body, mention);
        }
        body["channel"] = Value::String(channel.to_owned());
        // Links are buttons already; an unfurled preview of the page would repeat them.
        body["unfurl_links"] = Value::Bool(false);
        body
    }

    async fn post(&self, body: &Value, fix: &str) -> Outcome {
        if let Some(refused) = refused(&self.post_message, self.policy) {
            return refused;
        }
        let sent = self
            .http
            .post(self.post_message.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )
            .body(body.to_string())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return unanswered(&self.post_message, &e),
        };
        let status = response.status();
        let after = retry_after(&response);
        // Slack's answers are small; a receiver sending more is cut off at 64 KiB (read no
        // further).
        let text = match super::http::first_bytes(response, 65_536).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => return unanswered(&self.post_message, &e),
        };
        answer(status, after, &text, fix)
    }
}

/// What Slack's answer means. `fix` says how to mend an unknown conversation.
fn answer(
    status: reqwest::StatusCode,
    after: Option<std::time::Duration>,
    text: &str,
    fix: &str,
) -> Outcome {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let ok = parsed.as_ref().and_then(|v| v["ok"].as_bool());
    let error: String = parsed
        .as_ref()
        .and_then(|v| v["error"].as_str())
        .unwrap_or_default()
        .chars()
        .take(100)
        .collect();
    if status.is_success() && ok == Some(true) {
        return Outcome::Delivered;
    }
    if status == reqwest::StatusCode::GONE {
        return Outcome::Gone {
            reason: "the Slack API answered 410 Gone".into(),
        };
    }
    if status.is_success() {
        return match error.as_str() {
            // The conversation does not exist or the bot cannot post there: attempting again
            // changes nothing until someone mends it.
            "channel_not_found"
            | "user_not_found"
            | "is_archived"
            | "not_in_channel"
            | "cannot_dm_bot"
            | "user_disabled"
            | "messages_tab_disabled" => Outcome::Undeliverable {
                reason: format!("Slack answered {error}: {fix}"),
            },
            "invalid_auth"
            | "not_authed"
            | "token_revoked"
            | "token_expired"
            | "account_inactive"
            | "missing_scope"
            | "not_allowed_token_type" => Outcome::Retry {
                reason: format!(
                    "Slack refused the bot token ({error}): give the channel a valid bot token \
                     with the chat:write scope"
                ),
                after,
            },
            "" => Outcome::Retry {
                reason: format!("Slack answered {status} without ok: true"),
                after,
            },
            other => Outcome::Retry {
                reason: format!("Slack answered {other}"),
                after,
            },
        };
    }
    Outcome::Retry {
        reason: if error.is_empty() {
            format!("Slack answered {status}")
        } else {
            format!("Slack answered {status}: {error}")
        },
        after,
    }
}

impl Notifier for SlackBot {
    fn deliver<'a>(&'a self, _id: &'a str, notice: &'a Notice) -> Attempt<'a> {
        Box::pin(async move {
            let Some(channel) = &self.channel else {
                return Outcome::Undeliverable {
                    reason: "this Slack channel has no `channel` to post to: set channel in its \
                             configuration"
                        .into(),
                };
            };
            let fix = format!("invite the app to {channel}, or correct the channel's `channel`");
            self.post(&self.body(notice, channel, None), &fix).await
        })
    }

    fn deliver_to<'a>(
        &'a self,
        _id: &'a str,
        notice: &'a Notice,
        to: &'a Recipient,
    ) -> Attempt<'a> {
        Box::pin(async move {
            let name = &to.name;
            let Some(slack) = &to.contact.slack else {
                return super::chat::no_slack_id(name);
            };
            // A member id opens the direct message with the app; a channel gets the message
            // addressed to the person.
            let mention = match slack.chars().next() {
                Some('U' | 'W') => None,
                _ => Some(slack_mention(slack)),
            };
            let fix = format!(
                "check {name}'s Slack id ({slack}) and that the app may post there: opsgate \
                 person set \"{name}\" --slack U0123ABCD"
            );
            self.post(&self.body(notice, slack, mention.as_deref()), &fix)
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn only_bot_tokens_are_taken() {
        assert!(is_bot_token("xoxb-1234-5678-abcdEFGH"));
        assert!(!is_bot_token("xoxp-1234-5678-abcd"));
        assert!(!is_bot_token("xoxb-12 34"));
        assert!(!is_bot_token("xoxb-1\r\nX-Evil: 1"));
        let err = SlackBot::new(None, "xoxp-1", None, None, TargetPolicy::default()).unwrap_err();
        assert!(err.contains("bot token"), "{err}");
        assert!(!err.contains("xoxp-1"), "the token is never shown: {err}");
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let bot = SlackBot::new(
            Some("https://slack.example/api"),
            "xoxb-secret-token",
            Some("C0123".into()),
            None,
            TargetPolicy::default(),
        )
        .unwrap();
        let shown = format!("{bot:?}");
        assert!(!shown.contains("secret-token"), "{shown}");
        assert!(bot.authorization.is_sensitive());
        assert_eq!(
            bot.post_message.as_str(),
            "https://slack.example/api/chat.postMessage"
        );
    }

    #[test]
    fn slack_errors_in_a_200_decide_the_outcome() {
        let ok = StatusCode::OK;
        assert_eq!(
            answer(ok, None, r#"{"ok":true,"ts":"1.2"}"#, "fix"),
            Outcome::Delivered
        );
        assert_eq!(
            answer(
                ok,
                None,
                r#"{"ok":false,"error":"channel_not_found"}"#,
                "do X"
            ),
            Outcome::Undeliverable {
                reason: "Slack answered channel_not_found: do X".into()
            }
        );
        assert!(matches!(
            answer(ok, None, r#"{"ok":false,"error":"invalid_auth"}"#, "fix"),
            Outcome::Retry { reason, .. } if reason.contains("bot token")
        ));
        assert!(matches!(
            answer(ok, None, "<html>proxy</html>", "fix"),
            Outcome::Retry { .. }
        ));
        let wait = Some(std::time::Duration::from_secs(30));
        assert_eq!(
            answer(
                StatusCode::TOO_MANY_REQUESTS,
                wait,
                r#"{"ok":false,"error":"ratelimited"}"#,
                "fix"
            ),
            Outcome::Retry {
                reason: "Slack answered 429 Too Many Requests: ratelimited".into(),
                after: wait
            }
        );
    }
}
