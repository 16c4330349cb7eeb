//! A cache of decoded transition states bounded by bytes, so that reads and writes skip decoding rows.
//!
//! An entry is only ever replaced by a state with a higher `seq` (states only move forward), so a
//! reader that loaded an older state cannot overwrite the state a writer has just committed.
//! Entries are weighed by what they hold (evidence and comments can make one transition a
//! thousand times larger than another), and the least recently used go first when the total
//! passes the budget.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

use crate::transitions::TransitionView;

/// Default budget of the state cache, in MiB: about 10,000 transitions of a small workflow.
pub const DEFAULT_STATE_CACHE_MIB: usize = 40;

/// Estimated bytes of a decoded transition besides its content: the struct, the meta, the
/// cache's own entry, and per node the state with its allocations. Calibrated on the benchmark's
/// workflow (9 nodes): 10,000 cached transitions grew the server's RSS by about 36 MiB, 3.7 KiB each.
const BASE_BYTES: usize = 1536;
const NODE_BYTES: usize = 256;

/// What one cached view costs, in bytes (an estimate of its heap use).
pub(crate) fn weight(view: &TransitionView) -> usize {
    let meta = &view.state.meta;
    let people: usize = meta
        .participants
        .values()
        .flatten()
        .map(|p| p.as_str().len() + 32)
        .sum();
    BASE_BYTES
        + people
        + view.state.nodes.len() * NODE_BYTES
        + view.state.content_bytes()
        + view.id.len()
}

struct Entries {
    lru: LruCache<String, (TransitionView, usize)>,
    bytes: usize,
    budget: usize,
}

impl Entries {
    fn evict(&mut self) {
        while self.bytes > self.budget {
            match self.lru.pop_lru() {
                Some((_, (_, w))) => self.bytes -= w,
                None => break,
            }
        }
    }
}

/// Least-recently-used cache of transition views by id (bounded by bytes), and of ids by service
/// name and version (that mapping never changes: a service version has one transition, for good).
pub(crate) struct StateCache {
    entries: Option<Mutex<Entries>>,
    services: Option<Mutex<LruCache<(String, String), String>>>,
}

impl StateCache {
    /// A cache of at most `budget` bytes of states; `0` disables caching.
    pub(crate) fn new(budget: usize) -> Self {
        // As many service versions as small transitions fit: each costs about 150 bytes, so the
        // map stays a few percent of the budget.
        let services = NonZeroUsize::new(budget / (BASE_BYTES + 10 * NODE_BYTES));
        Self {
            entries: (budget > 0).then(|| {
                Mutex::new(Entries {
                    lru: LruCache::unbounded(),
                    bytes: 0,
                    budget,
                })
            }),
            services: services.map(|c| Mutex::new(LruCache::new(c))),
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<TransitionView> {
        let mut entries = self.entries.as_ref()?.lock().ok()?;
        entries.lru.get(id).map(|(v, _)| v.clone())
    }

    /// The cached view of `id` if it is at `seq`.
    pub(crate) fn get_at(&self, id: &str, seq: u64) -> Option<TransitionView> {
        self.get(id).filter(|v| v.state.seq == seq)
    }

    /// The id of the transition of a service version, when known.
    pub(crate) fn service(&self, name: &str, version: &str) -> Option<String> {
        let mut services = self.services.as_ref()?.lock().ok()?;
        services
            .get(&(name.to_owned(), version.to_owned()))
            .cloned()
    }

    /// Stores `view` unless the cache already holds the same or a later state of it.
    pub(crate) fn put(&self, view: &TransitionView) {
        if let Some(Ok(mut services)) = self.services.as_ref().map(Mutex::lock) {
            let meta = &view.state.meta;
            services.get_or_insert(
                (meta.service_name.clone(), meta.service_version.clone()),
                || view.id.clone(),
            );
        }
        let Some(Ok(mut entries)) = self.entries.as_ref().map(Mutex::lock) else {
            return;
        };
        let w = weight(view);
        let old = match entries.lru.get_mut(&view.id) {
            Some((cached, _)) if cached.state.seq >= view.state.seq => return,
            Some(slot) => std::mem::replace(slot, (view.clone(), w)).1,
            None => {
                entries.lru.put(view.id.clone(), (view.clone(), w));
                0
            }
        };
        entries.bytes = entries.bytes + w - old;
        entries.evict();
    }

    pub(crate) fn remove(&self, id: &str) {
        if let Some(Ok(mut entries)) = self.entries.as_ref().map(Mutex::lock)
            && let Some((_, w)) = entries.lru.pop(id)
        {
            entries.bytes -= w;
        }
    }

    /// Bytes the cached states weigh now, and how many there are (for tests and metrics).
    pub(crate) fn usage(&self) -> (usize, usize) {
        match self.entries.as_ref().map(Mutex::lock) {
            Some(Ok(entries)) => (entries.bytes, entries.lru.len()),
            _ => (0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use chrono::Utc;
    use opsgate_domain::transition::{TransitionMeta, TransitionState};
    use opsgate_domain::{Actor, Evidence, Participants, RoleName, Workflow, WorkflowName};

    use super::*;
    use crate::workflows::WorkflowRecord;

    const WIDE: &str = "name: wide\nroles:\n  desk: {description: d}\nmilestones:\n  - {id: start, title: Start}\ndeliverables:\n  - {id: d0, title: D0, owner: project_manager, approver: desk, needs: [start]}\ngate: {id: gate, title: Gate, needs: [d0]}\n";

    /// A transition `id` whose one deliverable holds `text_bytes` of evidence text.
    fn view(id: &str, text_bytes: usize) -> TransitionView {
        let workflow = Workflow::parse("wide.yaml", WIDE).unwrap();
        let actor = |n: &str| Actor::parse(n).unwrap();
        let meta = TransitionMeta {
            workflow: WorkflowName::parse("wide").unwrap(),
            workflow_version: 1,
            service_name: "svc".into(),
            service_version: id.into(),
            project_manager: actor("pat"),
            service_manager: actor("sam"),
            target_go_live: Utc::now().date_naive(),
            participants: Participants::from([(
                RoleName::parse("desk").unwrap(),
                vec![actor("dana")],
            )]),
        };
        let (mut state, _) =
            TransitionState::start(&workflow, meta, actor("pat"), Utc::now()).unwrap();
        let i = workflow.position("d0").unwrap();
        state.nodes[i].evidence = Some(Evidence::parse(vec![], "x".repeat(text_bytes)).unwrap());
        TransitionView {
            id: id.into(),
            workflow: Arc::new(WorkflowRecord {
                id: 1,
                version: 1,
                source: WIDE.into(),
                sha256: String::new(),
                registered_at: Utc::now(),
                workflow,
            }),
            state,
            head: [0; 32],
        }
    }

    #[test]
    fn the_cache_is_bounded_by_bytes_not_entries() {
        let small = weight(&view("s", 0));
        let budget = 10 * small + small / 2;
        let cache = StateCache::new(budget);
        for i in 0..10 {
            cache.put(&view(&format!("s{i}"), 0));
        }
        assert_eq!(cache.usage().1, 10);
        // One heavy transition pushes out the least recently used small ones, not just one entry.
        cache.put(&view("heavy", 4 * small));
        let (bytes, entries) = cache.usage();
        assert!(bytes <= budget, "{bytes} > {budget}");
        assert!(
            entries <= 7,
            "{entries} entries: one heavy state weighs several light ones"
        );
        assert!(cache.get("heavy").is_some());
        assert!(
            cache.get("s0").is_none(),
            "the least recently used went first"
        );
        // Replacing an entry re-weighs it; removing one frees its bytes.
        cache.remove("heavy");
        assert!(cache.usage().0 < bytes);
        // A state larger than the whole budget is not kept at all.
        cache.put(&view("huge", budget));
        assert!(cache.get("huge").is_none());
        assert!(cache.usage().0 <= budget);
    }
}
