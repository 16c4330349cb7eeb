//! Who is calling: an API token (`authorization: Bearer og_...`) names the principal and its
//! access roles; a CI platform's OIDC ID token (`authorization: Bearer eyJ...`) names a pipeline
//! with role `ci`, scoped by the configured claim rules; on a development server
//! (`--insecure-dev`) a call without a token may say who it is with `x-opsgate-actor` instead.
//! One place decides, for gRPC now and HTTP later.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;
use opsgate_domain::{Access, Acting, Actor, Delegation, PipelineGrant};
use opsgate_proto::metadata::AUTHORIZATION_METADATA_KEY;
use opsgate_store::{Store, TokenRecord, looks_like_token, token_hash};
use tonic::{Request, Status};

use crate::actor::{actor, single};
use crate::error::status;
use crate::oidc::{Oidc, Scope};

/// What a call needs, by RPC: the one authorization table (gRPC now; the HTTP pages will look
/// up the same rows). Object-level rules (only a deliverable's named owner submits it, only the
/// transition's service manager accepts it...) are the domain's, on top of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Reads: any authenticated caller (on a development server, anyone).
    Read,
    /// Changes: a caller holding one of these roles.
    OneOf(&'static [Access]),
}

/// Roles that change transitions: everyone but pipelines and auditors. Each row lists its roles
/// in order of preference: the first one the caller holds is the role the log records.
const ACTORS: &[Access] = &[
    Access::ProjectManager,
    Access::Approver,
    Access::ServiceManager,
    Access::Smo,
];
/// Pipelines attach evidence too (as the deliverable's named owner, as for anyone).
const SUBMITTERS: &[Access] = &[
    Access::ProjectManager,
    Access::Ci,
    Access::Approver,
    Access::ServiceManager,
    Access::Smo,
];
const REVIEWERS: &[Access] = &[
    Access::Approver,
    Access::ServiceManager,
    Access::ProjectManager,
    Access::Smo,
];
const SERVICE_MANAGERS: &[Access] = &[
    Access::ServiceManager,
    Access::ProjectManager,
    Access::Approver,
    Access::Smo,
];

/// Every RPC of every opsgate service, with what it needs. A test fails when a method of the
/// published descriptor has no row here.
pub const ACCESS: &[(&str, Needs)] = &[
    (
        "opsgate.v1.WorkflowService/RegisterWorkflow",
        Needs::OneOf(&[Access::Smo]),
    ),
    ("opsgate.v1.WorkflowService/GetWorkflow", Needs::Read),
    ("opsgate.v1.WorkflowService/ListWorkflows", Needs::Read),
    (
        "opsgate.v1.TransitionService/StartTransition",
        Needs::OneOf(&[Access::ProjectManager, Access::Smo]),
    ),
    ("opsgate.v1.TransitionService/GetTransition", Needs::Read),
    ("opsgate.v1.TransitionService/ListTransitions", Needs::Read),
    ("opsgate.v1.TransitionService/GetTemplate", Needs::Read),
    ("opsgate.v1.TransitionService/GetPlan", Needs::Read),
    ("opsgate.v1.TransitionService/GetCalendar", Needs::Read),
    // The project manager moves the go-live (the domain checks it is theirs); the SMO any.
    (
        "opsgate.v1.TransitionService/RescheduleTransition",
        Needs::OneOf(&[Access::ProjectManager, Access::Smo]),
    ),
    (
        "opsgate.v1.TransitionService/SubmitDeliverable",
        Needs::OneOf(SUBMITTERS),
    ),
    (
        "opsgate.v1.TransitionService/ReviewDeliverable",
        Needs::OneOf(REVIEWERS),
    ),
    (
        "opsgate.v1.TransitionService/AcceptHandover",
        Needs::OneOf(SERVICE_MANAGERS),
    ),
    (
        "opsgate.v1.TransitionService/RejectHandover",
        Needs::OneOf(SERVICE_MANAGERS),
    ),
    (
        "opsgate.v1.TransitionService/SignOffMilestone",
        Needs::OneOf(ACTORS),
    ),
    ("opsgate.v1.TransitionService/ListEvents", Needs::Read),
    (
        "opsgate.v1.TransitionService/ChangeParticipants",
        Needs::OneOf(&[Access::Smo]),
    ),
    // Only the SMO waives; never a pipeline.
    (
        "opsgate.v1.TransitionService/WaiveDeliverable",
        Needs::OneOf(&[Access::Smo]),
    ),
    ("opsgate.v1.GateService/CheckGate", Needs::Read),
    ("opsgate.v1.GateService/WatchGate", Needs::Read),
    (
        "opsgate.v1.IdentityService/CreateToken",
        Needs::OneOf(&[Access::Smo]),
    ),
    (
        "opsgate.v1.IdentityService/ListTokens",
        Needs::OneOf(&[Access::Smo]),
    ),
    (
        "opsgate.v1.IdentityService/RevokeToken",
        Needs::OneOf(&[Access::Smo]),
    ),
    // An approver delegates their own approvals (the SMO anyone's); the service checks whose.
    (
        "opsgate.v1.IdentityService/AddDelegation",
        Needs::OneOf(REVIEWERS),
    ),
    ("opsgate.v1.IdentityService/ListDelegations", Needs::Read),
    // People's contact details: kept by the SMO, read by the SMO and auditors (personal data).
    (
        "opsgate.v1.IdentityService/SetPerson",
        Needs::OneOf(&[Access::Smo]),
    ),
    (
        "opsgate.v1.IdentityService/ListPeople",
        Needs::OneOf(&[Access::Smo, Access::Auditor]),
    ),
    // The audit: the SMO and auditors, nobody else (it reads every transition).
    (
        "opsgate.v1.AuditService/VerifyLog",
        Needs::OneOf(&[Access::Auditor, Access::Smo]),
    ),
    (
        "opsgate.v1.AuditService/ExportEvents",
        Needs::OneOf(&[Access::Auditor, Access::Smo]),
    ),
    (
        "opsgate.v1.AuditService/ListStalled",
        Needs::OneOf(&[Access::Auditor, Access::Smo]),
    ),
    // One transition's forecast for whoever may read it; every one's for the SMO and
    // auditors, and the ones they take part in for anyone else (the service filters).
    ("opsgate.v1.AuditService/GetForecast", Needs::Read),
    (
        "opsgate.v1.AuditService/GetKpis",
        Needs::OneOf(&[Access::Auditor, Access::Smo]),
    ),
    (
        "opsgate.v1.IdentityService/RevokeDelegation",
        Needs::OneOf(REVIEWERS),
    ),
    // The dead-letter list of notifications: the SMO acts on it, auditors read it.
    (
        "opsgate.v1.NotificationService/ListFailedDeliveries",
        Needs::OneOf(&[Access::Smo, Access::Auditor]),
    ),
    (
        "opsgate.v1.NotificationService/RetryDelivery",
        Needs::OneOf(&[Access::Smo]),
    ),
    // The service catalog: kept by the SMO, read by anyone signed in.
    (
        "opsgate.v1.CatalogService/AddService",
        Needs::OneOf(&[Access::Smo]),
    ),
    (
        "opsgate.v1.CatalogService/SetService",
        Needs::OneOf(&[Access::Smo]),
    ),
    ("opsgate.v1.CatalogService/GetService", Needs::Read),
    ("opsgate.v1.CatalogService/ListServices", Needs::Read),
    // HTTP routes (`METHOD /path`), decided by the same code as the RPCs. Prometheus scrapes
    // with an API token of any role.
    ("GET /metrics", Needs::Read),
    // The gate for pipelines with curl: read like CheckGate (a CI token reaches its services).
    ("GET /api/v1/gates/{service}/{version}", Needs::Read),
    (
        "GET /api/v1/gates/{service}/{version}/badge.svg",
        Needs::Read,
    ),
    // Web pages: readers; each transition shown only to whoever may read it.
    ("GET /", Needs::Read),
    ("GET /me", Needs::Read),
    ("GET /stalled", Needs::Read),
    ("GET /workflows", Needs::Read),
    ("GET /workflows/{name}", Needs::Read),
    ("GET /services/{name}", Needs::Read),
    ("GET /transitions/{id}", Needs::Read),
    ("GET /transitions/{id}/live", Needs::Read),
    ("GET /transitions/{id}/templates/{node}", Needs::Read),
    ("GET /transitions/{id}/attachments/{sha256}", Needs::Read),
    ("GET /transitions/{id}/calendar.ics", Needs::Read),
    // A page's actions: the roles of the RPC each calls (which then decides on the person).
    ("POST /transitions/{id}/submit", Needs::OneOf(SUBMITTERS)),
    ("POST /transitions/{id}/review", Needs::OneOf(REVIEWERS)),
    (
        "POST /transitions/{id}/accept",
        Needs::OneOf(SERVICE_MANAGERS),
    ),
    (
        "POST /transitions/{id}/reject",
        Needs::OneOf(SERVICE_MANAGERS),
    ),
    ("POST /transitions/{id}/sign-off", Needs::OneOf(ACTORS)),
    ("POST /transitions/{id}/waive", Needs::OneOf(&[Access::Smo])),
];

/// What `method` (`package.Service/Method`) needs; `None` for a method without a row.
pub fn needs(method: &str) -> Option<Needs> {
    ACCESS.iter().find(|(m, _)| *m == method).map(|(_, n)| *n)
}

/// How long a looked-up token is trusted before it is read again: the most a revocation on
/// another replica takes to bite (a revocation on this replica bites at once).
const TOKEN_TTL: Duration = Duration::from_secs(5);
/// Tokens (and unknown secrets) remembered at once.
const TOKEN_CACHE: usize = 10_000;

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub actor: Actor,
    pub roles: Vec<Access>,
    /// The role this call was allowed in (`None` for a read).
    pub access: Option<Access>,
    /// How the caller authenticated, as the log shows it.
    pub credential: String,
    /// A pipeline verified by OIDC: only these services.
    pub scope: Option<Scope>,
}

impl Caller {
    /// The caller as the domain sees it: who, in what role, through what; a scoped pipeline
    /// with its grant.
    pub(crate) fn acting(&self) -> Acting {
        Acting {
            actor: self.actor.clone(),
            access: self.access,
            credential: Some(self.credential.clone()),
            deputy_for: Vec::new(),
            pipeline: self.scope.as_ref().map(|s| PipelineGrant {
                deliverables: s.deliverables.clone(),
            }),
        }
    }

    /// Whether the caller holds `role`.
    pub(crate) fn holds(&self, role: Access) -> bool {
        self.roles.contains(&role)
    }

    /// `PermissionDenied` when the caller is a pipeline whose rule does not cover `service`.
    pub(crate) fn reaches(&self, service: &str) -> Result<(), Status> {
        match &self.scope {
            Some(scope) if !scope.covers(service) => Err(Status::permission_denied(format!(
                "{} may act on service {} only; not on '{}'",
                self.actor,
                scope.services.join(", "),
                opsgate_domain::clip(service)
            ))),
            _ => Ok(()),
        }
    }

    /// `PermissionDenied` unless the caller holds one of `roles` (`method` says what was refused).
    fn permit(&self, roles: &[Access], method: &str) -> Result<(), Status> {
        if roles.iter().any(|r| self.roles.contains(r)) {
            return Ok(());
        }
        let held: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
        let needed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let call = method.rsplit('/').next().unwrap_or(method);
        Err(Status::permission_denied(format!(
            "{} may not call {call}: that needs role {} (this credential has: {})",
            self.actor,
            needed.join(" or "),
            if held.is_empty() {
                "none".to_owned()
            } else {
                held.join(", ")
            }
        )))
    }
}

/// Whether `caller` may read the transition `meta` describes: the SMO and auditors read
/// everything; anyone else needs a part in it (its project or service manager, or named for one
/// of its roles). `None` (a development server's anonymous read) reads everything.
pub(crate) fn may_read(
    caller: Option<&Caller>,
    meta: &opsgate_domain::transition::TransitionMeta,
    workflow: Option<&opsgate_domain::Workflow>,
) -> Result<(), Status> {
    let Some(caller) = caller else {
        return Ok(());
    };
    if caller.scope.is_some() {
        return caller.reaches(&meta.service_name);
    }
    if caller
        .roles
        .iter()
        .any(|r| matches!(r, Access::Smo | Access::Auditor))
    {
        return Ok(());
    }
    let who = &caller.actor;
    if has_part(meta, workflow, who) {
        return Ok(());
    }
    Err(Status::permission_denied(format!(
        "{who} has no part in the transition of {} {}: only its project and service managers, \
         the people named for its roles or as approvers by its workflow, the SMO and auditors \
         read it",
        opsgate_domain::clip(&meta.service_name),
        opsgate_domain::clip(&meta.service_version)
    )))
}

/// Whether `who` is the transition's project or service manager, named for one of its roles,
/// or named as an approver by its `workflow` (`approvers: [{person: ...}]`; not known when
/// `None`).
pub(crate) fn has_part(
    meta: &opsgate_domain::transition::TransitionMeta,
    workflow: Option<&opsgate_domain::Workflow>,
    who: &Actor,
) -> bool {
    &meta.project_manager == who
        || &meta.service_manager == who
        || meta
            .participants
            .values()
            .any(|people| people.contains(who))
        || workflow.is_some_and(|w| w.names_approver(who))
}

/// Authenticates requests against the store's tokens, with a short-lived cache.
#[derive(Debug)]
pub(crate) struct Authenticator {
    store: Store,
    insecure_dev: bool,
    oidc: Oidc,
    cache: Mutex<LruCache<String, (Option<TokenRecord>, Instant)>>,
    /// Delegations to each recent caller, trusted as long as tokens are.
    deputies: Mutex<LruCache<Actor, (Vec<Delegation>, Instant)>>,
}

impl Authenticator {
    pub(crate) fn new(store: Store, insecure_dev: bool, oidc: Oidc) -> Self {
        Self {
            store,
            insecure_dev,
            oidc,
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(TOKEN_CACHE).unwrap_or(NonZeroUsize::MIN),
            )),
            deputies: Mutex::new(LruCache::new(
                NonZeroUsize::new(TOKEN_CACHE).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// The caller of `method` (a row of [`ACCESS`]), authenticated and allowed by the table:
    /// someone for a change; for a read on a development server, possibly nobody.
    pub(crate) async fn authorize<T>(
        &self,
        request: &Request<T>,
        method: &str,
    ) -> Result<Option<Caller>, Status> {
        let needs = needs(method).ok_or_else(|| {
            tracing::error!(method, "an RPC without a row in the access table");
            Status::permission_denied(format!("{method} has no access rule"))
        })?;
        match needs {
            Needs::Read => self.reader(request).await,
            Needs::OneOf(roles) => {
                let mut caller = self.caller(request).await?;
                caller.permit(roles, method)?;
                caller.access = roles.iter().copied().find(|r| caller.holds(*r));
                Ok(Some(caller))
            }
        }
    }

    /// [`Authenticator::authorize`] for a change: always someone.
    pub(crate) async fn changer<T>(
        &self,
        request: &Request<T>,
        method: &str,
    ) -> Result<Caller, Status> {
        self.authorize(request, method)
            .await?
            .ok_or_else(no_credential)
    }

    /// The caller of a request that changes something: always someone.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let found = match self.token_caller(request).await? {
            Some(caller) => Some(caller),
            None => self.proxied(request)?,
        };
        match found {
            Some(caller) => Ok(caller),
            None if self.insecure_dev => Ok(Caller {
                actor: actor(request)?,
                roles: Access::ALL.to_vec(),
                access: None,
                credential: "insecure-dev x-opsgate-actor".to_owned(),
                scope: None,
            }),
            None => Err(no_credential()),
        }
    }

    /// The caller of a request that only reads: on a development server reads need nobody.
    async fn reader<T>(&self, request: &Request<T>) -> Result<Option<Caller>, Status> {
        let found = match self.token_caller(request).await? {
            Some(caller) => Some(caller),
            None => self.proxied(request)?,
        };
        match found {
            Some(caller) => Ok(Some(caller)),
            None if self.insecure_dev => Ok(None),
            None => Err(no_credential()),
        }
    }

    /// Forgets every cached token and delegation (after a change to them here).
    pub(crate) fn forget(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
        if let Ok(mut cache) = self.deputies.lock() {
            cache.clear();
        }
    }

    /// The delegations to `deputy` not yet over (their dates are checked where they are used),
    /// cached like tokens: a change made here bites at once, one made on another replica within
    /// [`TOKEN_TTL`]. Most reviews are by people with none; this spares each a query.
    pub(crate) async fn delegations_to(&self, deputy: &Actor) -> Result<Vec<Delegation>, Status> {
        if let Ok(mut cache) = self.deputies.lock()
            && let Some((found, at)) = cache.get(deputy)
            && at.elapsed() < TOKEN_TTL
        {
            return Ok(found.clone());
        }
        let found = self.store.delegations_to(deputy).await.map_err(status)?;
        if let Ok(mut cache) = self.deputies.lock() {
            cache.put(deputy.clone(), (found.clone(), Instant::now()));
        }
        Ok(found)
    }

    async fn token_caller<T>(&self, request: &Request<T>) -> Result<Option<Caller>, Status> {
        let Some(value) = single(
            request,
            AUTHORIZATION_METADATA_KEY,
            "send one credential, not several",
        )?
        else {
            return Ok(None);
        };
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or_else(|| {
                Status::unauthenticated(
                    "the authorization metadata must be `Bearer og_...` (or a CI OIDC token)",
                )
            })?;
        if !looks_like_token(secret) {
            if !self.oidc.is_empty() && secret.split('.').count() == 3 {
                let verified = self.oidc.verify(secret).await?;
                self.refuse_second_name(request, &verified.principal)?;
                return Ok(Some(Caller {
                    actor: verified.principal,
                    roles: vec![Access::Ci],
                    access: None,
                    credential: verified.credential,
                    scope: Some(verified.scope),
                }));
            }
            return Err(Status::unauthenticated(
                "not an opsgate token: tokens are og_ and 64 hex digits (opsgate token create)",
            ));
        }
        let token = self.lookup(secret).await?.ok_or_else(|| {
            Status::unauthenticated("unknown token: it was never issued here, or it was mistyped")
        })?;
        let at = chrono::Utc::now();
        if let Some(revoked) = token.revoked_at {
            return Err(Status::unauthenticated(format!(
                "token {} ({}) was revoked at {revoked}",
                token.prefix, token.principal
            )));
        }
        if let Some(expired) = token.expires_at.filter(|e| *e <= at) {
            return Err(Status::unauthenticated(format!(
                "token {} ({}) expired at {expired}: ask the SMO for a new one",
                token.prefix, token.principal
            )));
        }
        self.refuse_second_name(request, &token.principal)?;
        tracing::trace!(token = %token.id, principal = %token.principal, "authenticated");
        Ok(Some(Caller {
            actor: token.principal.clone(),
            roles: token.roles.clone(),
            access: None,
            credential: format!("token {} ({})", token.id, token.prefix),
            scope: None,
        }))
    }

    /// The person a trusted SSO proxy signed in (HTTP only: the listener puts them in the
    /// request's extensions, which no client can set).
    fn proxied<T>(&self, request: &Request<T>) -> Result<Option<Caller>, Status> {
        let Some(user) = request.extensions().get::<crate::proxy::ProxyUser>() else {
            return Ok(None);
        };
        self.refuse_second_name(request, &user.actor)?;
        Ok(Some(Caller {
            actor: user.actor.clone(),
            roles: user.roles.clone(),
            access: None,
            credential: format!("sso proxy ({})", user.header),
            scope: None,
        }))
    }

    /// The credential says who is calling; a second name would be a claim the server cannot
    /// check.
    fn refuse_second_name<T>(&self, request: &Request<T>, principal: &Actor) -> Result<(), Status> {
        let metadata = request.metadata();
        if metadata.contains_key(opsgate_proto::metadata::ACTOR_METADATA_KEY)
            || metadata.contains_key(opsgate_proto::metadata::ACTOR_BIN_METADATA_KEY)
        {
            let claimed = actor(request)?;
            if &claimed != principal {
                return Err(Status::permission_denied(format!(
                    "this credential acts as {principal}; x-opsgate-actor cannot make it act as {claimed}"
                )));
            }
        }
        Ok(())
    }

    async fn lookup(&self, secret: &str) -> Result<Option<TokenRecord>, Status> {
        let hash = token_hash(secret);
        if let Ok(mut cache) = self.cache.lock()
            && let Some((found, at)) = cache.get(&hash)
            && at.elapsed() < TOKEN_TTL
        {
            return Ok(found.clone());
        }
        let found = self.store.token(secret).await.map_err(status)?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.put(hash, (found.clone(), Instant::now()));
        }
        Ok(found)
    }
}

fn no_credential() -> Status {
    Status::unauthenticated(
        "no credential: send an API token as `authorization: Bearer og_...` \
         (opsgate --token, or OPSGATE_TOKEN)",
    )
}
