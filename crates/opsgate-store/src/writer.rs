//! Transition writes, and group commit on SQLite: one task runs queued writes in shared
//! transactions, so that one fsync makes a whole batch durable.
//!
//! SQLite has one writer at a time and a commit costs an fsync, which caps a write-per-commit
//! server near the disk's fsync rate. Here every transition write of the process goes through one
//! queue; the writer task takes whatever is queued (up to [`MAX_BATCH`]), decides each in order
//! inside one `BEGIN IMMEDIATE` transaction (a later write sees the earlier ones' states), writes
//! them all with one flush (`changes`: the transition rows in one round trip, the rest with the
//! commit in another), commits once and only then answers every caller. A refused write (a
//! domain error) writes nothing and does not disturb the others. When the batch fails in the database, it is rolled back and every write is run again
//! alone, so that one write the database rejects cannot fail its neighbours.
//!
//! PostgreSQL needs none of this (concurrent commits share WAL flushes there): each write runs in
//! its own transaction on the pool, through the same code.

use opsgate_domain::{Acting, Command};
use tokio::sync::{mpsc, oneshot};

use crate::changes::Changes;
use crate::transitions::{Decided, Executed, NewTransition, Started, TransitionView};
use crate::{Error, Result, Store};

/// Most writes committed together.
const MAX_BATCH: usize = 128;
/// Writes waiting for the writer task before callers wait to enqueue.
const QUEUE: usize = 4096;

/// One write to a transition.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    Start {
        new: NewTransition,
        acting: Acting,
    },
    Execute {
        id: String,
        command: Command,
        acting: Acting,
    },
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<TransitionView>>,
}

/// The queue in front of the writer task; the task ends when every handle is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on `store` (which must not itself hold a writer).
    pub(crate) fn spawn(store: Store) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, jobs));
        Self { queue }
    }

    async fn submit(&self, write: Write) -> Result<TransitionView> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { write, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| {
            Error::OutcomeUnknown(
                "the outcome of this write is unknown: the writer failed (see the server log) or \
                 the server is stopping; read the transition before retrying"
                    .into(),
            )
        })?
    }
}

fn stopped() -> Error {
    Error::Unavailable("the write queue has stopped (the server is shutting down)".into())
}

async fn run(store: Store, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let taken = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        // A panic in one batch (a bug) fails that batch's callers, not every later write.
        if let Err(e) = tokio::spawn(process(store.clone(), taken)).await {
            tracing::error!(error = %e, "a write batch failed unexpectedly; its callers were told the outcome is unknown");
        }
    }
    tracing::debug!("writer stopped");
}

async fn process(store: Store, jobs: Vec<Job>) {
    let (writes, replies): (Vec<Write>, Vec<_>) =
        jobs.into_iter().map(|j| (j.write, j.reply)).unzip();
    match store.write_batch(&writes).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                // A caller that gave up (its request was cancelled) is no reason to stop.
                let _ = reply.send(result);
            }
        }
        Err(e) if writes.len() == 1 => {
            let e = store.name_duplicate(e, &writes[0]).await;
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, writes = writes.len(), "batch failed; running its writes one by one");
            for (write, reply) in writes.into_iter().zip(replies) {
                let _ = reply.send(store.write_one(write).await);
            }
        }
    }
}

impl Store {
    /// Runs one transition write: through the writer task on SQLite, directly on PostgreSQL.
    pub(crate) async fn write(&self, write: Write) -> Result<TransitionView> {
        match &self.writer {
            Some(writer) => writer.submit(write).await,
            None => self.write_one(write).await,
        }
    }

    /// A start that lost a race with another replica's start of the same service version is
    /// answered naming the transition that won; any other failure as it is.
    async fn name_duplicate(&self, err: Error, write: &Write) -> Error {
        match (err, write) {
            (Error::DuplicateStart, Write::Start { new, .. }) => self.duplicate_start(new).await,
            (err, _) => err,
        }
    }

    async fn write_one(&self, write: Write) -> Result<TransitionView> {
        let mut results = match self.write_batch(std::slice::from_ref(&write)).await {
            Ok(results) => results,
            Err(e) => return Err(self.name_duplicate(e, &write).await),
        };
        results
            .pop()
            .unwrap_or_else(|| Err(Error::Corrupt("a write produced no result".into())))
    }

    /// Decides `writes` in order in one transaction, writes them with one flush and commits once.
    /// The outer error means the transaction failed and nothing of it is stored; otherwise each
    /// write has its own result (a refusal wrote nothing). A flush whose `seq` guard finds a
    /// cached state stale is rolled back and the batch decided again on the stored states. The
    /// state cache learns the new states only after the commit.
    pub(crate) async fn write_batch(
        &self,
        writes: &[Write],
    ) -> Result<Vec<Result<TransitionView>>> {
        let began = std::time::Instant::now();
        for _ in 0..2 {
            let txn = self.begin_write().await?;
            let mut changes = Changes::default();
            let mut results = Vec::with_capacity(writes.len());
            for write in writes {
                match self.decide(&txn, &mut changes, write).await {
                    Ok(result) => results.push(result),
                    Err(failed) => {
                        rollback(txn).await;
                        return Err(failed);
                    }
                }
            }
            // The catalog: the services of this batch's starts not known to be there already.
            let unknown: Vec<String> = if self.catalog {
                let known = self
                    .known_services
                    .lock()
                    .map_err(|_| Error::Corrupt("the known services' lock was poisoned".into()))?;
                changes
                    .started_services()
                    .filter(|s| !known.contains(*s))
                    .map(str::to_owned)
                    .collect()
            } else {
                Vec::new()
            };
            let routes = if self.notify {
                self.write_routes()
            } else {
                None
            };
            // On SQLite the dispatcher's outcomes are stored by the writes' own transactions.
            let settling = if self.settles_in_writes() {
                self.take_settlements()
            } else {
                Vec::new()
            };
            let decided = std::time::Instant::now();
            let flushed = match changes
                .flush(
                    &txn,
                    self.people_index,
                    &unknown,
                    routes.as_deref(),
                    &settling,
                )
                .await
            {
                Ok(Some(flushed)) => flushed,
                Ok(None) => {
                    self.queue_settlements(settling);
                    rollback(txn).await;
                    tracing::debug!("a cached state was stale; deciding the batch again");
                    for id in changes.ids() {
                        self.states.remove(id);
                    }
                    continue;
                }
                Err(failed) => {
                    self.queue_settlements(settling);
                    rollback(txn).await;
                    return Err(failed);
                }
            };
            let written = std::time::Instant::now();
            if let Err(e) = changes.commit(txn, flushed.rest).await {
                self.queue_settlements(settling);
                return Err(e);
            }
            if !unknown.is_empty()
                && let Ok(mut known) = self.known_services.lock()
            {
                if known.len() > crate::catalog::MAX_KNOWN {
                    known.clear();
                }
                known.extend(unknown);
            }
            self.batches.record(
                writes.len(),
                [decided - began, written - decided, written.elapsed()],
            );
            if flushed.stored_notices {
                self.signal_outbox();
            }
            if let Some(routes) = &routes
                && !flushed.deliveries.is_empty()
            {
                (routes.sink)(flushed.deliveries);
            }
            self.announce(changes.ids());
            // `make soak` (tests/fsync.rs) checks an fsync of the WAL precedes every such line.
            tracing::debug!(writes = writes.len(), "write batch committed");
            for view in results.iter().flatten() {
                self.states.put(view);
                tracing::debug!(transition = %view.id, seq = view.state.seq, status = view.state.status.as_str(), "transition written");
            }
            return Ok(results);
        }
        let ids: Vec<&str> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Execute { id, .. } => Some(id.as_str()),
                Write::Start { .. } => None,
            })
            .collect();
        Err(Error::Conflict {
            kind: "transition",
            id: ids.join(", "),
        })
    }

    /// Decides one write on top of `changes` and adds its change there. The outer error is a
    /// database failure (the batch fails); the inner result is this write's answer.
    async fn decide(
        &self,
        conn: &crate::WriteTxn,
        changes: &mut Changes,
        write: &Write,
    ) -> Result<Result<TransitionView>> {
        let at = self.now();
        Ok(match write {
            Write::Start { new, acting } => {
                match self.decide_start(conn, changes, new, acting, at).await? {
                    Decided::Write(Started {
                        view,
                        events,
                        outbox,
                    }) => {
                        changes.add_start(view.clone(), events, outbox);
                        Ok(view)
                    }
                    Decided::Refused(refused) => Err(refused),
                }
            }
            Write::Execute {
                id,
                command,
                acting,
            } => {
                match self
                    .decide_execute(conn, changes, id, command, acting, at)
                    .await?
                {
                    Decided::Write(Executed {
                        before,
                        after,
                        events,
                        facts,
                        outbox,
                    }) => {
                        changes.add_execute(before, after.clone(), events, facts, outbox);
                        Ok(after)
                    }
                    Decided::Refused(refused) => Err(refused),
                }
            }
        })
    }
}

async fn rollback(txn: crate::WriteTxn) {
    if let Err(e) = txn.rollback().await {
        tracing::warn!(error = %e, "rollback failed");
    }
}
