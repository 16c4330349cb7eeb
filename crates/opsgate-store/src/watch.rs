//! Change announcements: which transitions a commit changed, for whoever waits on one (a CI
//! pipeline watching its gate). A wake-up only: the watcher reads the transition again, the
//! database stays the truth. This process's own commits are announced after they commit; on
//! PostgreSQL a commit that opens, closes or accepts a transition's gate also sends `NOTIFY
//! opsgate_changes` (from the guarded update itself, no extra statement), which a listener turns
//! into the same announcements on every replica.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sea_orm::DbBackend;
use tokio::sync::broadcast;

use crate::Store;

/// The PostgreSQL notification channel.
pub(crate) const CHANNEL: &str = "opsgate_changes";

/// Announcements kept for a watcher that has not read them yet; one that falls further behind
/// is told it missed some ([`Changed::Unknown`]) and reads its transition again.
pub(crate) const CAPACITY: usize = 4096;

/// What a commit changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// This transition changed.
    Transition(Arc<str>),
    /// Announcements may have been missed (the listener reconnected, or the watcher fell
    /// behind): any transition may have changed.
    Unknown,
}

/// A subscription to announcements.
#[derive(Debug)]
pub struct ChangeFeed {
    rx: broadcast::Receiver<Changed>,
}

impl ChangeFeed {
    /// The next announcement; [`Changed::Unknown`] after missed ones. `None` once the store is
    /// gone.
    pub async fn next(&mut self) -> Option<Changed> {
        match self.rx.recv().await {
            Ok(changed) => Some(changed),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Changed::Unknown),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Store {
    /// Announcements of the transitions changed from now on (by this process, and on PostgreSQL
    /// once [`Store::listen_for_changes`] runs, by every replica).
    pub fn subscribe_changes(&self) -> ChangeFeed {
        ChangeFeed {
            rx: self.changed.subscribe(),
        }
    }

    /// Announces that `ids` changed (after their commit).
    pub(crate) fn announce<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        if self.changed.receiver_count() == 0 {
            return;
        }
        for id in ids {
            // No receiver left is no reason to fail a write.
            let _ = self.changed.send(Changed::Transition(Arc::from(id)));
        }
    }

    /// On PostgreSQL, starts the task that turns other replicas' `NOTIFY`s into announcements
    /// (reconnecting after a lost connection, and announcing [`Changed::Unknown`] then). Nothing
    /// to do on SQLite, where this process is the only writer.
    pub fn listen_for_changes(&self) {
        if self.backend() != DbBackend::Postgres {
            return;
        }
        let pool = self.db.get_postgres_connection_pool().clone();
        // Weak: the task ends with the store (at its next notification).
        let changed = Arc::downgrade(&self.changed);
        tokio::spawn(async move {
            let mut first = true;
            loop {
                match listen(&pool, &changed, first).await {
                    Ok(()) => return,
                    // The store is closing: its pool waits for this task's connection.
                    Err(_) if pool.is_closed() => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "listening for changes failed; again in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                first = false;
            }
        });
    }
}

/// Listens until the store is dropped (`Ok`) or the listener fails.
async fn listen(
    pool: &sea_orm::sqlx::PgPool,
    changed: &Weak<broadcast::Sender<Changed>>,
    first: bool,
) -> Result<(), sea_orm::sqlx::Error> {
    let send = |c: Changed| match changed.upgrade() {
        Some(sender) => {
            let _ = sender.send(c);
            true
        }
        None => false,
    };
    // Closing the pool ends `try_recv` with an error, so the store closes without waiting here.
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    if !first && !send(Changed::Unknown) {
        return Ok(());
    }
    loop {
        let alive = match listener.try_recv().await? {
            Some(notification) => notification
                .payload()
                .split(',')
                .filter(|s| !s.is_empty())
                .all(|id| send(Changed::Transition(Arc::from(id)))),
            // The connection was lost (`recv` would reconnect silently, losing what was sent
            // meanwhile); the next `try_recv` reconnects.
            None => send(Changed::Unknown),
        };
        if !alive {
            return Ok(());
        }
    }
}
