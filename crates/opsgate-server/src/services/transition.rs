//! `opsgate.v1.TransitionService`: start, read and list transitions; submit, review, accept and reject.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use opsgate_domain::transition::Attachment;
use opsgate_domain::transition::check_service_field;
use opsgate_domain::{
    Actor, Command, Evidence, Participants, ReviewDecision, RoleName, WorkflowName, clip,
};
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::transition_service_server::TransitionService;
use opsgate_store::NewTransition;
use tonic::{Request, Response, Status};

use super::{Api, Change, required, transition_id};
use crate::auth::{Caller, has_part, may_read};
use crate::convert;
use crate::error::{domain_status, invalid_argument, status};
use crate::idempotency::keep;

/// Default and largest page of `ListEvents`.
const DEFAULT_EVENTS_PAGE: u32 = 100;
const MAX_EVENTS_PAGE: u32 = 1000;

/// Default page size of `ListTransitions`.
const DEFAULT_PAGE_SIZE: u32 = 50;

impl Api {
    /// Runs one command on a transition for `caller` and returns the updated transition.
    pub(super) async fn command(
        &self,
        id: &str,
        command: Command,
        caller: &Caller,
    ) -> Result<pb::Transition, Status> {
        let id = transition_id("transition_id", id)?;
        let mut acting = caller.acting();
        if caller.scope.is_some() {
            // A pipeline reaches only the services its rule names.
            let view = self.store.get_transition(id).await.map_err(status)?;
            caller.reaches(&view.state.meta.service_name)?;
        }
        if matches!(command, Command::Review { .. }) {
            acting.deputy_for = self.auth.delegations_to(&caller.actor).await?;
        }
        let view = self
            .store
            .execute(id, command, acting)
            .await
            .map_err(status)?;
        Ok(convert::transition(&view))
    }
}

fn person(field: &'static str, value: &str) -> Result<Actor, Status> {
    Actor::parse_field(field, value).map_err(domain_status)
}

fn participants(input: Vec<pb::Participant>) -> Result<Participants, Status> {
    let mut out: Participants = BTreeMap::new();
    for p in input {
        let role = RoleName::parse(p.role.trim()).map_err(domain_status)?;
        let people = out.entry(role).or_default();
        for name in p.people {
            let person = person("participants.people", &name)?;
            if !people.contains(&person) {
                people.push(person);
            }
        }
    }
    Ok(out)
}

#[tonic::async_trait]
impl TransitionService for Api {
    async fn start_transition(
        &self,
        request: Request<pb::StartTransitionRequest>,
    ) -> Result<Response<pb::StartTransitionResponse>, Status> {
        let method = "opsgate.v1.TransitionService/StartTransition";
        let (caller, req, recalled) = match self.begin_change(request, method).await? {
            Change::Answered(answer) => return Ok(Response::new(answer)),
            Change::New(caller, req, recalled) => (caller, req, recalled),
        };
        let go_live = required("target_go_live", &req.target_go_live)?;
        let target_go_live = NaiveDate::parse_from_str(go_live, "%Y-%m-%d").map_err(|e| {
            invalid_argument(
                "target_go_live",
                format!("'{}' is not a date as YYYY-MM-DD: {e}", clip(go_live)),
            )
        })?;
        let service_name = required("service_name", &req.service_name)?;
        let service_version = required("service_version", &req.service_version)?;
        check_service_field("service name", service_name).map_err(domain_status)?;
        check_service_field("service version", service_version).map_err(domain_status)?;
        // The catalog: a closed one knows every service first; a start without a workflow uses
        // the service's default one.
        let listed = if self.catalog_closed || req.workflow_name.trim().is_empty() {
            self.store.service(service_name).await.map_err(status)?
        } else {
            None
        };
        if self.catalog_closed && listed.is_none() {
            return Err(Status::failed_precondition(
                opsgate_store::not_in_catalog(service_name).to_string(),
            ));
        }
        let default = listed.map(|l| l.default_workflow).unwrap_or_default();
        let workflow_name = match req.workflow_name.trim() {
            "" if default.is_empty() => {
                return Err(invalid_argument(
                    "workflow_name",
                    format!(
                        "name the workflow: service '{}' has no default workflow in the \
                         catalog (opsgate service set NAME --default-workflow WORKFLOW)",
                        clip(service_name)
                    ),
                ));
            }
            "" => default.as_str(),
            name => name,
        };
        WorkflowName::parse(workflow_name).map_err(domain_status)?;
        let new = NewTransition {
            workflow_name: workflow_name.to_owned(),
            workflow_version: req.workflow_version,
            service_name: service_name.to_owned(),
            service_version: service_version.to_owned(),
            project_manager: person("project_manager", &req.project_manager)?,
            service_manager: person("service_manager", &req.service_manager)?,
            target_go_live,
            participants: participants(req.participants)?,
            allow_past_go_live: req.allow_past_go_live,
        };
        let view = self
            .store
            .start_transition(new, caller.acting())
            .await
            .map_err(status)?;
        let answer = pb::StartTransitionResponse {
            transition: Some(convert::transition(&view)),
        };
        keep(&self.store, recalled, &answer).await;
        Ok(Response::new(answer))
    }

    async fn get_transition(
        &self,
        request: Request<pb::GetTransitionRequest>,
    ) -> Result<Response<pb::GetTransitionResponse>, Status> {
        let caller = self
            .auth
            .authorize(&request, "opsgate.v1.TransitionService/GetTransition")
            .await?;
        let req = request.into_inner();
        let id = transition_id("transition_id", &req.transition_id)?;
        let view = self.current(id).await?;
        self.may_read(caller.as_ref(), &view).await?;
        Ok(Response::new(pb::GetTransitionResponse {
            transition: Some(convert::transition(&view)),
        }))
    }

    async fn list_transitions(
        &self,
        request: Request<pb::ListTransitionsRequest>,
    ) -> Result<Response<pb::ListTransitionsResponse>, Status> {
        let caller = self
            .auth
            .authorize(&request, "opsgate.v1.TransitionService/ListTransitions")
            .await?;
        let req = request.into_inner();
        if req.page_size > opsgate_store::MAX_PAGE_SIZE {
            return Err(invalid_argument(
                "page_size",
                format!(
                    "{} is above the limit of {}",
                    req.page_size,
                    opsgate_store::MAX_PAGE_SIZE
                ),
            ));
        }
        let size = if req.page_size == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            req.page_size
        };
        let token = match req.page_token.trim() {
            "" => None,
            // A token is the last id of the previous page; anything else is not from us.
            token => Some(transition_id("page_token", token).map_err(|_| {
                invalid_argument(
                    "page_token",
                    "is not a token this server gave out: pass a previous response's \
                     next_page_token, or leave it empty for the first page",
                )
            })?),
        };
        let page = self
            .store
            .list_transitions(size, token)
            .await
            .map_err(status)?;
        // Only the transitions the caller may read (a page may so hold fewer than asked; follow
        // next_page_token to the end): by the people it was started with, else by the people
        // its workflow names as approvers (each workflow version read once a page); a deputy
        // also those of the people whose delegations to them are in force, as `GetTransition`.
        let stands_in_for = self.stands_in_for(caller.as_ref()).await?;
        let reads = |meta: &opsgate_domain::transition::TransitionMeta,
                     workflow: Option<&opsgate_domain::Workflow>| {
            may_read(caller.as_ref(), meta, workflow).is_ok()
                || stands_in_for
                    .iter()
                    .any(|person| has_part(meta, workflow, person))
        };
        let mut workflows: std::collections::HashMap<(String, u32), Option<_>> =
            std::collections::HashMap::new();
        let mut transitions = Vec::with_capacity(page.transitions.len());
        for t in page.transitions {
            if !reads(&t.meta, None) {
                let key = (t.workflow_name.clone(), t.workflow_version);
                if !workflows.contains_key(&key) {
                    let found = self.store.get_workflow(&key.0, Some(key.1)).await.ok();
                    workflows.insert(key.clone(), found);
                }
                let named = workflows
                    .get(&key)
                    .and_then(Option::as_ref)
                    .is_some_and(|w| reads(&t.meta, Some(&w.workflow)));
                if !named {
                    continue;
                }
            }
            transitions.push(convert::transition_summary(t));
        }
        Ok(Response::new(pb::ListTransitionsResponse {
            transitions,
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn submit_deliverable(
        &self,
        request: Request<pb::SubmitDeliverableRequest>,
    ) -> Result<Response<pb::SubmitDeliverableResponse>, Status> {
        let method = "opsgate.v1.TransitionService/SubmitDeliverable";
        let (caller, req, recalled) = match self.begin_change(request, method).await? {
            Change::Answered(answer) => return Ok(Response::new(answer)),
            Change::New(caller, req, recalled) => (caller, req, recalled),
        };
        let evidence = req.evidence.unwrap_or_default();
        let attachments = evidence
            .attachments
            .into_iter()
            .map(|a| Attachment {
                uri: a.uri,
                sha256: a.sha256,
            })
            .collect();
        let evidence = Evidence::parse_with_attachments(evidence.links, evidence.text, attachments)
            .map_err(domain_status)?;
        let command = Command::Submit {
            node: required("deliverable_id", &req.deliverable_id)?.to_owned(),
            evidence,
        };
        let transition = self.command(&req.transition_id, command, &caller).await?;
        let answer = pb::SubmitDeliverableResponse {
            transition: Some(transition),
        };
        keep(&self.store, recalled, &answer).await;
        Ok(Response::new(answer))
    }

    async fn review_deliverable(
        &self,
        request: Request<pb::ReviewDeliverableRequest>,
    ) -> Result<Response<pb::ReviewDeliverableResponse>, Status> {
        let method = "opsgate.v1.TransitionService/ReviewDeliverable";
        let (caller, req, recalled) = match self.begin_change(request, method).await? {
            Change::Answered(answer) => return Ok(Response::new(answer)),
            Change::New(caller, req, recalled) => (caller, req, recalled),
        };
        let decision = match pb::ReviewDecision::try_from(req.decision) {
            Ok(pb::ReviewDecision::Approve) => ReviewDecision::Approve,
            Ok(pb::ReviewDecision::RequestChanges) => ReviewDecision::RequestChanges,
            _ => {
                return Err(invalid_argument(
                    "decision",
                    "must be REVIEW_DECISION_APPROVE or REVIEW_DECISION_REQUEST_CHANGES",
                ));
            }
        };
        let command = Command::Review {
            node: required("deliverable_id", &req.deliverable_id)?.to_owned(),
            decision,
            comment: req.comment,
        };
        let transition = self.command(&req.transition_id, command, &caller).await?;
        let answer = pb::ReviewDeliverableResponse {
            transition: Some(transition),
        };
        keep(&self.store, recalled, &answer).await;
        Ok(Response::new(answer))
    }

    async fn accept_handover(
        &self,
        request: Request<pb::AcceptHandoverRequest>,
    ) -> Result<Response<pb::AcceptHandoverResponse>, Status> {
        let method = "opsgate.v1.TransitionService/AcceptHandover";
        let (caller, req, recalled) = match self.begin_change(request, method).await? {
            Change::Answered(answer) => return Ok(Response::new(answer)),
            Change::New(caller, req, recalled) => (caller, req, recalled),
        };
        let command = Command::AcceptHandover {
            comment: req.comment,
        };
        let transition = self.command(&req.transition_id, command, &caller).await?;
        let answer = pb::AcceptHandoverResponse {
            transition: Some(transition),
        };
        keep(&self.store, recalled, &answer).await;
        Ok(Response::new(answer))
    }

    async fn reject_handover(
        &self,
        request: Request<pb::RejectHandoverRequest>,
    ) -> Result<Response<pb::RejectHandoverResponse>, Status> {
        let method = "opsgate.v1.TransitionService/RejectHandover";
        let (caller, req, recalled) = match self.begin_change(request, method).await? {
            Change::Answered(answer) => return Ok(Response::new(answer)),
            Change::New(caller, req, recalled) => (caller, req, recalled),
        };
        let command = Command::RejectHandover {
            reasons: req.reasons,
            reopen: req
                .reopen_deliverables
                .iter()
                .map(|d| d.trim().to_owned())
                .collect(),
        };
        let transition = self.command(&req.transition_id, command, &caller).await?;
        let answer = pb::RejectHandoverResponse {
            transition: Some(transition),
        };
        keep(&self.store, recalled, &answer).await;
        Ok(Response::new(answer))
    }

    async fn change_participants(
        &self,
        request: Request<pb::ChangeParticipantsRequest>,
    ) -> Result<Response<pb::ChangeParticipantsResponse>, Status> {
        let caller = self
            .auth
            .changer(&request, "opsgate.v1.TransitionService/ChangeParticipants")
            .await?;
        let req = request.into_inner();
        let command = Command::ChangeParticipants {
            role: required("role", &req.role)?.to_owned(),
            people: req.people,
        };
        let transition = self.command(&req.transition_id, command, &caller).await?;
        Ok(Response::new(pb::ChangeParticipantsResponse {
            transition: Some(transition),
        }))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let caller = self
            .auth
            .authorize(&request, "opsgate.v1.TransitionService/ListEvents")
            .await?;
        let req = request.into_inner();
        let id = transition_id("transition_id", &req.transition_id)?;
        if caller.is_some() {
            let view = self.store.get_transition(id).await.map_err(status)?;
            self.may_read(caller.as_ref(), &view).await?;
        }
        if req.page_size > MAX_EVENTS_PAGE {
            return Err(invalid_argument(
                "page_size",
                format!("{} is above the limit of {MAX_EVENTS_PAGE}", req.page_size),
            ));
        }
        let size = if req.page_size == 0 {
            DEFAULT_EVENTS_PAGE
        } else {
            req.page_size
        };
        let after = match req.page_token.trim() {
            "" => 0,
            token => token.parse::<u64>().map_err(|_| {
                invalid_argument(
                    "page_token",
                    "is not a token this server gave out: pass a previous response's \
                     next_page_token, or leave it empty for the first page",
                )
            })?,
        };
        let mut events = self
            .store
            .events_page(id, after, Some(size + 1))
            .await
            .map_err(status)?;
        let more = events.len() > size as usize;
        events.truncate(size as usize);
        let next_page_token = if more {
            events.last().map(|e| e.seq.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListEventsResponse {
            events: events.iter().map(convert::event).collect(),
            next_page_token,
        }))
    }

    async fn sign_off_milestone(
        &self,
        request: Request<pb::SignOffMilestoneRequest>,
    ) -> Result<Response<pb::SignOffMilestoneResponse>, Status> {
        let method = "opsgate.v1.TransitionService/SignOffMilestone";
        let (caller, req, recalled) = match self.begin_change(request, method).await? {
            Change::Answered(answer) => return Ok(Response::new(answer)),
            Change::New(caller, req, recalled) => (caller, req, recalled),
        };
        let command = Command::SignOff {
            node: required("milestone_id", &req.milestone_id)?.to_owned(),
            comment: req.comment,
        };
        let transition = self.command(&req.transition_id, command, &caller).await?;
        let answer = pb::SignOffMilestoneResponse {
            transition: Some(transition),
        };
        keep(&self.store, recalled, &answer).await;
        Ok(Response::new(answer))
    }

    async fn waive_deliverable(
        &self,
        request: Request<pb::WaiveDeliverableRequest>,
    ) -> Result<Response<pb::WaiveDeliverableResponse>, Status> {
        self.waive_deliverable_rpc(request).await
    }

    async fn get_template(
        &self,
        request: Request<pb::GetTemplateRequest>,
    ) -> Result<Response<pb::GetTemplateResponse>, Status> {
        self.get_template_rpc(request).await
    }

    async fn get_plan(
        &self,
        request: Request<pb::GetPlanRequest>,
    ) -> Result<Response<pb::GetPlanResponse>, Status> {
        self.get_plan_rpc(request).await
    }

    async fn reschedule_transition(
        &self,
        request: Request<pb::RescheduleTransitionRequest>,
    ) -> Result<Response<pb::RescheduleTransitionResponse>, Status> {
        self.reschedule_transition_rpc(request).await
    }

    async fn get_calendar(
        &self,
        request: Request<pb::GetCalendarRequest>,
    ) -> Result<Response<pb::GetCalendarResponse>, Status> {
        self.get_calendar_rpc(request).await
    }
}
