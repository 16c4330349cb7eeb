//! `POST /opsgate.v1.<Service>/<Method>`: every unary RPC over HTTP with a protobuf-JSON body,
//! in the Connect protocol's unary shape (`application/json` in and out; an error is
//! `{"code": "permission_denied", "message": "..."}` with the matching HTTP status). The JSON is
//! transcoded to the RPC's protobuf message through the API's own descriptors (`prost-reflect`),
//! and the call goes to the same service method the gRPC server calls, with the request's
//! headers as its metadata: the same authentication (bearer tokens, CI OIDC tokens), the same
//! authorization table, the same validation.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::audit_service_server::AuditService;
use opsgate_proto::v1::catalog_service_server::CatalogService;
use opsgate_proto::v1::gate_service_server::GateService;
use opsgate_proto::v1::identity_service_server::IdentityService;
use opsgate_proto::v1::notification_service_server::NotificationService;
use opsgate_proto::v1::transition_service_server::TransitionService;
use opsgate_proto::v1::workflow_service_server::WorkflowService;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Status};

use super::Web;
use crate::services::Api;

/// The API's message and service descriptors, read once.
pub(crate) fn pool() -> &'static DescriptorPool {
    static POOL: std::sync::OnceLock<DescriptorPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        // The descriptor set is compiled into the binary by opsgate-proto's build; it decodes
        // (a test decodes it), so an empty pool is only a fallback that serves nothing.
        DescriptorPool::decode(opsgate_proto::FILE_DESCRIPTOR_SET).unwrap_or_default()
    })
}

/// The message `value` as protobuf JSON (proto3 field names in lowerCamelCase, enums by name,
/// 64-bit integers as strings; fields at their default written too, so that `jq .open` reads
/// `false` rather than nothing).
pub(crate) fn to_json(value: &impl prost::Message, type_name: &str) -> Result<Vec<u8>, Status> {
    let descriptor = pool()
        .get_message_by_name(type_name)
        .ok_or_else(|| Status::internal(format!("no descriptor for {type_name}")))?;
    let dynamic = DynamicMessage::decode(descriptor, value.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("transcoding {type_name}: {e}")))?;
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    dynamic
        .serialize_with_options(
            &mut serializer,
            &SerializeOptions::new().skip_default_fields(false),
        )
        .map_err(|e| Status::internal(format!("writing {type_name} as JSON: {e}")))?;
    Ok(out)
}

/// `POST /{service}/{method}`.
pub(crate) async fn call(
    State(web): State<Web>,
    Path((service, method)): Path<(String, String)>,
    headers: super::Seen,
    body: Bytes,
) -> Response {
    let path = format!("{service}/{method}");
    let Some(rpc) = pool()
        .get_service_by_name(&service)
        .and_then(|s| s.methods().find(|m| m.name() == method))
    else {
        return error(&Status::unimplemented(format!(
            "no RPC {path}: POST /opsgate.v1.<Service>/<Method> (docs/http.md)"
        )));
    };
    if rpc.is_server_streaming() || rpc.is_client_streaming() {
        return error(&Status::unimplemented(format!(
            "{path} streams: call it over gRPC (the HTTP bridge serves unary RPCs)"
        )));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        let mut response = error(&Status::invalid_argument(
            "send the request as JSON: Content-Type: application/json",
        ));
        *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return response;
    }
    let request = match decode(rpc.input(), &body) {
        Ok(bytes) => bytes,
        Err(status) => return error(&status),
    };
    // The person a trusted SSO proxy names may call too: a browser on another site cannot send
    // `application/json` without a preflight this listener never grants.
    let extensions = headers.extensions();
    let metadata = MetadataMap::from_headers(HeaderMap::clone(&headers));
    match dispatch(&web.api, &path, metadata, extensions, &request).await {
        Ok(reply) => match DynamicMessage::decode(rpc.output(), reply.as_slice()) {
            Ok(dynamic) => {
                let mut out = Vec::new();
                let mut serializer = serde_json::Serializer::new(&mut out);
                match dynamic.serialize_with_options(
                    &mut serializer,
                    &SerializeOptions::new().skip_default_fields(false),
                ) {
                    Ok(()) => json_response(StatusCode::OK, out),
                    Err(e) => error(&Status::internal(format!("writing the answer: {e}"))),
                }
            }
            Err(e) => error(&Status::internal(format!("reading the answer: {e}"))),
        },
        Err(status) => error(&status),
    }
}

/// The request body (protobuf JSON of `input`) as the message's protobuf bytes.
fn decode(input: MessageDescriptor, body: &[u8]) -> Result<Vec<u8>, Status> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let message = DynamicMessage::deserialize(input.clone(), &mut deserializer)
        .and_then(|m| deserializer.end().map(|()| m))
        .map_err(|e| {
            Status::invalid_argument(format!(
                "the body is not a {} in protobuf JSON: {e}",
                input.full_name()
            ))
        })?;
    Ok(message.encode_to_vec())
}

/// Defines [`dispatch`], which calls an RPC by path, and [`ROUTED`], the paths it serves.
macro_rules! routes {
    ($($path:literal => $service:ident::$method:ident($request:ty),)*) => {
        /// Every RPC path [`dispatch`] serves.
        #[cfg(test)]
        const ROUTED: &[&str] = &[$($path),*];

        /// Calls the RPC `path` on `api` with `request` (its protobuf bytes), `metadata` and
        /// `extensions`.
        async fn dispatch(
            api: &Api,
            path: &str,
            metadata: MetadataMap,
            extensions: tonic::Extensions,
            request: &[u8],
        ) -> Result<Vec<u8>, Status> {
            match path {
                $($path => {
                    let message = <$request>::decode(request).map_err(|e| {
                        Status::invalid_argument(format!("the request does not decode: {e}"))
                    })?;
                    let call = Request::from_parts(metadata, extensions, message);
                    Ok(<Api as $service>::$method(api, call).await?.into_inner().encode_to_vec())
                })*
                _ => Err(Status::unimplemented(format!("{path} is not served over HTTP"))),
            }
        }
    };
}

routes! {
    "opsgate.v1.AuditService/VerifyLog" => AuditService::verify_log(pb::VerifyLogRequest),
    "opsgate.v1.AuditService/ExportEvents" => AuditService::export_events(pb::ExportEventsRequest),
    "opsgate.v1.AuditService/ListStalled" => AuditService::list_stalled(pb::ListStalledRequest),
    "opsgate.v1.AuditService/GetForecast" => AuditService::get_forecast(pb::GetForecastRequest),
    "opsgate.v1.AuditService/GetKpis" => AuditService::get_kpis(pb::GetKpisRequest),
    "opsgate.v1.CatalogService/AddService" => CatalogService::add_service(pb::AddServiceRequest),
    "opsgate.v1.CatalogService/SetService" => CatalogService::set_service(pb::SetServiceRequest),
    "opsgate.v1.CatalogService/GetService" => CatalogService::get_service(pb::GetServiceRequest),
    "opsgate.v1.CatalogService/ListServices" => CatalogService::list_services(pb::ListServicesRequest),
    "opsgate.v1.GateService/CheckGate" => GateService::check_gate(pb::CheckGateRequest),
    "opsgate.v1.IdentityService/CreateToken" => IdentityService::create_token(pb::CreateTokenRequest),
    "opsgate.v1.IdentityService/ListTokens" => IdentityService::list_tokens(pb::ListTokensRequest),
    "opsgate.v1.IdentityService/RevokeToken" => IdentityService::revoke_token(pb::RevokeTokenRequest),
    "opsgate.v1.IdentityService/AddDelegation" => IdentityService::add_delegation(pb::AddDelegationRequest),
    "opsgate.v1.IdentityService/ListDelegations" => IdentityService::list_delegations(pb::ListDelegationsRequest),
    "opsgate.v1.IdentityService/RevokeDelegation" => IdentityService::revoke_delegation(pb::RevokeDelegationRequest),
    "opsgate.v1.IdentityService/SetPerson" => IdentityService::set_person(pb::SetPersonRequest),
    "opsgate.v1.IdentityService/ListPeople" => IdentityService::list_people(pb::ListPeopleRequest),
    "opsgate.v1.NotificationService/ListFailedDeliveries" => NotificationService::list_failed_deliveries(pb::ListFailedDeliveriesRequest),
    "opsgate.v1.NotificationService/RetryDelivery" => NotificationService::retry_delivery(pb::RetryDeliveryRequest),
    "opsgate.v1.TransitionService/StartTransition" => TransitionService::start_transition(pb::StartTransitionRequest),
    "opsgate.v1.TransitionService/GetTransition" => TransitionService::get_transition(pb::GetTransitionRequest),
    "opsgate.v1.TransitionService/ListTransitions" => TransitionService::list_transitions(pb::ListTransitionsRequest),
    "opsgate.v1.TransitionService/SubmitDeliverable" => TransitionService::submit_deliverable(pb::SubmitDeliverableRequest),
    "opsgate.v1.TransitionService/ReviewDeliverable" => TransitionService::review_deliverable(pb::ReviewDeliverableRequest),
    "opsgate.v1.TransitionService/AcceptHandover" => TransitionService::accept_handover(pb::AcceptHandoverRequest),
    "opsgate.v1.TransitionService/RejectHandover" => TransitionService::reject_handover(pb::RejectHandoverRequest),
    "opsgate.v1.TransitionService/SignOffMilestone" => TransitionService::sign_off_milestone(pb::SignOffMilestoneRequest),
    "opsgate.v1.TransitionService/ListEvents" => TransitionService::list_events(pb::ListEventsRequest),
    "opsgate.v1.TransitionService/ChangeParticipants" => TransitionService::change_participants(pb::ChangeParticipantsRequest),
    "opsgate.v1.TransitionService/WaiveDeliverable" => TransitionService::waive_deliverable(pb::WaiveDeliverableRequest),
    "opsgate.v1.TransitionService/GetTemplate" => TransitionService::get_template(pb::GetTemplateRequest),
    "opsgate.v1.TransitionService/GetPlan" => TransitionService::get_plan(pb::GetPlanRequest),
    "opsgate.v1.TransitionService/GetCalendar" => TransitionService::get_calendar(pb::GetCalendarRequest),
    "opsgate.v1.TransitionService/RescheduleTransition" => TransitionService::reschedule_transition(pb::RescheduleTransitionRequest),
    "opsgate.v1.WorkflowService/RegisterWorkflow" => WorkflowService::register_workflow(pb::RegisterWorkflowRequest),
    "opsgate.v1.WorkflowService/GetWorkflow" => WorkflowService::get_workflow(pb::GetWorkflowRequest),
    "opsgate.v1.WorkflowService/ListWorkflows" => WorkflowService::list_workflows(pb::ListWorkflowsRequest),
}

/// The Connect protocol's name of `code`.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status the Connect protocol gives `code`.
pub(crate) fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `status` as a Connect error: `{"code": ..., "message": ...}` with its HTTP status (401 with
/// a Bearer challenge).
pub(crate) fn error(status: &Status) -> Response {
    let body = serde_json::json!({
        "code": code_name(status.code()),
        "message": status.message(),
    });
    let code = http_status(status.code());
    let mut response = json_response(code, body.to_string().into_bytes());
    if code == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"opsgate\""),
        );
    }
    response
}

pub(crate) fn json_response(code: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (code, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptors_decode_and_every_unary_rpc_has_a_route() {
        let pool = pool();
        let unary: Vec<String> = pool
            .services()
            .flat_map(|s| {
                s.methods()
                    .filter(|m| !m.is_server_streaming() && !m.is_client_streaming())
                    .map(|m| format!("{}/{}", s.full_name(), m.name()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(unary.len() >= 30, "{unary:?}");
        let mut routed: Vec<String> = ROUTED.iter().map(|r| (*r).to_owned()).collect();
        let mut unary = unary;
        unary.sort();
        routed.sort();
        assert_eq!(
            unary, routed,
            "every unary RPC, and nothing else, is routed"
        );
    }
}
