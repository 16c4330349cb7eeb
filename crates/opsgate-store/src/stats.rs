//! What the store tells the metrics endpoint: a histogram of write batch sizes (writes per
//! committed transaction: many on SQLite's group commit, one a transaction on PostgreSQL), the
//! time spent in write transactions, and the transitions by workflow and status.

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{EntityTrait, FromQueryResult, QuerySelect};

use crate::entities::transitions;
use crate::{Result, Store};

/// Upper bounds of the batch size buckets (the last bucket, +Inf, is implied).
pub const BATCH_BUCKETS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// Committed write batches, counted lock-free by the writer.
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Batches whose size is at most the bound of the same index and above the one before.
    buckets: [AtomicU64; BATCH_BUCKETS.len() + 1],
    writes: AtomicU64,
    batches: AtomicU64,
    /// Microseconds from each committed batch's begin to its commit.
    busy_micros: AtomicU64,
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
}

impl BatchStats {
    pub(crate) fn record(&self, writes: usize, busy: std::time::Duration) {
        let n = writes as u64;
        let i = BATCH_BUCKETS
            .iter()
            .position(|&bound| n <= bound)
            .unwrap_or(BATCH_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(n, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.busy_micros.fetch_add(
            u64::try_from(busy.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
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
