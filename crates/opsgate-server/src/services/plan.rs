//! `TransitionService.GetPlan`: a running transition's dated schedule (`opsgate transition
//! plan`), for whoever may read the transition: the workflow's critical-path plan over what is
//! done, from the domain's one computation that the forecast shares.

use opsgate_domain::forecast::transition_plan;
use opsgate_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, transition_id};
use crate::error::status;

impl Api {
    pub(super) async fn get_plan_rpc(
        &self,
        request: Request<pb::GetPlanRequest>,
    ) -> Result<Response<pb::GetPlanResponse>, Status> {
        let caller = self
            .auth
            .authorize(&request, "opsgate.v1.TransitionService/GetPlan")
            .await?;
        let req = request.into_inner();
        let id = transition_id("transition_id", &req.transition_id)?;
        let view = self.store.get_transition(id).await.map_err(status)?;
        self.may_read(caller.as_ref(), &view).await?;
        Ok(Response::new(plan(&view, self.store.now().date_naive())))
    }
}

/// The plan of `view` on `today`, as the API answers it.
pub(crate) fn plan(
    view: &opsgate_store::TransitionView,
    today: chrono::NaiveDate,
) -> pb::GetPlanResponse {
    let wf = &view.workflow.workflow;
    let state = &view.state;
    let meta = &state.meta;
    let p = transition_plan(wf, state, today);
    let on_path = |i: usize| p.remaining_critical_path.contains(&i);
    // The plan's rows are in workflow order (node index), as GetTransition lists nodes.
    let nodes = p
        .plan
        .rows
        .iter()
        .map(|row| {
            let node = wf.node(row.node);
            let ns = &state.nodes[row.node];
            pb::PlanNode {
                node_id: node.id.to_string(),
                title: node.title.clone(),
                kind: crate::convert::node_kind(&node.kind).into(),
                status: crate::convert::node_status(ns.status).into(),
                done: p.done[row.node],
                earliest_start: row.earliest_start.to_string(),
                earliest_finish: row.earliest_finish.to_string(),
                latest_start: row.latest_start.to_string(),
                latest_finish: row.latest_finish.to_string(),
                due: row.due.map(|d| d.to_string()).unwrap_or_default(),
                slack_days: row.slack_days,
                on_critical_path: on_path(row.node),
                late: p.late_today.contains(&row.node),
                effort_days: node.effort_days,
            }
        })
        .collect::<Vec<_>>();
    let ids = |list: &[usize]| list.iter().map(|&i| wf.node(i).id.to_string()).collect();
    pb::GetPlanResponse {
        transition_id: view.id.clone(),
        workflow_name: meta.workflow.to_string(),
        workflow_version: view.workflow.version,
        service_name: meta.service_name.clone(),
        service_version: meta.service_version.clone(),
        start: state.created_at.date_naive().to_string(),
        target_go_live: meta.target_go_live.to_string(),
        today: today.to_string(),
        projected_gate: p.projected_gate.to_string(),
        nodes,
        critical_path: ids(&p.remaining_critical_path),
        late: ids(&p.late_today),
    }
}
