//! The timer task: every `check_seconds`, finds the transitions with work due soon and fires the
//! reminders, overdue notices and escalations that are due (`opsgate_domain::timers`). Each is
//! recorded with its notice in one transaction (`Store::fire_timers`), so it fires once however
//! often and on however many replicas this runs, and a restart loses nothing: what is due is
//! derived from the stored transitions, never held in memory.

use std::time::Duration;

use opsgate_domain::timers::{TimerRules, due_timers};
use opsgate_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::TimersConfig;

/// Transitions read per round trip.
const PAGE: u64 = 500;

/// Starts the task; it ends when `stop` turns true.
pub(crate) fn spawn(
    store: Store,
    config: TimersConfig,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let rules = config.rules();
    let every = Duration::from_secs(config.check_seconds.max(1));
    tokio::spawn(async move {
        loop {
            match check(&store, &rules).await {
                Ok(0) => {}
                Ok(fired) => tracing::info!(fired, "timers fired"),
                Err(e) => tracing::warn!(error = %e, "checking the timers failed; trying again"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    })
}

/// Fires every timer due now; how many fired.
pub(crate) async fn check(store: &Store, rules: &TimerRules) -> opsgate_store::Result<usize> {
    let now = store.now();
    let horizon = rules.horizon(now.date_naive());
    let deputies = store.delegations_in_force().await?;
    let mut after: Option<String> = None;
    let mut fired = 0;
    loop {
        let ids = store
            .timer_candidates(horizon, after.as_deref(), PAGE)
            .await?;
        let mut due = Vec::new();
        for id in &ids {
            let view = store.get_transition(id).await?;
            due.extend(due_timers(
                &view.workflow.workflow,
                &view.state,
                &view.id,
                now,
                rules,
                &deputies,
            ));
        }
        fired += store.fire_timers(&due).await?;
        if (ids.len() as u64) < PAGE {
            return Ok(fired);
        }
        after = ids.last().cloned();
    }
}
