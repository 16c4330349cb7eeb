//! `IdentityService.AddDelegation`, `ListDelegations`, `RevokeDelegation`: an approver names a
//! deputy for a date range (the SMO may for anyone), sees and ends their delegations.

use opsgate_domain::{Access, Actor};
use opsgate_proto::v1 as pb;
use opsgate_store::NewDelegation;
use tonic::{Request, Response, Status};

use super::Api;
use crate::auth::Caller;
use crate::convert;
use crate::error::{domain_status, invalid_argument, status};

/// Longest reason kept with a delegation.
const MAX_REASON: usize = 500;

impl Api {
    pub(super) async fn add_delegation_rpc(
        &self,
        request: Request<pb::AddDelegationRequest>,
    ) -> Result<Response<pb::AddDelegationResponse>, Status> {
        let caller = self
            .auth
            .changer(&request, "opsgate.v1.IdentityService/AddDelegation")
            .await?;
        let req = request.into_inner();
        let to = Actor::parse_field("to", &req.to).map_err(domain_status)?;
        let from = match req.from.trim() {
            "" => caller.actor.clone(),
            from => Actor::parse_field("from", from).map_err(domain_status)?,
        };
        if from != caller.actor && !caller.holds(Access::Smo) {
            return Err(Status::permission_denied(format!(
                "{} may delegate only their own approvals, not {from}'s (the SMO may for anyone)",
                caller.actor
            )));
        }
        let reason = req.reason.trim().to_owned();
        if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
            return Err(invalid_argument(
                "reason",
                format!("at most {MAX_REASON} characters on one line"),
            ));
        }
        let new = NewDelegation {
            from,
            to,
            starts: convert::moment("starts_at", req.starts_at.as_ref())?,
            ends: convert::moment("ends_at", req.ends_at.as_ref())?,
            reason,
        };
        let record = self
            .store
            .add_delegation(&new, &caller.actor)
            .await
            .map_err(status)?;
        self.auth.forget();
        Ok(Response::new(pb::AddDelegationResponse {
            delegation: Some(convert::delegation(&record)),
        }))
    }

    pub(super) async fn list_delegations_rpc(
        &self,
        request: Request<pb::ListDelegationsRequest>,
    ) -> Result<Response<pb::ListDelegationsResponse>, Status> {
        let caller = self
            .auth
            .authorize(&request, "opsgate.v1.IdentityService/ListDelegations")
            .await?;
        let req = request.into_inner();
        let named = match req.person.trim() {
            "" => None,
            person => Some(Actor::parse_field("person", person).map_err(domain_status)?),
        };
        let sees_all = caller
            .as_ref()
            .is_none_or(|c: &Caller| c.holds(Access::Smo) || c.holds(Access::Auditor));
        let person = match (&caller, named) {
            (_, named) if sees_all => named,
            (Some(c), Some(named)) if named != c.actor => {
                return Err(Status::permission_denied(format!(
                    "{} may list only their own delegations (the SMO and auditors: anyone's)",
                    c.actor
                )));
            }
            (Some(c), _) => Some(c.actor.clone()),
            (None, named) => named,
        };
        let records = self
            .store
            .list_delegations(person.as_ref(), req.include_inactive)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListDelegationsResponse {
            delegations: records.iter().map(convert::delegation).collect(),
        }))
    }

    pub(super) async fn revoke_delegation_rpc(
        &self,
        request: Request<pb::RevokeDelegationRequest>,
    ) -> Result<Response<pb::RevokeDelegationResponse>, Status> {
        let caller = self
            .auth
            .changer(&request, "opsgate.v1.IdentityService/RevokeDelegation")
            .await?;
        let id = request.into_inner().id;
        if id <= 0 {
            return Err(invalid_argument("id", "is a delegation number, such as 12"));
        }
        let found = self.store.delegation(id).await.map_err(status)?;
        if found.delegation.from != caller.actor && !caller.holds(Access::Smo) {
            return Err(Status::permission_denied(format!(
                "delegation #{id} is {}'s to end (or the SMO's), not {}'s",
                found.delegation.from, caller.actor
            )));
        }
        let record = self
            .store
            .revoke_delegation(id, &caller.actor)
            .await
            .map_err(status)?;
        self.auth.forget();
        Ok(Response::new(pb::RevokeDelegationResponse {
            delegation: Some(convert::delegation(&record)),
        }))
    }
}
