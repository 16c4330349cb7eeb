//! `GET /api/v1/gates/{service}/{version}`: the gate decision of a service version as JSON, the
//! same `CheckGateResponse` as the RPC in protobuf JSON (200 whatever it says: `open`, `state`,
//! `summary` and the blockers say why); and `.../badge.svg`, a status badge for a README. For
//! shell and Jenkins pipelines that have `curl` and no gRPC client. Authorized like `CheckGate`
//! (a CI token reaches only its own services).

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opsgate_domain::{GateDecision, GateState};
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::check_gate_request::Target;

use super::Web;
use super::connect::{error, json_response, to_json};
use crate::convert;

/// The access table's rows of these routes.
pub(crate) const DECISION: &str = "GET /api/v1/gates/{service}/{version}";
pub(crate) const BADGE: &str = "GET /api/v1/gates/{service}/{version}/badge.svg";

/// The decision, or the refusal as a Connect error.
async fn decide(
    web: &Web,
    headers: &super::Seen,
    route: &str,
    service: String,
    version: String,
) -> Result<(opsgate_store::TransitionView, GateDecision), tonic::Status> {
    let caller = web.caller(headers, route).await?;
    let target = Target::Service(pb::ServiceRef {
        name: service,
        version,
    });
    let view = web.api.gate_view(caller.as_ref(), Some(target)).await?;
    let decision = GateDecision::of(&view.workflow.workflow, &view.state);
    Ok((view, decision))
}

pub(crate) async fn decision(
    State(web): State<Web>,
    Path((service, version)): Path<(String, String)>,
    headers: super::Seen,
) -> Response {
    match decide(&web, &headers, DECISION, service, version).await {
        Ok((view, decision)) => {
            let answer = convert::gate(&view, &decision);
            match to_json(&answer, "opsgate.v1.CheckGateResponse") {
                Ok(body) => {
                    let mut response = json_response(StatusCode::OK, body);
                    no_store(&mut response);
                    response
                }
                Err(status) => error(&status),
            }
        }
        Err(status) => error(&status),
    }
}

pub(crate) async fn badge(
    State(web): State<Web>,
    Path((service, version)): Path<(String, String)>,
    headers: super::Seen,
) -> Response {
    let (status, word, colour) = match decide(&web, &headers, BADGE, service, version).await {
        Ok((_, decision)) => match decision.state {
            GateState::Closed => (StatusCode::OK, "closed", "#d73a49"),
            GateState::Open => (StatusCode::OK, "open", "#2ea44f"),
            GateState::Accepted => (StatusCode::OK, "accepted", "#0366d6"),
        },
        Err(s) if s.code() == tonic::Code::NotFound => {
            (StatusCode::NOT_FOUND, "unknown", "#6a737d")
        }
        Err(s) => return error(&s),
    };
    let mut response = (status, svg("ops gate", word, colour)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml; charset=utf-8"),
    );
    no_store(&mut response);
    response
}

/// A gate changes at any moment: nobody may cache its answer.
fn no_store(response: &mut Response) {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, max-age=0"),
    );
}

/// A flat two-part badge (`label | value`), sized for Verdana 11px at about 7 px a character.
/// Both texts are fixed words of this module, never user input.
fn svg(label: &str, value: &str, colour: &str) -> String {
    let width = |text: &str| 10 + 7 * text.chars().count();
    let (left, right) = (width(label), width(value));
    let total = left + right;
    let title = format!("{label}: {value}");
    format!(
        concat!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{total}\" height=\"20\" ",
            "role=\"img\" aria-label=\"{title}\"><title>{title}</title>",
            "<rect width=\"{left}\" height=\"20\" fill=\"#555\"/>",
            "<rect x=\"{left}\" width=\"{right}\" height=\"20\" fill=\"{colour}\"/>",
            "<g fill=\"#fff\" text-anchor=\"middle\" ",
            "font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" font-size=\"11\">",
            "<text x=\"{lx}\" y=\"14\">{label}</text><text x=\"{rx}\" y=\"14\">{value}</text>",
            "</g></svg>"
        ),
        total = total,
        title = title,
        left = left,
        right = right,
        colour = colour,
        lx = left / 2,
        rx = left + right / 2,
        label = label,
        value = value,
    )
}
