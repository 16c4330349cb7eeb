//! The notification dispatcher: gives the store its routes to channels (writes store those
//! deliveries themselves), fans the outbox's notices out into deliveries by the configured
//! routes, starts the timers (`timers`), and runs one worker per channel that claims that
//! channel's due deliveries (under a lease, so each is attempted by one replica) and attempts
//! them with the channel's own concurrency, so that a slow endpoint holds up only itself.
//! Workers, attempts and the settler run on a thread of their own (`opsgate-notify`).
//! Outcomes are stored in batches (on SQLite by the writes' own transactions): delivered,
//! retried on the Standard Webhooks schedule (the same `webhook-id` every time), dead-lettered
//! after the last attempt, or disabled with the channel on a 410.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use opsgate_domain::Delegation;
use opsgate_domain::contact::Contact;
use opsgate_domain::notice::{Notice, NoticeKind};
use opsgate_notify::channels::chat::ChatNotifier;
use opsgate_notify::channels::email::EmailNotifier;
use opsgate_notify::channels::log::LogNotifier;
use opsgate_notify::channels::nats::NatsNotifier;
use opsgate_notify::channels::slack_bot::SlackBot;
use opsgate_notify::channels::webhook::WebhookNotifier;
use opsgate_notify::signature::Secret;
use opsgate_notify::target::TargetPolicy;
use opsgate_notify::{Notifier, Outcome, Recipient, schedule};
use opsgate_store::{Delivery, Settle, Store, WriteRoutes};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{NotifySection, RouteTo};

/// How long a claim holds a delivery: longer than an attempt's timeout (15 s).
const LEASE_SECONDS: i64 = 60;
/// How often the workers look without being woken (deliveries retried later, other replicas'
/// notices).
const TICK: Duration = Duration::from_secs(1);
/// Notices fanned out per transaction.
const FAN_OUT_BATCH: u64 = 512;
/// Deliveries in flight per channel when the channel does not say.
const DEFAULT_CONCURRENCY: usize = 8;
/// After a wake-up, how long to let more work gather before the next transaction: every
/// fan-out, claim and settlement is a commit of its own (on SQLite one fsync, taken from the
/// writer's turn), so taking notices in batches of a few milliseconds' worth keeps them few.
const GATHER: Duration = Duration::from_millis(10);

/// One configured channel, ready to deliver.
#[derive(Debug, Clone)]
struct Channel {
    name: String,
    notifier: Arc<dyn Notifier>,
    concurrency: usize,
}

/// Which channels get which notices, and whether at the channel's destination or at each
/// person's own address.
#[derive(Debug, Clone)]
struct Routes {
    /// Per channel and destination, the kinds it gets (`None`: every kind).
    entries: Vec<RouteEntry>,
}

#[derive(Debug, Clone)]
struct RouteEntry {
    channel: String,
    to: RouteTo,
    kinds: Option<HashSet<NoticeKind>>,
}

impl RouteEntry {
    /// Whether this route takes notices of `kind`.
    fn takes(&self, kind: NoticeKind) -> bool {
        self.kinds.as_ref().is_none_or(|k| k.contains(&kind))
    }
}

impl Routes {
    fn from_config(config: &NotifySection) -> Self {
        if config.routes.is_empty() {
            return Self {
                entries: config
                    .channels
                    .iter()
                    .map(|c| RouteEntry {
                        channel: c.name.clone(),
                        to: RouteTo::Channel,
                        kinds: None,
                    })
                    .collect(),
            };
        }
        let mut kinds: HashMap<(String, RouteTo), Option<HashSet<NoticeKind>>> = HashMap::new();
        for route in &config.routes {
            let all = route.events.iter().any(|e| e == "*");
            for channel in &route.channels {
                let entry = kinds
                    .entry((channel.clone(), route.to))
                    .or_insert_with(|| Some(HashSet::new()));
                if all {
                    *entry = None;
                } else if let Some(set) = entry {
                    set.extend(route.events.iter().filter_map(|e| NoticeKind::parse(e)));
                }
            }
        }
        let mut entries = Vec::new();
        for c in &config.channels {
            for to in [RouteTo::Channel, RouteTo::People] {
                if let Some(k) = kinds.remove(&(c.name.clone(), to)) {
                    entries.push(RouteEntry {
                        channel: c.name.clone(),
                        to,
                        kinds: k,
                    });
                }
            }
        }
        Self { entries }
    }

    /// The channels a notice of `kind` goes to, when no route takes that kind to people (then
    /// a write stores its deliveries itself); `None` when the outbox must take it.
    fn channels_only(&self, kind: NoticeKind) -> Option<Vec<String>> {
        if self
            .entries
            .iter()
            .any(|e| e.to == RouteTo::People && e.takes(kind))
        {
            return None;
        }
        Some(
            self.entries
                .iter()
                .filter(|e| e.takes(kind))
                .map(|e| e.channel.clone())
                .collect(),
        )
    }

    /// Whether any route reaches people (the fan-out then needs the delegations in force).
    fn reaches_people(&self) -> bool {
        self.entries.iter().any(|e| e.to == RouteTo::People)
    }

    /// The deliveries of `notice`, as (channel, recipient): the recipient empty for the
    /// channel's own destination, else a person the notice is for. `deputies` are the
    /// delegations in force: a deputy hears of a submission beside the approver.
    fn of(&self, notice: &Notice, deputies: &[Delegation]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for e in &self.entries {
            if !e.takes(notice.kind) {
                continue;
            }
            match e.to {
                RouteTo::Channel => out.push((e.channel.clone(), String::new())),
                RouteTo::People => {
                    for person in people_of(notice, deputies) {
                        out.push((e.channel.clone(), person));
                    }
                }
            }
        }
        out
    }
}

/// The people `notice` is for: its recipients and, for a submission, the deputies in force of
/// the approvers among them.
fn people_of(notice: &Notice, deputies: &[Delegation]) -> Vec<String> {
    let mut people = notice.recipients.clone();
    if notice.kind == NoticeKind::DeliverableSubmitted {
        for d in deputies.iter().filter(|d| d.in_force(notice.at)) {
            let (from, to) = (d.from.to_string(), d.to.to_string());
            if people.contains(&from) && !people.contains(&to) {
                people.push(to);
            }
        }
    }
    people
}

/// Builds the channels of `config`; an error names the channel.
fn channels(config: &NotifySection) -> Result<Vec<Channel>, String> {
    let policy = TargetPolicy {
        allow_loopback: config.allow_loopback,
        allow_private: config.allow_private,
    };
    let link_base = config
        .base_url
        .as_ref()
        .map(|b| format!("{}/transitions/", b.trim_end_matches('/')));
    config
        .channels
        .iter()
        .map(|c| {
            let notifier: Arc<dyn Notifier> = match c.kind.as_str() {
                "log" => Arc::new(LogNotifier {
                    channel: c.name.clone(),
                }),
                "webhook" => {
                    let secrets = c
                        .secrets
                        .iter()
                        .map(|s| Secret::parse(s).map_err(|e| e.to_string()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| format!("notify channel {}: {e}", c.name))?;
                    let url = c.resolved_url().unwrap_or_default();
                    Arc::new(
                        WebhookNotifier::new(
                            &url,
                            secrets,
                            c.cloudevents,
                            config
                                .base_url
                                .clone()
                                .unwrap_or_else(|| "urn:opsgate".to_owned()),
                            link_base.clone(),
                            policy,
                        )
                        .map_err(|e| format!("notify channel {}: {e}", c.name))?,
                    )
                }
                "slack" if c.is_slack_bot() => Arc::new(
                    SlackBot::new(
                        c.api_url.as_deref(),
                        &c.resolved_token().unwrap_or_default(),
                        c.channel.clone(),
                        link_base.clone(),
                        policy,
                    )
                    .map_err(|e| format!("notify channel {}: {e}", c.name))?,
                ),
                "slack" => Arc::new(
                    ChatNotifier::slack(
                        &c.resolved_url().unwrap_or_default(),
                        link_base.clone(),
                        policy,
                    )
                    .map_err(|e| format!("notify channel {}: {e}", c.name))?,
                ),
                "teams" => Arc::new(
                    ChatNotifier::teams(
                        &c.resolved_url().unwrap_or_default(),
                        link_base.clone(),
                        policy,
                    )
                    .map_err(|e| format!("notify channel {}: {e}", c.name))?,
                ),
                "email" => Arc::new(
                    EmailNotifier::new(
                        &c.resolved_url().unwrap_or_default(),
                        c.from.as_deref().unwrap_or_default(),
                        &c.to,
                        link_base.clone(),
                    )
                    .map_err(|e| format!("notify channel {}: {e}", c.name))?,
                ),
                "nats" => Arc::new(
                    NatsNotifier::new(
                        &c.resolved_url().unwrap_or_default(),
                        c.subject.as_deref().unwrap_or_default(),
                        c.jetstream,
                        link_base.clone(),
                    )
                    .map_err(|e| format!("notify channel {}: {e}", c.name))?,
                ),
                other => return Err(format!("notify channel {}: unknown kind {other}", c.name)),
            };
            Ok(Channel {
                name: c.name.clone(),
                notifier,
                concurrency: c.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
            })
        })
        .collect()
}

/// The store as the delivery thread uses it. Its database calls run on the server's main
/// runtime: a PostgreSQL connection the pool opens is a socket driven by the runtime that opened
/// it, and the pool's connections must belong to the runtime that serves requests and outlives
/// the delivery thread. (A call costs a spawn there; the thread makes few: a claim round a tick,
/// settlements when writes pause, a person's contact details.)
#[derive(Debug, Clone)]
struct Db {
    store: Store,
    main: tokio::runtime::Handle,
}

impl Db {
    async fn run<T, F>(&self, call: impl FnOnce(Store) -> F) -> opsgate_store::Result<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = opsgate_store::Result<T>> + Send + 'static,
    {
        self.main
            .spawn(call(self.store.clone()))
            .await
            .unwrap_or_else(|e| {
                Err(opsgate_store::Error::Unavailable(format!(
                    "the server is stopping: {e}"
                )))
            })
    }
}

/// The running dispatcher.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    tasks: Vec<JoinHandle<()>>,
    store: Store,
    /// Ends the delivery thread once its tasks are done.
    thread_done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Dispatcher {
    /// Starts fanning out and delivering on `store` until `stop` turns true.
    pub(crate) async fn start(
        store: Store,
        config: &NotifySection,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, String> {
        let channels = channels(config)?;
        let routes = Routes::from_config(config);
        let scale = config.retry_scale.unwrap_or(1.0);
        if let Err(e) = store.release_claims().await {
            tracing::warn!(error = %e, "could not release the previous run's delivery claims");
        }
        let (settled, queue) = mpsc::channel::<(String, Settle, Option<String>)>(4096);
        let (on, thread_done) = delivery_thread()?;
        let db = Db {
            store: store.clone(),
            main: tokio::runtime::Handle::current(),
        };
        let mut tasks = vec![
            on.spawn(settle(db.clone(), queue)),
            crate::timers::spawn(store.clone(), config.timers, stop.clone()),
        ];
        let mut fresh = HashMap::new();
        for channel in channels {
            // Unbounded, but never longer than one fan-out's deliveries beyond what the
            // channel's permits hold: the worker takes each as a permit frees.
            let (sender, receiver) = mpsc::unbounded_channel();
            fresh.insert(channel.name.clone(), sender);
            tasks.push(on.spawn(deliver(
                db.clone(),
                channel,
                scale,
                receiver,
                settled.clone(),
                stop.clone(),
            )));
        }
        // Notices that go only to channels: their deliveries are stored by the write itself
        // and handed straight to the channels' workers after its commit.
        let in_writes = routes.clone();
        let sinks = fresh.clone();
        store.route_in_writes(Some(WriteRoutes {
            channels_for: Box::new(move |kind| in_writes.channels_only(kind)),
            sink: Box::new(move |made| {
                for d in made {
                    if let Some(worker) = sinks.get(&d.channel) {
                        // A closed worker (the server stopping) leaves the delivery claimed in
                        // the database: attempted when its lease runs out or at the next start.
                        let _ = worker.send(d);
                    }
                }
            }),
            lease: chrono::Duration::seconds(LEASE_SECONDS),
        }));
        tasks.push(tokio::spawn(fan_out(
            store.clone(),
            routes,
            fresh,
            stop.clone(),
        )));
        tracing::info!(
            channels = config.channels.len(),
            routes = config.routes.len(),
            "notifications on"
        );
        Ok(Self {
            tasks,
            store,
            thread_done: Some(thread_done),
        })
    }

    /// Waits for every task to finish (after `stop` turned true): in-flight attempts complete
    /// and their outcomes are stored.
    pub(crate) async fn finish(self) {
        self.store.route_in_writes(None);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(done) = self.thread_done {
            let _ = done.send(());
        }
    }
}

/// A thread of its own for the deliveries (`opsgate-notify`), with a single-threaded runtime
/// that runs the channels' workers, their attempts, their HTTP connections and the settler: the
/// tasks a notice makes stay off the runtime that serves requests and runs the writer, whose
/// batches would otherwise wait behind them in its queues. Runs until the sender it returns
/// fires (or is dropped).
fn delivery_thread() -> Result<(tokio::runtime::Handle, tokio::sync::oneshot::Sender<()>), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the notification thread: {e}"))?;
    let handle = runtime.handle().clone();
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("opsgate-notify".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                let _ = finished.await;
            });
        })
        .map_err(|e| format!("starting the notification thread: {e}"))?;
    Ok((handle, done))
}

/// Waits for a wake-up, the tick, or the stop; true when stopping.
async fn idle(signal: &mut watch::Receiver<u64>, stop: &mut watch::Receiver<bool>) -> bool {
    let woken = tokio::select! {
        _ = signal.changed() => true,
        _ = tokio::time::sleep(TICK) => false,
        _ = stop.wait_for(|s| *s) => return true,
    };
    if woken {
        tokio::time::sleep(GATHER).await;
    }
    false
}

async fn fan_out(
    store: Store,
    routes: Routes,
    fresh: HashMap<String, mpsc::UnboundedSender<Delivery>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut signal = store.outbox_signal();
    let lease = chrono::Duration::seconds(LEASE_SECONDS);
    loop {
        loop {
            // A deputy hears of what the person they stand in for must review.
            let deputies = if routes.reaches_people() {
                match store.delegations_in_force().await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the delegations failed; trying again");
                        break;
                    }
                }
            } else {
                Vec::new()
            };
            match store
                .fan_out(FAN_OUT_BATCH, lease, |n| routes.of(n, &deputies))
                .await
            {
                Ok((0, _)) => break,
                Ok((_, made)) => {
                    // Claimed by the fan-out: straight to their channel's worker.
                    for d in made {
                        if let Some(worker) = fresh.get(&d.channel) {
                            let _ = worker.send(d);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fanning out notices failed; trying again");
                    break;
                }
            }
        }
        if *stop.borrow() || idle(&mut signal, &mut stop).await {
            return;
        }
    }
}

/// Stores outcomes: queued for the writes' own transactions on SQLite (the next write batch
/// takes them, so the dispatcher costs the one writer no turn of its own while writes flow);
/// what no batch took within [`GATHER`], and everything on PostgreSQL, in a transaction of its
/// own for all that has arrived.
async fn settle(db: Db, mut queue: mpsc::Receiver<(String, Settle, Option<String>)>) {
    let store = &db.store;
    let mut batch = Vec::with_capacity(512);
    // When to store what is queued, and the write batches committed when it was armed.
    let mut due: Option<(tokio::time::Instant, u64)> = None;
    loop {
        let wake = due.map(|(at, _)| at);
        tokio::select! {
            n = queue.recv_many(&mut batch, 2048) => {
                if n == 0 {
                    break;
                }
                for (_, _, gone) in &batch {
                    if let Some((channel, reason)) = gone.as_ref().and_then(|g| g.split_once('\n')) {
                        let (named, why) = (channel.to_owned(), reason.to_owned());
                        let disabled = db
                            .run(|s| async move { s.disable_channel(&named, &why).await })
                            .await;
                        if let Err(e) = disabled {
                            tracing::warn!(error = %e, channel, "could not disable the channel");
                        }
                        tracing::warn!(
                            channel,
                            reason,
                            "notification channel disabled: its endpoint is gone"
                        );
                    }
                }
                store.queue_settlements(batch.drain(..).map(|(id, s, _)| (id, s)));
                if due.is_none() {
                    due = Some((tokio::time::Instant::now() + GATHER, store.write_batches()));
                }
            }
            _ = tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)), if wake.is_some() => {
                let armed = due.map(|(_, b)| b).unwrap_or_default();
                let batches = store.write_batches();
                if store.settles_in_writes() && batches != armed {
                    // Writes are flowing: the next batch takes what is queued.
                    due = Some((tokio::time::Instant::now() + GATHER, batches));
                    continue;
                }
                due = None;
                // A failure leaves them queued: the next batch or round stores them; until
                // then their leases keep them from being attempted twice.
                if let Err(e) = db.run(|s| async move { s.settle_queued().await }).await {
                    tracing::warn!(error = %e, "could not store delivery outcomes");
                    due = Some((tokio::time::Instant::now() + TICK, store.write_batches()));
                }
            }
        }
    }
    // Every sender is gone (the server is stopping): store what is left.
    if let Err(e) = db.run(|s| async move { s.settle_queued().await }).await {
        tracing::warn!(error = %e, "could not store delivery outcomes");
    }
}

async fn deliver(
    db: Db,
    channel: Channel,
    scale: f64,
    mut fresh: mpsc::UnboundedReceiver<Delivery>,
    settled: mpsc::Sender<(String, Settle, Option<String>)>,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(channel.concurrency));
    let lease = chrono::Duration::seconds(LEASE_SECONDS);
    // Why the channel is disabled, if it is: read at a claim round after any work, not on every
    // idle one.
    let mut disabled: Option<String> = disabled_reason(&db, &channel.name).await.ok().flatten();
    let mut active = false;
    let mut next_claim = tokio::time::Instant::now();
    loop {
        if *stop.borrow() {
            // Let the attempts in flight finish and report.
            let _ = permits.acquire_many(channel.concurrency as u32).await;
            return;
        }
        // Deliveries due in the database (retries, work a crashed replica left, deliveries
        // retried by the SMO): claimed once a tick, and again at once while a claim fills every
        // free permit.
        if tokio::time::Instant::now() >= next_claim {
            if std::mem::take(&mut active) {
                disabled = disabled_reason(&db, &channel.name)
                    .await
                    .unwrap_or(disabled);
            }
            if permits.available_permits() == 0 {
                // Every permit is in use: claim when one frees.
                let _ = permits.acquire().await.map(drop);
            }
            let free = permits.available_permits();
            let name = channel.name.clone();
            match db
                .run(|s| async move { s.claim_deliveries(&name, free as u64, lease).await })
                .await
            {
                Ok(claimed) => {
                    let full = free > 0 && claimed.len() == free;
                    active |= !claimed.is_empty();
                    for d in claimed {
                        start(&db, &channel, &permits, &settled, &disabled, scale, d).await;
                    }
                    next_claim = if full {
                        tokio::time::Instant::now()
                    } else {
                        tokio::time::Instant::now() + TICK
                    };
                }
                Err(e) => {
                    tracing::warn!(error = %e, channel = %channel.name, "claiming deliveries failed");
                    next_claim = tokio::time::Instant::now() + TICK;
                }
            }
        }
        let next = tokio::select! {
            d = fresh.recv() => d,
            _ = tokio::time::sleep_until(next_claim) => continue,
            _ = stop.wait_for(|s| *s) => continue,
        };
        match next {
            Some(d) => {
                active = true;
                start(&db, &channel, &permits, &settled, &disabled, scale, d).await;
            }
            // The fan-out stopped: the server is stopping.
            None => {
                let _ = stop.wait_for(|s| *s).await;
            }
        }
    }
}

/// Why `channel` is disabled, or `None` while it is enabled.
async fn disabled_reason(db: &Db, channel: &str) -> opsgate_store::Result<Option<String>> {
    let disabled = db
        .run(|s| async move { s.disabled_channels().await })
        .await?;
    Ok(disabled.get(channel).cloned())
}

/// Attempts `d` once a permit of the channel is free, in a task of its own that reports the
/// outcome to the settler.
async fn start(
    db: &Db,
    channel: &Channel,
    permits: &Arc<Semaphore>,
    settled: &mpsc::Sender<(String, Settle, Option<String>)>,
    disabled: &Option<String>,
    scale: f64,
    d: Delivery,
) {
    if let Some(reason) = disabled {
        let error = format!("channel {} is disabled: {reason}", channel.name);
        let _ = settled
            .send((d.webhook_id, Settle::Disabled { error }, None))
            .await;
        return;
    }
    let Ok(permit) = permits.clone().acquire_owned().await else {
        return;
    };
    let (notifier, settled, name, db) = (
        channel.notifier.clone(),
        settled.clone(),
        channel.name.clone(),
        db.clone(),
    );
    tokio::spawn(async move {
        let outcome = attempt(&*notifier, &d, scale, &db).await;
        let gone = match &outcome {
            Settle::Disabled { error } => Some(format!("{name}\n{error}")),
            _ => None,
        };
        let _ = settled.send((d.webhook_id.clone(), outcome, gone)).await;
        drop(permit);
    });
}

/// Where to reach the person delivery `d` is for: their stored contact details, else the
/// mailbox the workflow gives for them (a contact such as the SMO), else nowhere.
async fn recipient(db: &Db, d: &Delivery) -> opsgate_store::Result<Recipient> {
    let name = d.recipient.clone();
    let asked = name.clone();
    let stored = db
        .run(|s| async move { s.people(std::slice::from_ref(&asked)).await })
        .await?;
    let contact = match stored.into_iter().next() {
        Some(p) => p.contact,
        None => Contact {
            email: d.notice.mailboxes.get(&name).cloned(),
            ..Contact::default()
        },
    };
    Ok(Recipient { name, contact })
}

/// One attempt, and what to store of it.
async fn attempt(notifier: &dyn Notifier, d: &Delivery, scale: f64, db: &Db) -> Settle {
    let outcome = if d.recipient.is_empty() {
        notifier.deliver(&d.webhook_id, &d.notice).await
    } else {
        match recipient(db, d).await {
            Ok(to) => notifier.deliver_to(&d.webhook_id, &d.notice, &to).await,
            Err(e) => Outcome::Retry {
                reason: format!("reading {}'s contact details failed: {e}", d.recipient),
                after: None,
            },
        }
    };
    match outcome {
        Outcome::Undeliverable { reason } => Settle::Failed { error: reason },
        Outcome::Delivered => Settle::Delivered,
        Outcome::Gone { reason } => Settle::Disabled { error: reason },
        Outcome::Retry { reason, after } => {
            let attempts = d.attempts + 1;
            match schedule::next_wait(attempts, schedule::jitter(), after) {
                Some(wait) => {
                    let wait = if after.is_some() {
                        wait
                    } else {
                        wait.mul_f64(scale)
                    };
                    let at = db.store.now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                    Settle::Retry { at, error: reason }
                }
                None => Settle::Failed {
                    error: format!("{reason} (after {attempts} attempts)"),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deliveries_run_on_their_own_thread_and_their_database_calls_on_the_main_runtime() {
        let (on, done) = delivery_thread().unwrap();
        let here = std::thread::current().id();
        let (name, id) = on
            .spawn(async {
                // An attempt's HTTP connection is a task of its own, spawned where it runs.
                tokio::spawn(async {
                    let t = std::thread::current();
                    (t.name().map(str::to_owned), t.id())
                })
                .await
                .unwrap()
            })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("opsgate-notify"));
        assert_ne!(id, here);
        // The database calls of its tasks run on the runtime that started it.
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(opsgate_store::ConnectOptions::new(url))
            .await
            .unwrap();
        let db = Db {
            store: store.clone(),
            main: tokio::runtime::Handle::current(),
        };
        let (ran_on, disabled) = on
            .spawn(async move {
                db.run(|s| async move {
                    let disabled = s.disabled_channels().await?;
                    Ok((std::thread::current().id(), disabled))
                })
                .await
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ran_on, here);
        assert!(disabled.is_empty());
        // A task still waiting when the thread ends is dropped with its runtime.
        let waiting = on.spawn(std::future::pending::<()>());
        done.send(()).unwrap();
        assert!(waiting.await.unwrap_err().is_cancelled());
        store.close().await.unwrap();
    }
}
