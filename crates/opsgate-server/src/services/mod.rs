//! The gRPC service implementations, one file per service; all share [`Api`].

mod audit;
pub(crate) mod calendar;
mod catalog;
mod delegation;
pub(crate) mod forecast;
mod gate;
mod identity;
mod kpis;
mod notification;
mod people;
pub(crate) mod plan;
mod reschedule;
pub(crate) mod stalled;
mod template;
mod transition;
mod waive;
mod watch_gate;
mod workflow;

use std::sync::Arc;

use opsgate_domain::{Acting, Actor, Command, SYSTEM_ACTOR};
use opsgate_store::{Store, TransitionView};
use tonic::Status;

use crate::auth::{Authenticator, Caller, has_part, may_read};
use crate::error::{invalid_argument, status};
use crate::idempotency::{Recall, idempotency_key, recall};

/// State shared by every service.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    store: Store,
    auth: Arc<Authenticator>,
    /// Gate watches open at once ([`watch_gate::MAX_WATCHES`]).
    watches: Arc<tokio::sync::Semaphore>,
    /// How calendars place meetings (`[calendar]`).
    calendar: Arc<opsgate_domain::calendar::CalendarOptions>,
    /// Starts only for services the catalog has (`[catalog] closed`).
    catalog_closed: bool,
}

impl Api {
    pub(crate) fn new(store: Store, insecure_dev: bool, oidc: crate::oidc::Oidc) -> Self {
        let auth = Arc::new(Authenticator::new(store.clone(), insecure_dev, oidc));
        Self {
            store,
            auth,
            watches: Arc::new(tokio::sync::Semaphore::new(watch_gate::MAX_WATCHES)),
            calendar: Arc::default(),
            catalog_closed: false,
        }
    }

    /// The same, starting transitions only for services in the catalog when `closed`.
    pub(crate) fn with_closed_catalog(mut self, closed: bool) -> Self {
        self.catalog_closed = closed;
        self
    }

    /// The same, with calendars placing meetings as `calendar` says.
    pub(crate) fn with_calendar(
        mut self,
        calendar: opsgate_domain::calendar::CalendarOptions,
    ) -> Self {
        self.calendar = Arc::new(calendar);
        self
    }

    /// The authenticator, for the HTTP pages (one place decides for both).
    pub(crate) fn auth(&self) -> &Authenticator {
        &self.auth
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }
}

/// How an RPC that changes something begins: the answer its idempotency key already has, or
/// the caller, the request and the key's record to keep the answer in.
// Made and taken apart once per call: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Change<Req, Resp> {
    /// The same request under the same key was answered before: that answer, nothing done.
    Answered(Resp),
    New(Caller, Req, Recall<Resp>),
}

impl Api {
    /// Authorizes `method` for a change and looks its idempotency key up (see [`Change`]).
    pub(crate) async fn begin_change<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        request: tonic::Request<Req>,
        method: &str,
    ) -> Result<Change<Req, Resp>, Status> {
        let caller = self.auth.changer(&request, method).await?;
        let key = idempotency_key(&request)?;
        let req = request.into_inner();
        let mut recalled =
            recall::<_, Resp>(&self.store, key.as_deref(), &caller.actor, method, &req).await?;
        Ok(match recalled.answer.take() {
            Some(answer) => Change::Answered(answer),
            None => Change::New(caller, req, recalled),
        })
    }
}

impl Api {
    /// Transition `id` as it stands now: a waiver that has run out is recorded as expired
    /// first (one write, the first time anyone looks after it ended), so that no answer counts
    /// a waiver past its end.
    pub(crate) async fn current(&self, id: &str) -> Result<TransitionView, Status> {
        let view = self.store.get_transition(id).await.map_err(status)?;
        self.expired(view).await
    }

    /// `view`, or its state after recording the waivers that ran out.
    pub(crate) async fn expired(&self, view: TransitionView) -> Result<TransitionView, Status> {
        if view.state.expired_waiver(self.store.now()).is_none() {
            return Ok(view);
        }
        let system = Actor::parse(SYSTEM_ACTOR).map_err(|e| Status::internal(e.to_string()))?;
        match self
            .store
            .execute(&view.id, Command::ExpireWaivers, Acting::person(system))
            .await
        {
            Ok(after) => Ok(after),
            // Another request recorded it first.
            Err(opsgate_store::Error::Domain(opsgate_domain::Error::FailedPrecondition(_))) => {
                self.store.get_transition(&view.id).await.map_err(status)
            }
            Err(e) => Err(status(e)),
        }
    }

    /// [`may_read`], and deputies read what the people they stand in for read.
    pub(crate) async fn may_read(
        &self,
        caller: Option<&Caller>,
        view: &opsgate_store::TransitionView,
    ) -> Result<(), Status> {
        let (meta, workflow) = (&view.state.meta, Some(&view.workflow.workflow));
        let refused = match may_read(caller, meta, workflow) {
            Ok(()) => return Ok(()),
            Err(refused) => refused,
        };
        if self
            .stands_in_for(caller)
            .await?
            .iter()
            .any(|person| has_part(meta, workflow, person))
        {
            return Ok(());
        }
        Err(refused)
    }

    /// The people `caller` is a deputy for now (their delegations to the caller in force), who
    /// read what those people read; none for a scoped credential (a CI job's) or no caller.
    pub(crate) async fn stands_in_for(
        &self,
        caller: Option<&Caller>,
    ) -> Result<Vec<Actor>, Status> {
        let Some(caller) = caller.filter(|c| c.scope.is_none()) else {
            return Ok(Vec::new());
        };
        let now = self.store.now();
        Ok(self
            .auth
            .delegations_to(&caller.actor)
            .await?
            .into_iter()
            .filter(|d| d.in_force(now))
            .map(|d| d.from)
            .collect())
    }
}

/// A transition id: required, and a UUID (checked here, so that no malformed id, NUL bytes
/// included, ever reaches a database; both backends answer alike).
pub(crate) fn transition_id<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    let value = required(field, value)?;
    if uuid::Uuid::try_parse(value).is_err() {
        return Err(invalid_argument(
            field,
            format!(
                "'{}' is not a transition id (ids are UUIDs, such as 019a4f3e-5b2c-7d11-8e9f-0a1b2c3d4e5f)",
                opsgate_domain::clip(value)
            ),
        ));
    }
    Ok(value)
}

/// A required string field, trimmed.
pub(crate) fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid_argument(field, "is required"));
    }
    Ok(value)
}
