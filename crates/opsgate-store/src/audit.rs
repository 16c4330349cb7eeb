//! The tamper-evident log, checked and exported: every transition's events are recomputed along
//! its hash chain (`opsgate_domain::hash`) and the first break is named, with what it looks
//! like (edited, removed, inserted or moved); the log is exported with each event's hash.

use chrono::{DateTime, Utc};
use opsgate_domain::TransitionStatus;
use opsgate_domain::hash::{GENESIS, StoredEvent, event_hash, hex, unhex32};
use opsgate_domain::stalled::StallRules;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::changes::most_bounces;
use crate::entities::{events, transitions};
use crate::{Error, Result, Store};

/// Transitions checked per round trip.
const VERIFY_PAGE: u64 = 500;
/// Most events one export page holds.
pub const MAX_EXPORT_PAGE: u32 = 5000;

/// What a break in a chain looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// The event's content no longer matches its hash (the chain goes on after it).
    Edited,
    /// An event is missing: the sequence has a gap.
    Removed,
    /// The event does not follow the one before: inserted, or moved here from elsewhere.
    Misplaced,
    /// Events at the end are missing, or one is there that the transition does not count.
    Truncated,
    /// The event has no hash.
    Unchained,
}

impl BreakKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Edited => "edited",
            BreakKind::Removed => "removed",
            BreakKind::Misplaced => "inserted_or_reordered",
            BreakKind::Truncated => "truncated",
            BreakKind::Unchained => "unchained",
        }
    }
}

/// The first break of one transition's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub transition_id: String,
    /// The first event that is not what the chain says.
    pub seq: u64,
    pub kind: BreakKind,
    pub message: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainReport {
    pub transitions: u64,
    pub events: u64,
    /// One per broken transition: its first break.
    pub breaks: Vec<ChainBreak>,
}

/// One event as exported: every stored column, so that its hash can be recomputed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedEvent {
    /// Position in the whole log (insertion order): the export's page token.
    pub position: i64,
    pub transition_id: String,
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub payload: String,
    pub attribution: Option<String>,
    pub hash: Option<String>,
}

/// Rows whose stall columns one round of [`Store::fill_stall_columns`] fills.
const FILL_ROUND: u64 = 500;

impl Store {
    /// Fills the stall columns of the rows that lack them (`most_bounces` NULL: rows from before
    /// the stall index, or set back to NULL for a recompute after `StallIndex::of` changed); how
    /// many. Run when the database is opened, before any write: a write sets only the columns it
    /// changes, so it relies on the stored ones being those of the state it starts from. Each row
    /// is written only at the `seq` its columns were computed from; cheap when none lack them
    /// (one seek on the `most_bounces` index).
    pub(crate) async fn fill_stall_columns(&self) -> Result<usize> {
        use transitions::Column as C;
        let mut filled = 0;
        loop {
            let ids: Vec<String> = transitions::Entity::find()
                .select_only()
                .column(C::Id)
                .filter(C::MostBounces.is_null())
                .order_by_asc(C::Id)
                .limit(FILL_ROUND)
                .into_tuple()
                .all(&self.write_db)
                .await?;
            let mut round = 0;
            for id in &ids {
                let Some(view) = self.fetch(&self.write_db, id, false).await? else {
                    continue;
                };
                let index =
                    opsgate_domain::stalled::StallIndex::of(&view.workflow.workflow, &view.state);
                let seq = crate::transitions::i64_of(view.state.seq)?;
                let done = transitions::Entity::update_many()
                    .col_expr(C::NextDue, Expr::val(index.next_due))
                    .col_expr(C::OldestSubmission, Expr::val(index.oldest_submission))
                    .col_expr(C::MostBounces, Expr::val(most_bounces(&index)))
                    .col_expr(C::GateOpenSince, Expr::val(index.gate_open_since))
                    .filter(C::Id.eq(id.as_str()))
                    .filter(C::Seq.eq(seq))
                    .exec(&self.write_db)
                    .await?;
                round += usize::try_from(done.rows_affected).unwrap_or(0);
            }
            filled += round;
            // A row written meanwhile (another replica) was filled by that write.
            if round == 0 || (ids.len() as u64) < FILL_ROUND {
                break;
            }
        }
        if filled > 0 {
            tracing::info!(transitions = filled, "stall columns filled");
        }
        Ok(filled)
    }

    /// Ids of the transitions the stalled list may report at `now` under `rules`, in id order:
    /// not completed, and idle, or with a stall index that qualifies, or not indexed yet. One
    /// query per condition, each a range seek on its own index, so that finding few among many
    /// reads few. Only of `workflow` / `service` when given.
    pub async fn stall_candidates(
        &self,
        now: DateTime<Utc>,
        rules: &StallRules,
        workflow: Option<&str>,
        service: Option<&str>,
    ) -> Result<Vec<String>> {
        use transitions::Column as C;
        let unfinished = [
            TransitionStatus::Active.as_str(),
            TransitionStatus::HandedOver.as_str(),
        ];
        let conditions = [
            C::MostBounces.is_null(),
            // Status first: the index on both seeks the unfinished ones, not every old row;
            // then by the day of the last change (what the index holds), and the exact time on
            // the rows found.
            C::Status
                .is_in(unfinished)
                .and(C::UpdatedDay.lte((now - rules.idle).date_naive()))
                .and(C::UpdatedAt.lt(now - rules.idle)),
            C::NextDue.lt(now.date_naive()),
            C::OldestSubmission.lt(now - rules.review),
            C::MostBounces.gt(i64::from(rules.max_bounces)),
            C::GateOpenSince.lt(now - rules.idle),
        ];
        let mut ids: Vec<String> = Vec::new();
        for condition in conditions {
            let mut query = transitions::Entity::find()
                .select_only()
                .column(C::Id)
                .filter(condition)
                .filter(C::Status.ne(TransitionStatus::Completed.as_str()));
            if let Some(w) = workflow {
                query = query.filter(C::WorkflowName.eq(w));
            }
            if let Some(s) = service {
                query = query.filter(C::ServiceName.eq(s));
            }
            let found: Vec<String> = query.into_tuple().all(&self.db).await?;
            ids.extend(found);
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Checks the chain of transition `only`, or of every transition: each event's hash against
    /// its content and the hash before it, the sequence for gaps, and the transition's head and
    /// event count against the last event.
    pub async fn verify_chains(&self, only: Option<&str>) -> Result<ChainReport> {
        let mut report = ChainReport::default();
        let mut after = String::new();
        loop {
            let mut query = transitions::Entity::find()
                .select_only()
                .columns([
                    transitions::Column::Id,
                    transitions::Column::Seq,
                    transitions::Column::HeadHash,
                ])
                .order_by_asc(transitions::Column::Id);
            query = match only {
                Some(id) => query.filter(transitions::Column::Id.eq(id)),
                None => query
                    .filter(transitions::Column::Id.gt(after.as_str()))
                    .limit(VERIFY_PAGE),
            };
            let heads: Vec<(String, i64, Option<String>)> =
                query.into_tuple().all(&self.db).await?;
            if heads.is_empty() {
                if let Some(id) = only
                    && report.transitions == 0
                {
                    return Err(Error::NotFound(format!(
                        "transition '{}' not found",
                        opsgate_domain::clip(id)
                    )));
                }
                return Ok(report);
            }
            let ids: Vec<&str> = heads.iter().map(|(id, _, _)| id.as_str()).collect();
            let rows = events::Entity::find()
                .filter(events::Column::TransitionId.is_in(ids))
                .order_by_asc(events::Column::TransitionId)
                .order_by_asc(events::Column::Seq)
                .all(&self.db)
                .await?;
            let mut rest = rows.as_slice();
            for (id, seq, head) in &heads {
                let n = rest.iter().take_while(|r| &r.transition_id == id).count();
                let (mine, others) = rest.split_at(n);
                rest = others;
                report.transitions += 1;
                report.events += mine.len() as u64;
                if let Some(b) = check_chain(id, *seq, head.as_deref(), mine) {
                    report.breaks.push(b);
                }
            }
            if only.is_some() {
                return Ok(report);
            }
            after = heads
                .last()
                .map(|(id, _, _)| id.clone())
                .unwrap_or_default();
        }
    }

    /// Events in the order they were stored, after position `after`, at most `limit`; only
    /// those at or after `since`, only transition `transition` when given.
    pub async fn export_events(
        &self,
        transition: Option<&str>,
        since: Option<DateTime<Utc>>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ExportedEvent>> {
        let mut query = events::Entity::find()
            .filter(events::Column::Id.gt(after))
            .order_by_asc(events::Column::Id)
            .limit(u64::from(limit.clamp(1, MAX_EXPORT_PAGE)));
        if let Some(id) = transition {
            query = query.filter(events::Column::TransitionId.eq(id));
        }
        if let Some(since) = since {
            query = query.filter(events::Column::At.gte(since));
        }
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| {
                Ok(ExportedEvent {
                    position: r.id,
                    seq: u64::try_from(r.seq)
                        .map_err(|_| Error::Corrupt(format!("event seq {}", r.seq)))?,
                    transition_id: r.transition_id,
                    at: r.at,
                    actor: r.actor,
                    kind: r.kind,
                    payload: r.payload,
                    attribution: r.attribution,
                    hash: r.hash,
                })
            })
            .collect()
    }
}

fn stored<'a>(id: &'a str, r: &'a events::Model) -> StoredEvent<'a> {
    StoredEvent {
        transition_id: id,
        seq: u64::try_from(r.seq).unwrap_or_default(),
        kind: &r.kind,
        actor: &r.actor,
        at: r.at,
        payload: &r.payload,
        attribution: r.attribution.as_deref(),
    }
}

/// The first break of one transition's chain; `None` when it is whole. `rows` are its events
/// in `seq` order; `count` and `head` what the transition row records.
fn check_chain(
    id: &str,
    count: i64,
    head: Option<&str>,
    rows: &[events::Model],
) -> Option<ChainBreak> {
    let broken = |seq: i64, kind: BreakKind, message: String| {
        Some(ChainBreak {
            transition_id: id.to_owned(),
            seq: u64::try_from(seq).unwrap_or_default(),
            kind,
            message,
        })
    };
    let mut prev = GENESIS;
    let mut expected: i64 = 1;
    for (i, row) in rows.iter().enumerate() {
        if row.seq != expected {
            return broken(
                expected,
                BreakKind::Removed,
                format!(
                    "event {expected} is missing (the next stored event is {}): removed",
                    row.seq
                ),
            );
        }
        let Some(stored_hash) = row.hash.as_deref().and_then(unhex32) else {
            return broken(
                row.seq,
                BreakKind::Unchained,
                format!("event {} has no valid hash", row.seq),
            );
        };
        let computed = event_hash(&prev, &stored(id, row));
        if computed != stored_hash {
            // An edited event keeps its old hash, which the next event (or the head) still
            // follows; an inserted or moved one does not fit either way.
            let follows = match rows.get(i + 1) {
                Some(next) => {
                    next.hash.as_deref().and_then(unhex32)
                        == Some(event_hash(&stored_hash, &stored(id, next)))
                }
                None => head.and_then(unhex32) == Some(stored_hash),
            };
            return if follows {
                broken(
                    row.seq,
                    BreakKind::Edited,
                    format!(
                        "event {} ({}) was edited: its content no longer matches its hash",
                        row.seq, row.kind
                    ),
                )
            } else {
                broken(
                    row.seq,
                    BreakKind::Misplaced,
                    format!(
                        "event {} ({}) does not follow event {}: inserted, or moved here",
                        row.seq,
                        row.kind,
                        row.seq - 1
                    ),
                )
            };
        }
        prev = computed;
        expected += 1;
    }
    let last = expected - 1;
    if last != count {
        return if last < count {
            broken(
                last + 1,
                BreakKind::Truncated,
                format!("the transition records {count} events; events after {last} were removed"),
            )
        } else {
            broken(
                count + 1,
                BreakKind::Truncated,
                format!(
                    "event {} is beyond the {count} events the transition records: inserted",
                    count + 1
                ),
            )
        };
    }
    if head.and_then(unhex32) != Some(prev) && !rows.is_empty() {
        return broken(
            last,
            BreakKind::Misplaced,
            format!(
                "the transition's head hash is not event {last}'s ({}): its last event was \
                 replaced",
                hex(&prev)
            ),
        );
    }
    None
}
