//! `AuditService.ListStalled`: what is stuck in the active transitions, why, since when, and
//! who must act; the most overdue first, filtered by workflow, service or person. The store
//! finds the candidates by the stall index on the transition rows; only those are read. Each
//! transition listed comes with its forecast.

use std::collections::HashMap;

use chrono::Duration;
use opsgate_domain::Actor;
use opsgate_domain::stalled::{StallRules, stalls};
use opsgate_proto::v1 as pb;
use opsgate_store::TransitionView;
use tonic::{Request, Response, Status};

use super::Api;
use super::forecast::Histories;
use crate::convert;
use crate::error::{domain_status, invalid_argument, status};

/// Most rows one answer holds (the most overdue).
const MAX_ITEMS: usize = 5000;
/// Largest threshold, in days.
const MAX_DAYS: u32 = 3650;

impl Api {
    pub(super) async fn list_stalled_rpc(
        &self,
        request: Request<pb::ListStalledRequest>,
    ) -> Result<Response<pb::ListStalledResponse>, Status> {
        self.auth
            .authorize(&request, "opsgate.v1.AuditService/ListStalled")
            .await?;
        let req = request.into_inner();
        let days = |field: &str, value: u32, default: i64| {
            if value > MAX_DAYS {
                return Err(invalid_argument(field, format!("at most {MAX_DAYS} days")));
            }
            Ok(Duration::days(if value == 0 {
                default
            } else {
                i64::from(value)
            }))
        };
        let rules = StallRules {
            idle: days("older_than_days", req.older_than_days, 7)?,
            review: days("review_days", req.review_days, 5)?,
            max_bounces: if req.max_bounces == 0 {
                2
            } else {
                req.max_bounces
            },
        };
        let person = match req.person.trim() {
            "" => None,
            p => Some(Actor::parse_field("person", p).map_err(domain_status)?),
        };
        let workflow = Some(req.workflow.trim()).filter(|w| !w.is_empty());
        let service = Some(req.service.trim()).filter(|s| !s.is_empty());
        let now = self.store.now();
        let Stalled {
            items,
            listed,
            checked,
        } = self
            .stalled(&rules, workflow, service, person.as_ref())
            .await?;
        let mut histories = Histories::default();
        let mut forecasts = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for item in &items {
            if seen.insert(item.transition_id.as_str())
                && let Some(view) = listed.get(&item.transition_id)
            {
                forecasts.push(histories.forecast(self, view, now.date_naive()).await?);
            }
        }
        forecasts.sort_by_key(|f| std::cmp::Reverse(f.days_late));
        Ok(Response::new(pb::ListStalledResponse {
            items,
            transitions_checked: checked,
            forecasts,
        }))
    }
}

/// What is stalled, the most overdue first (at most [`MAX_ITEMS`]), with the transitions listed
/// and how many were read.
pub(crate) struct Stalled {
    pub(crate) items: Vec<pb::StalledItem>,
    pub(crate) listed: HashMap<String, TransitionView>,
    pub(crate) checked: u64,
}

impl Api {
    /// The stalled list under `rules` (the RPC's and the metrics'), filtered.
    pub(crate) async fn stalled(
        &self,
        rules: &StallRules,
        workflow: Option<&str>,
        service: Option<&str>,
        person: Option<&Actor>,
    ) -> Result<Stalled, Status> {
        let now = self.store.now();
        let deputies = self.store.delegations_in_force().await.map_err(status)?;
        let mut items = Vec::new();
        let mut listed = HashMap::new();
        let mut checked = 0u64;
        let ids = self
            .store
            .stall_candidates(now, rules, workflow, service)
            .await
            .map_err(status)?;
        for id in &ids {
            let view = self.store.get_transition(id).await.map_err(status)?;
            checked += 1;
            for s in stalls(&view.workflow.workflow, &view.state, now, rules, &deputies) {
                if person.is_some_and(|p| !s.must_act.contains(p)) {
                    continue;
                }
                listed
                    .entry(view.id.clone())
                    .or_insert_with(|| view.clone());
                let meta = &view.state.meta;
                items.push(pb::StalledItem {
                    transition_id: view.id.clone(),
                    service_name: meta.service_name.clone(),
                    service_version: meta.service_version.clone(),
                    workflow_name: meta.workflow.to_string(),
                    kind: s.kind.as_str().to_owned(),
                    node_id: s.node.as_ref().map(ToString::to_string).unwrap_or_default(),
                    title: s.title.clone(),
                    reason: s.reason.clone(),
                    since: Some(convert::timestamp(s.since)),
                    days_late: u32::try_from(s.late(now).num_days().max(0)).unwrap_or(u32::MAX),
                    must_act: s.must_act.iter().map(ToString::to_string).collect(),
                    unfilled_role: s
                        .unfilled_role
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                });
            }
        }
        items.sort_by_key(|i| i.since.as_ref().map(|t| (t.seconds, t.nanos)));
        items.truncate(MAX_ITEMS);
        Ok(Stalled {
            items,
            listed,
            checked,
        })
    }
}
