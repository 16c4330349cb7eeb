//! `log`: one structured tracing line per notification (always delivered).

use crate::{Attempt, Notice, Notifier, Outcome};

/// Writes each notice to the server log at info level, target `opsgate::notify`.
#[derive(Debug, Clone, Default)]
pub struct LogNotifier {
    pub channel: String,
}

impl Notifier for LogNotifier {
    fn deliver<'a>(&'a self, id: &'a str, notice: &'a Notice) -> Attempt<'a> {
        Box::pin(async move {
            tracing::info!(
                target: "opsgate::notify",
                channel = %self.channel,
                id,
                kind = notice.kind.as_str(),
                transition = %notice.transition_id,
                service = %notice.service_name,
                version = %notice.service_version,
                node = notice.node_id.as_deref().unwrap_or(""),
                act_next = %notice.act_next.first().map_or("", String::as_str),
                due = %notice.due.map(|d| d.to_string()).unwrap_or_default(),
                "{}",
                notice.headline
            );
            Outcome::Delivered
        })
    }
}
