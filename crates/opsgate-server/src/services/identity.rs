//! `opsgate.v1.IdentityService`: API tokens, created, listed and revoked by the SMO; the
//! delegation RPCs are in `delegation.rs`.

use chrono::{Duration, Utc};
use opsgate_domain::{Access, Actor};
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::identity_service_server::IdentityService;
use opsgate_store::NewToken;
use tonic::{Request, Response, Status};

use super::{Api, required};
use crate::convert;
use crate::error::{domain_status, invalid_argument, status};

/// The longest a token may live: ten years.
const MAX_EXPIRY_DAYS: u32 = 3650;
/// Longest token description.
const MAX_DESCRIPTION: usize = 500;

#[tonic::async_trait]
impl IdentityService for Api {
    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let caller = self
            .auth
            .changer(&request, "opsgate.v1.IdentityService/CreateToken")
            .await?;
        let req = request.into_inner();
        let principal = Actor::parse_field("principal", required("principal", &req.principal)?)
            .map_err(domain_status)?;
        if req.roles.is_empty() {
            return Err(invalid_argument(
                "roles",
                format!(
                    "give at least one role: {}",
                    Access::ALL.map(Access::as_str).join(", ")
                ),
            ));
        }
        let mut roles = req
            .roles
            .iter()
            .map(|r| Access::parse(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(domain_status)?;
        roles.sort();
        roles.dedup();
        if req.expires_in_days > MAX_EXPIRY_DAYS {
            return Err(invalid_argument(
                "expires_in_days",
                format!("at most {MAX_EXPIRY_DAYS} days"),
            ));
        }
        let description = req.description.trim().to_owned();
        if description.chars().count() > MAX_DESCRIPTION
            || description.chars().any(char::is_control)
        {
            return Err(invalid_argument(
                "description",
                format!("at most {MAX_DESCRIPTION} characters without control characters"),
            ));
        }
        let new = NewToken {
            principal,
            roles,
            expires_at: (req.expires_in_days > 0)
                .then(|| Utc::now() + Duration::days(i64::from(req.expires_in_days))),
            description,
        };
        let (token, record) = self
            .store
            .create_token(&new, &caller.actor)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateTokenResponse {
            token,
            info: Some(convert::token(&record)),
        }))
    }

    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        self.auth
            .changer(&request, "opsgate.v1.IdentityService/ListTokens")
            .await?;
        let tokens = self
            .store
            .list_tokens(request.into_inner().include_inactive)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: tokens.iter().map(convert::token).collect(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let caller = self
            .auth
            .changer(&request, "opsgate.v1.IdentityService/RevokeToken")
            .await?;
        let req = request.into_inner();
        let id = required("id", &req.id)?;
        let record = self
            .store
            .revoke_token(id, &caller.actor)
            .await
            .map_err(status)?;
        self.auth.forget();
        Ok(Response::new(pb::RevokeTokenResponse {
            info: Some(convert::token(&record)),
        }))
    }

    async fn add_delegation(
        &self,
        request: Request<pb::AddDelegationRequest>,
    ) -> Result<Response<pb::AddDelegationResponse>, Status> {
        self.add_delegation_rpc(request).await
    }

    async fn list_delegations(
        &self,
        request: Request<pb::ListDelegationsRequest>,
    ) -> Result<Response<pb::ListDelegationsResponse>, Status> {
        self.list_delegations_rpc(request).await
    }

    async fn revoke_delegation(
        &self,
        request: Request<pb::RevokeDelegationRequest>,
    ) -> Result<Response<pb::RevokeDelegationResponse>, Status> {
        self.revoke_delegation_rpc(request).await
    }

    async fn set_person(
        &self,
        request: Request<pb::SetPersonRequest>,
    ) -> Result<Response<pb::SetPersonResponse>, Status> {
        self.set_person_rpc(request).await
    }

    async fn list_people(
        &self,
        request: Request<pb::ListPeopleRequest>,
    ) -> Result<Response<pb::ListPeopleResponse>, Status> {
        self.list_people_rpc(request).await
    }
}
