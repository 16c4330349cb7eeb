//! What the store tells the metrics endpoint: a histogram of write batch sizes (writes per
//! committed transaction: many on SQLite's group commit, one a transaction on PostgreSQL), the
//! time spent in write transactions and in each of their phases, and the transitions by workflow
//! and status.

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{EntityTrait, FromQueryResult, QuerySelect};

use crate::entities::transitions;
use crate::{Result, Store};

/// Upper bounds of the batch size buckets (the last bucket, +Inf, is implied).
pub const BATCH_BUCKETS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// The phases of a committed write transaction, in order, by their metric label: `decide` from
/// the begin until every write is decided (reading what the state cache lacks), `write` the new
/// and changed transition rows, `commit` the rest of the rows with the commit (SQLite: with its
/// fsync).
pub const WRITE_PHASES: [&str; 3] = ["decide", "write", "commit"];

/// Committed write batches, counted lock-free by the writer.
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Batches whose size is at most the bound of the same index and above the one before.
    buckets: [AtomicU64; BATCH_BUCKETS.len() + 1],
    writes: AtomicU64,
    batches: AtomicU64,
    /// Microseconds from each committed batch's begin to its commit.
    busy_micros: AtomicU64,
    /// Microseconds spent in each of [`WRITE_PHASES`] by committed batches.
    phase_micros: [AtomicU64; WRITE_PHASES.len()],
}

/// A copy of [`BatchStats`] for rendering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSnapshot {
    /// Cumulative counts per bound of [`BATCH_BUCKETS`], then +Inf.
    pub cumulative: Vec<u64>,
    pub writes: u64,
    pub batches: u64,
    /// Microseconds from each committed batch's begin to its commit, summed.
    pub busy_micros: u64,
    /// Microseconds spent in each of [`WRITE_PHASES`], summed.
    pub phase_micros: [u64; WRITE_PHASES.len()],
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl BatchStats {
    /// Counts a committed batch of `writes` that took `phases` (see [`WRITE_PHASES`]).
    pub(crate) fn record(&self, writes: usize, phases: [std::time::Duration; WRITE_PHASES.len()]) {
        let n = writes as u64;
        let i = BATCH_BUCKETS
            .iter()
            .position(|&bound| n <= bound)
            .unwrap_or(BATCH_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(n, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        let mut busy = 0u64;
        for (total, phase) in self.phase_micros.iter().zip(phases) {
            total.fetch_add(micros(phase), Ordering::Relaxed);
            busy = busy.saturating_add(micros(phase));
        }
        self.busy_micros.fetch_add(busy, Ordering::Relaxed);
    }

    /// Batches committed so far.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> BatchSnapshot {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        BatchSnapshot {
            cumulative,
            writes: self.writes.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            busy_micros: self.busy_micros.load(Ordering::Relaxed),
            phase_micros: std::array::from_fn(|i| self.phase_micros[i].load(Ordering::Relaxed)),
        }
    }
}

/// How many transitions of a workflow have a status.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct TransitionCount {
    pub workflow_name: String,
    pub status: String,
    pub count: i64,
}

impl Store {
    /// The write batches committed since the store opened.
    pub fn batch_stats(&self) -> BatchSnapshot {
        self.batches.snapshot()
    }

    /// Write batches committed so far (cheap: one atomic read).
    pub fn write_batches(&self) -> u64 {
        self.batches.batches()
    }

    /// Whether write batches store the queued outcomes of delivery attempts (SQLite: its one
    /// writer), so that the dispatcher needs a transaction of its own only when writes pause.
    pub fn settles_in_writes(&self) -> bool {
        self.backend() == sea_orm::DbBackend::Sqlite
    }

    /// Transitions by workflow and status: one grouped query.
    pub async fn transition_counts(&self) -> Result<Vec<TransitionCount>> {
        Ok(transitions::Entity::find()
            .select_only()
            .column(transitions::Column::WorkflowName)
            .column(transitions::Column::Status)
            .column_as(Expr::col(transitions::Column::Id).count(), "count")
            .group_by(transitions::Column::WorkflowName)
            .group_by(transitions::Column::Status)
            .into_model::<TransitionCount>()
            .all(&self.db)
            .await?)
    }
}
