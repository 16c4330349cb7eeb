//! `slack` and `teams`: a chat webhook taking one JSON message per notice, the shared `Message`
//! laid out by the platform's layout (`slack::blocks`, `teams::card`) and posted through one
//! `JsonTarget`.

use serde_json::Value;

use super::http::JsonTarget;
use super::message::Message;
use crate::target::TargetPolicy;
use crate::{Notice, Notifier, Outcome};

/// One chat webhook (it posts to the channel it was created for).
#[derive(Debug, Clone)]
pub struct ChatNotifier {
    target: JsonTarget,
    layout: fn(&Message) -> Value,
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
            layout: super::slack::blocks,
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
            layout: super::teams::card,
            link_base,
        })
    }

    /// The message posted for `notice`.
    pub fn body(&self, notice: &Notice) -> Value {
        (self.layout)(&Message::of(notice, self.link_base.as_deref()))
    }
}

impl Notifier for ChatNotifier {
    fn deliver<'a>(
        &'a self,
        _id: &'a str,
        notice: &'a Notice,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'a>> {
        Box::pin(async move { self.target.post(&self.body(notice)).await })
    }
}
