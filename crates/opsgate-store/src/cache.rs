//! A bounded cache of decoded transition states, so that reads and writes skip decoding rows.
//!
//! An entry is only ever replaced by a state with a higher `seq` (states only move forward), so a
//! reader that loaded an older state cannot overwrite the state a writer has just committed.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

use crate::transitions::TransitionView;

/// Least-recently-used cache of transition views by id, and of ids by service name and version
/// (that mapping never changes: a service version has one transition, for good).
pub(crate) struct StateCache {
    entries: Option<Mutex<LruCache<String, TransitionView>>>,
    services: Option<Mutex<LruCache<(String, String), String>>>,
}

impl StateCache {
    /// A cache of at most `capacity` transitions; `0` disables caching.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
            services: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<TransitionView> {
        let mut entries = self.entries.as_ref()?.lock().ok()?;
        entries.get(id).cloned()
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
        match entries.get_mut(&view.id) {
            Some(cached) if cached.state.seq >= view.state.seq => {}
            Some(cached) => *cached = view.clone(),
            None => {
                entries.put(view.id.clone(), view.clone());
            }
        }
    }

    pub(crate) fn remove(&self, id: &str) {
        if let Some(Ok(mut entries)) = self.entries.as_ref().map(Mutex::lock) {
            entries.pop(id);
        }
    }
}
