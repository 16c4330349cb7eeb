//! Applying: starting a transition, executing a command into events, and folding events into state.

use chrono::{DateTime, Utc};

use super::{
    Acting, Attribution, Command, Event, EventKind, MAX_TRANSITION_CONTENT, NodeState, NodeStatus,
    TransitionMeta, TransitionState, TransitionStatus, Waiver,
};
use crate::error::{Error, Result};
use crate::ids::{Actor, NodeId};
use crate::workflow::{NodeKind, PROJECT_MANAGER_ROLE, SERVICE_MANAGER_ROLE, Workflow};

impl TransitionState {
    /// Starts a transition: the `TransitionStarted` event and the unlocks it causes.
    pub fn start(
        workflow: &Workflow,
        meta: TransitionMeta,
        acting: impl Into<Acting>,
        at: DateTime<Utc>,
    ) -> Result<(Self, Vec<Event>)> {
        let acting = acting.into();
        meta.check(workflow)?;
        let mut state = Self::empty(workflow, meta.clone(), at);
        let first = Event {
            seq: 1,
            at,
            attribution: acting.attribution(
                crate::ids::RoleName::parse(PROJECT_MANAGER_ROLE)
                    .ok()
                    .filter(|_| acting.actor == meta.project_manager),
            ),
            actor: acting.actor,
            kind: EventKind::TransitionStarted { meta },
        };
        let events = state.commit(workflow, first)?;
        Ok((state, events))
    }

    fn empty(workflow: &Workflow, meta: TransitionMeta, at: DateTime<Utc>) -> Self {
        Self {
            meta,
            status: TransitionStatus::Active,
            nodes: vec![NodeState::new(at); workflow.nodes().len()],
            seq: 0,
            created_at: at,
            updated_at: at,
        }
    }

    /// Rebuilds the state from its full event log.
    pub fn replay(workflow: &Workflow, events: &[Event]) -> Result<Self> {
        let Some(Event {
            kind: EventKind::TransitionStarted { meta },
            at,
            ..
        }) = events.first()
        else {
            return Err(Error::FailedPrecondition(
                "event log does not begin with transition_started".into(),
            ));
        };
        let mut state = Self::empty(workflow, meta.clone(), *at);
        for event in events {
            state.apply(workflow, event)?;
        }
        Ok(state)
    }

    /// Decides `command` and returns the new state with the events that lead to it; `self` is
    /// untouched. Waivers that ran out by `at` end first (their events come first), so nothing
    /// is decided on a waiver no longer in force.
    pub fn execute(
        &self,
        workflow: &Workflow,
        command: Command,
        acting: impl Into<Acting>,
        at: DateTime<Utc>,
    ) -> Result<(Self, Vec<Event>)> {
        let acting = acting.into();
        let mut next = self.clone();
        let mut events = next.expire_waivers(workflow, at)?;
        if command == Command::ExpireWaivers && !events.is_empty() {
            return Ok((next, events));
        }
        let (kind, role) = next.decide(workflow, command, &acting, at)?;
        let event = Event {
            seq: next.seq + 1,
            at,
            attribution: acting.attribution(role),
            actor: acting.actor,
            kind,
        };
        events.extend(next.commit(workflow, event)?);
        let (before, after) = (self.content_bytes(), next.content_bytes());
        if after > MAX_TRANSITION_CONTENT && after > before {
            return Err(Error::FailedPrecondition(format!(
                "this transition would hold {} KiB of evidence, comments and names, above its \
                 limit of {} KiB (so that it can always be read whole): link to documents instead \
                 of pasting them, or shorten the text",
                after.div_ceil(1024),
                MAX_TRANSITION_CONTENT / 1024
            )));
        }
        Ok((next, events))
    }

    /// The first waiver in force that ends by `at`, if any.
    pub fn expired_waiver(&self, at: DateTime<Utc>) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.waiver.as_ref().is_some_and(|w| w.until <= at))
    }

    /// Ends every waiver that ran out by `at`: a `waiver_expired` event each (by `opsgate`,
    /// at the moment it ended), with what it relocks.
    fn expire_waivers(&mut self, workflow: &Workflow, at: DateTime<Utc>) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        while let Some(i) = self.expired_waiver(at) {
            let until = self.nodes[i].waiver.as_ref().map_or(at, |w| w.until);
            let event = Event {
                seq: self.seq + 1,
                // Never before the previous event: the log stays in time order.
                at: until.max(self.updated_at),
                actor: Actor::parse(SYSTEM_ACTOR)?,
                kind: EventKind::WaiverExpired {
                    node: workflow.node(i).id.clone(),
                },
                attribution: Attribution::default(),
            };
            events.extend(self.commit(workflow, event)?);
        }
        Ok(events)
    }

    /// Applies `event`, then the derived events it causes; returns all of them.
    fn commit(&mut self, workflow: &Workflow, event: Event) -> Result<Vec<Event>> {
        self.apply(workflow, &event)?;
        let mut events = vec![event];
        self.settle(workflow, &mut events)?;
        Ok(events)
    }

    /// Emits unlock/relock events until every node agrees with its needs; one topological pass suffices.
    fn settle(&mut self, workflow: &Workflow, events: &mut Vec<Event>) -> Result<()> {
        let Some(cause) = events.last().cloned() else {
            return Ok(());
        };
        let mut done = vec![false; workflow.nodes().len()];
        for (i, node) in workflow.nodes().iter().enumerate() {
            let needs_done = node.needs.iter().all(|&j| done[j]);
            let status = self.nodes[i].status;
            let derived = match (status, needs_done) {
                (NodeStatus::Locked, true) => Some(EventKind::NodeUnlocked {
                    node: node.id.clone(),
                }),
                (NodeStatus::Open | NodeStatus::Reached, false) => Some(EventKind::NodeRelocked {
                    node: node.id.clone(),
                }),
                _ => None,
            };
            if let Some(kind) = derived {
                let event = Event {
                    seq: self.seq + 1,
                    at: cause.at,
                    actor: cause.actor.clone(),
                    kind,
                    attribution: Attribution::default(),
                };
                self.apply(workflow, &event)?;
                events.push(event);
            }
            done[i] = needs_done && !self.blocks(workflow, i);
        }
        Ok(())
    }

    /// Reaching the milestone that ends post-go-live support completes the transition.
    fn complete_if_support_ended(&mut self, workflow: &Workflow, i: usize) {
        if workflow.support().is_some_and(|s| s.end == i)
            && self.nodes[i].status == NodeStatus::Reached
        {
            self.status = TransitionStatus::Completed;
        }
    }

    /// Folds one event into the state. Refuses events that do not fit (a corrupt log).
    pub fn apply(&mut self, workflow: &Workflow, event: &Event) -> Result<()> {
        if event.seq != self.seq + 1 {
            return Err(Error::FailedPrecondition(format!(
                "event {} out of order: expected {}",
                event.seq,
                self.seq + 1
            )));
        }
        let node_at = |id: &NodeId| {
            workflow
                .position(id.as_str())
                .ok_or_else(|| Error::UnknownNode {
                    kind: "node",
                    id: id.to_string(),
                    workflow: workflow.name().to_string(),
                })
        };
        let touch = |state: &mut Self, i: usize, status: NodeStatus, by_actor: bool| {
            let node = &mut state.nodes[i];
            node.status = status;
            node.updated_at = event.at;
            if by_actor {
                node.actor = Some(event.actor.clone());
            }
        };
        match &event.kind {
            EventKind::TransitionStarted { .. } => {}
            EventKind::DeliverableSubmitted { node, evidence } => {
                let i = node_at(node)?;
                touch(self, i, NodeStatus::Submitted, true);
                self.nodes[i].evidence = Some(evidence.clone());
                self.nodes[i].submitted_by = Some(event.actor.clone());
                self.nodes[i].submitted_at = Some(event.at);
                self.nodes[i].approvals.clear();
                self.nodes[i].deputies.clear();
                self.nodes[i].round += 1;
            }
            EventKind::DeliverableApproved {
                node,
                comment,
                deputy,
            }
            | EventKind::ApprovalRecorded {
                node,
                comment,
                deputy,
            } => {
                let i = node_at(node)?;
                let status = if matches!(event.kind, EventKind::DeliverableApproved { .. }) {
                    NodeStatus::Approved
                } else {
                    NodeStatus::Submitted
                };
                touch(self, i, status, true);
                // An approval without words leaves a co-approver's comment on the same
                // submission standing (it used to wipe it); a comment of an earlier round goes.
                if !comment.is_empty() || !self.nodes[i].comment_is_current() {
                    self.nodes[i].comment = non_empty(comment);
                    self.nodes[i].comment_round = self.nodes[i].round;
                }
                match deputy {
                    Some(d) => {
                        self.nodes[i].approvals.push(d.on_behalf_of.clone());
                        self.nodes[i].deputies.push(event.actor.clone());
                    }
                    None => self.nodes[i].approvals.push(event.actor.clone()),
                }
            }
            EventKind::ChangesRequested { node, comment } => {
                let i = node_at(node)?;
                touch(self, i, NodeStatus::ChangesRequested, true);
                self.nodes[i].comment = non_empty(comment);
                self.nodes[i].comment_round = self.nodes[i].round;
                self.nodes[i].approvals.clear();
                self.nodes[i].deputies.clear();
            }
            EventKind::MilestoneSignedOff { node, comment } => {
                let i = node_at(node)?;
                touch(self, i, NodeStatus::Reached, true);
                self.nodes[i].comment = non_empty(comment);
                self.complete_if_support_ended(workflow, i);
            }
            EventKind::NodeUnlocked { node } => {
                let i = node_at(node)?;
                let status = match &workflow.node(i).kind {
                    NodeKind::Milestone(m) if m.sign_off.is_some() => NodeStatus::Open,
                    NodeKind::Milestone(_) => NodeStatus::Reached,
                    NodeKind::Deliverable(_) | NodeKind::Gate => NodeStatus::Open,
                };
                touch(self, i, status, false);
                self.nodes[i].opened_at.get_or_insert(event.at);
                self.complete_if_support_ended(workflow, i);
            }
            EventKind::NodeRelocked { node } => {
                let i = node_at(node)?;
                touch(self, i, NodeStatus::Locked, false);
            }
            EventKind::HandoverAccepted { comment } => {
                let i = workflow.gate();
                touch(self, i, NodeStatus::Accepted, true);
                self.nodes[i].comment = non_empty(comment);
                // With no post-go-live support window, nothing is left to do after the handover.
                self.status = if workflow.support().is_some() {
                    TransitionStatus::HandedOver
                } else {
                    TransitionStatus::Completed
                };
            }
            EventKind::ParticipantsChanged { role, people } => match role.as_str() {
                PROJECT_MANAGER_ROLE | SERVICE_MANAGER_ROLE => {
                    let Some(person) = people.first() else {
                        return Err(Error::FailedPrecondition(format!(
                            "event {}: role {role} changed to nobody",
                            event.seq
                        )));
                    };
                    if role.as_str() == PROJECT_MANAGER_ROLE {
                        self.meta.project_manager = person.clone();
                    } else {
                        self.meta.service_manager = person.clone();
                    }
                }
                _ => {
                    self.meta.participants.insert(role.clone(), people.clone());
                }
            },
            EventKind::DeliverableWaived {
                node,
                reason,
                until,
            } => {
                let i = node_at(node)?;
                self.nodes[i].waiver = Some(Waiver {
                    by: event.actor.clone(),
                    reason: reason.clone(),
                    until: *until,
                    at: event.at,
                });
                self.nodes[i].updated_at = event.at;
            }
            EventKind::WaiverExpired { node } => {
                let i = node_at(node)?;
                self.nodes[i].waiver = None;
                self.nodes[i].updated_at = event.at;
            }
            EventKind::GoLiveMoved { to, .. } => {
                self.meta.target_go_live = *to;
            }
            EventKind::HandoverRejected { reasons, reopened } => {
                let gate = workflow.gate();
                self.nodes[gate].actor = Some(event.actor.clone());
                self.nodes[gate].comment = Some(reasons.join("; "));
                for node in reopened {
                    let i = node_at(node)?;
                    touch(self, i, NodeStatus::ChangesRequested, true);
                    self.nodes[i].approvals.clear();
                    self.nodes[i].deputies.clear();
                    // Reopened work is redone: a waiver of it no longer stands.
                    self.nodes[i].waiver = None;
                    self.nodes[i].comment =
                        Some(format!("handover rejected: {}", reasons.join("; ")));
                    self.nodes[i].comment_round = self.nodes[i].round;
                }
            }
        }
        self.seq = event.seq;
        self.updated_at = event.at;
        Ok(())
    }
}

/// The actor of what opsgate does by itself (a waiver running out).
pub const SYSTEM_ACTOR: &str = "opsgate";

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}
