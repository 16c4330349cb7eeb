//! `AuditService.GetForecast`: the projected go-live of one transition (for whoever may read
//! it) or of every active one (the SMO and auditors; anyone else: those they may read), from the workflow's plan, what is done, and how
//! long each node took in past transitions of the workflow (`opsgate_domain::forecast`).

use std::collections::HashMap;

use chrono::NaiveDate;
use opsgate_domain::Access;
use opsgate_domain::forecast::{Forecast, History, MAX_SAMPLES, forecast};
use opsgate_proto::v1 as pb;
use opsgate_store::TransitionView;
use tonic::{Request, Response, Status};

use super::{Api, transition_id};
use crate::auth::Caller;
use crate::error::status;

/// Most transitions one answer forecasts (the nearest target go-live first).
const MAX_FORECASTS: u64 = 1000;
const DAY_SECONDS: i64 = 86_400;

/// Past durations by workflow name, read once per request.
#[derive(Default)]
pub(crate) struct Histories(HashMap<String, History>);

impl Histories {
    async fn of(&mut self, api: &Api, view: &TransitionView) -> Result<&History, Status> {
        let workflow = &view.workflow.workflow;
        let name = workflow.name().to_string();
        if !self.0.contains_key(&name) {
            let mut days = Vec::with_capacity(workflow.nodes().len());
            for node in workflow.nodes() {
                let seconds = api
                    .store
                    .node_durations(&name, node.id.as_str(), MAX_SAMPLES)
                    .await
                    .map_err(status)?;
                days.push(
                    seconds
                        .into_iter()
                        // Whole days, to the nearest.
                        .map(|s| u32::try_from((s + DAY_SECONDS / 2) / DAY_SECONDS).unwrap_or(0))
                        .collect(),
                );
            }
            self.0.insert(name.clone(), History { days });
        }
        self.0
            .get(&name)
            .ok_or_else(|| Status::internal("forecast history missing"))
    }

    /// The forecast of `view` today, as the API shows it.
    pub(crate) async fn forecast(
        &mut self,
        api: &Api,
        view: &TransitionView,
        today: NaiveDate,
    ) -> Result<pb::Forecast, Status> {
        let history = self.of(api, view).await?;
        let f = forecast(&view.workflow.workflow, &view.state, history, today);
        Ok(message(view, &f))
    }
}

fn message(view: &TransitionView, f: &Forecast) -> pb::Forecast {
    let wf = &view.workflow.workflow;
    let meta = &view.state.meta;
    let on_path = |i: usize| f.critical_path.contains(&i);
    pb::Forecast {
        transition_id: view.id.clone(),
        service_name: meta.service_name.clone(),
        service_version: meta.service_version.clone(),
        workflow_name: meta.workflow.to_string(),
        target_go_live: f.target.to_string(),
        projected_go_live: f.go_live.to_string(),
        days_late: i32::try_from(f.days_late).unwrap_or(i32::MAX),
        will_miss: f.will_miss(),
        driver_node_id: f
            .driver
            .as_ref()
            .map(|(i, _)| wf.node(*i).id.to_string())
            .unwrap_or_default(),
        driver_reason: f
            .driver
            .as_ref()
            .map(|(_, r)| r.clone())
            .unwrap_or_default(),
        critical_path: f
            .critical_path
            .iter()
            .map(|&i| wf.node(i).id.to_string())
            .collect(),
        nodes: f
            .nodes
            .iter()
            .map(|n| pb::ForecastNode {
                node_id: wf.node(n.node).id.to_string(),
                title: wf.node(n.node).title.clone(),
                done: n.done,
                planned_days: n.planned_days,
                expected_days: n.expected_days,
                samples: u32::try_from(n.samples).unwrap_or(u32::MAX),
                projected_start: n.start.to_string(),
                projected_finish: n.finish.to_string(),
                on_critical_path: on_path(n.node),
            })
            .collect(),
    }
}

impl Api {
    pub(super) async fn get_forecast_rpc(
        &self,
        request: Request<pb::GetForecastRequest>,
    ) -> Result<Response<pb::GetForecastResponse>, Status> {
        let caller = self
            .auth
            .authorize(&request, "opsgate.v1.AuditService/GetForecast")
            .await?;
        let req = request.into_inner();
        let today = self.store.now().date_naive();
        let mut histories = Histories::default();
        let mut forecasts = Vec::new();
        if req.transition_id.trim().is_empty() {
            // Every active transition for the SMO and auditors (anyone on a development
            // server); for everyone else, those they may read.
            let everything = caller
                .as_ref()
                .is_none_or(|c: &Caller| c.holds(Access::Smo) || c.holds(Access::Auditor));
            let workflow = Some(req.workflow.trim()).filter(|w| !w.is_empty());
            let ids = self
                .store
                .active_transitions(workflow, MAX_FORECASTS)
                .await
                .map_err(status)?;
            for id in &ids {
                let view = self.current(id).await?;
                if !everything && self.may_read(caller.as_ref(), &view).await.is_err() {
                    continue;
                }
                let f = histories.forecast(self, &view, today).await?;
                if !req.only_late || f.will_miss {
                    forecasts.push(f);
                }
            }
        } else {
            let id = transition_id("transition_id", &req.transition_id)?;
            let view = self.current(id).await?;
            self.may_read(caller.as_ref(), &view).await?;
            forecasts.push(histories.forecast(self, &view, today).await?);
        }
        forecasts.sort_by_key(|f| std::cmp::Reverse(f.days_late));
        Ok(Response::new(pb::GetForecastResponse { forecasts }))
    }
}
