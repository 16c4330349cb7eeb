//! opsgate's notifiers: what a notification says ([`Notice`]), the [`Notifier`] trait (one kind
//! of channel, one implementation: `log`, `webhook`, `slack`, `teams`, `email`, `nats`), Standard Webhooks signing, the retry
//! schedule, and the check of webhook targets. Depends on the domain only; the server stores the
//! outbox and runs the dispatcher.

pub mod channels;
pub mod schedule;
pub mod signature;
pub mod target;

use std::time::Duration;

pub use opsgate_domain::notice::{Notice, NoticeKind};

/// What one attempt to deliver came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver took it (HTTP 2xx, a JetStream ack, the SMTP server's 250).
    Delivered,
    /// Try again later; `after` when the receiver said when (`Retry-After`).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The endpoint is gone (HTTP 410): disable it, deliver nothing more to it.
    Gone { reason: String },
    /// It cannot be delivered as things are (a person with no address for this channel):
    /// dead-lettered at once, for the SMO to fix and retry.
    Undeliverable { reason: String },
}

/// The person a delivery is for and where to reach them: their stored contact details, or a
/// workflow contact's mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub name: String,
    pub contact: opsgate_domain::contact::Contact,
}

/// A future of one attempt's outcome.
pub type Attempt<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'a>>;

/// A kind of channel: delivers one notice to one endpoint.
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Delivers `notice`; `id` is the same on every attempt (the webhook-id receivers
    /// deduplicate on).
    fn deliver<'a>(&'a self, id: &'a str, notice: &'a Notice) -> Attempt<'a>;

    /// Delivers `notice` to one person, `to` (a route with `to = "people"`). Channels that
    /// reach endpoints rather than people (webhook, nats, log) cannot; configuration refuses
    /// such a route before it gets here.
    fn deliver_to<'a>(&'a self, id: &'a str, notice: &'a Notice, to: &'a Recipient) -> Attempt<'a> {
        let _ = (id, notice);
        Box::pin(async move {
            Outcome::Undeliverable {
                reason: format!(
                    "this channel does not reach people (a delivery for {})",
                    to.name
                ),
            }
        })
    }
}
