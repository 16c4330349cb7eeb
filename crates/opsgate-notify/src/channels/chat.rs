//! `slack` and `teams`: a chat webhook taking one JSON message per notice, the shared `Message`
//! laid out by the platform's layout (`slack::blocks`, `teams::card`) and posted through one
//! `JsonTarget`. For one person (a route with `to = "people"`), Slack posts to the channel's
//! webhook mentioning the person's member id (an incoming webhook posts only where it was made;
//! `slack_bot` sends a direct message instead), Teams posts to the person's own Workflows
//! webhook.

use serde_json::Value;

use super::http::JsonTarget;
use super::message::Message;
use crate::target::TargetPolicy;
use crate::{Attempt, Notice, Notifier, Outcome, Recipient};

/// Which chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    Slack,
    Teams,
}

/// One chat webhook (it posts to the channel it was created for).
#[derive(Debug, Clone)]
pub struct ChatNotifier {
    target: JsonTarget,
    platform: Platform,
    link_base: Option<String>,
}

impl ChatNotifier {
    /// A Slack incoming webhook at `url`, Block Kit messages.
    pub fn slack(
        url: &str,
        link_base: Option<String>,
        policy: TargetPolicy,
    ) -> Result<Self, String> {
        Ok(Self {
            target: JsonTarget::new(url, "the Slack webhook URL", policy)?,
            platform: Platform::Slack,
            link_base,
        })
    }

    /// A Teams Workflows webhook at `url`, Adaptive Cards.
    pub fn teams(
        url: &str,
        link_base: Option<String>,
        policy: TargetPolicy,
    ) -> Result<Self, String> {
        Ok(Self {
            target: JsonTarget::new(url, "the Teams webhook URL", policy)?,
            platform: Platform::Teams,
            link_base,
        })
    }

    /// The message posted for `notice`.
    pub fn body(&self, notice: &Notice) -> Value {
        let message = Message::of(notice, self.link_base.as_deref());
        match self.platform {
            Platform::Slack => super::slack::blocks(&message),
            Platform::Teams => super::teams::card(&message),
        }
    }
}

/// How a Slack message names `slack` (a member id, a channel id or a channel name) so that
/// Slack notifies them.
pub fn slack_mention(slack: &str) -> String {
    match slack.chars().next() {
        Some('U' | 'W') => format!("<@{slack}>"),
        Some('C' | 'G') => format!("<#{slack}>"),
        _ => slack.to_owned(),
    }
}

/// The outcome for a person with no Slack id, saying what fixes it.
pub(crate) fn no_slack_id(name: &str) -> Outcome {
    Outcome::Undeliverable {
        reason: format!("{name} has no Slack id: opsgate person set \"{name}\" --slack U0123ABCD"),
    }
}

/// `body` (Block Kit) opened with a line for `mention`.
pub(crate) fn addressed(mut body: Value, mention: &str) -> Value {
    if let Some(blocks) = body.get_mut("blocks").and_then(Value::as_array_mut) {
        blocks.insert(
            0,
            serde_json::json!({
                "type": "section",
                "text": {"type": "mrkdwn", "text": format!("For {mention}")},
            }),
        );
    }
    if let Some(text) = body.get_mut("text") {
        *text = Value::String(format!("{mention}: {}", text.as_str().unwrap_or_default()));
    }
    body
}

impl Notifier for ChatNotifier {
    fn deliver<'a>(&'a self, _id: &'a str, notice: &'a Notice) -> Attempt<'a> {
        Box::pin(async move { self.target.post(&self.body(notice)).await })
    }

    fn deliver_to<'a>(
        &'a self,
        _id: &'a str,
        notice: &'a Notice,
        to: &'a Recipient,
    ) -> Attempt<'a> {
        Box::pin(async move {
            let name = &to.name;
            match self.platform {
                Platform::Slack => match &to.contact.slack {
                    Some(slack) => {
                        let body = addressed(self.body(notice), &slack_mention(slack));
                        self.target.post(&body).await
                    }
                    None => no_slack_id(name),
                },
                Platform::Teams => match &to.contact.teams_webhook {
                    Some(url) => self.target.post_to(url, &self.body(notice)).await,
                    None => Outcome::Undeliverable {
                        reason: format!(
                            "{name} has no Teams webhook: opsgate person set \"{name}\" \
                             --teams-webhook URL"
                        ),
                    },
                },
            }
        })
    }
}
