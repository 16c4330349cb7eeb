//! The actions of a transition page, each a `POST` with a CSRF token (never a `GET` that acts:
//! mail scanners prefetch links): submit a deliverable with evidence, approve it or request
//! changes, sign off a milestone, accept or reject the handover. Each calls the very RPC the gRPC API serves, as the signed-in
//! person (their session token), so the API's authorization and validation decide; a refusal
//! is a page saying why, with the way back.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::transition_service_server::TransitionService;
use tonic::metadata::MetadataMap;

use super::Web;
use super::page::{SESSION, cookie, esc, layout, secure};

/// The access table's rows: the roles of the RPC behind each, which then decides on the person.
pub(crate) const SUBMIT: &str = "POST /transitions/{id}/submit";
pub(crate) const REVIEW: &str = "POST /transitions/{id}/review";
pub(crate) const ACCEPT: &str = "POST /transitions/{id}/accept";
pub(crate) const REJECT: &str = "POST /transitions/{id}/reject";
pub(crate) const SIGN_OFF: &str = "POST /transitions/{id}/sign-off";
pub(crate) const WAIVE: &str = "POST /transitions/{id}/waive";
/// Longest form accepted.
pub(crate) const MAX_FORM: usize = 256 * 1024;

/// The cookie holding the secret behind the CSRF token of a person an SSO proxy signed in (who
/// has no session token to derive it from): random, `HttpOnly`, `SameSite=Strict`.
pub(crate) const FORM_COOKIE: &str = "opsgate_form";

/// The CSRF token of the forms a person with session `session` is shown (none on a development
/// server): derived from the session's secret, which only this site's pages can read, so another
/// site cannot know it; the same on every replica.
pub(crate) fn csrf_token(session: Option<&str>) -> String {
    let seed = match session {
        Some(token) => format!("opsgate-csrf\n{token}"),
        None => "opsgate-csrf\ninsecure-dev".to_owned(),
    };
    opsgate_domain::hash::sha256_hex(seed.as_bytes())[..32].to_owned()
}

/// The CSRF token of the forms shown to the request `seen`, and the `Set-Cookie` value to send
/// with the page when a person signed in by the SSO proxy has no form secret yet.
pub(crate) fn csrf_for(seen: &super::Seen) -> (String, Option<String>) {
    if let Some(session) = cookie(seen, SESSION) {
        return (csrf_token(Some(session)), None);
    }
    if seen.proxied().is_none() {
        return (csrf_token(None), None);
    }
    if let Some(secret) = form_secret(seen) {
        return (csrf_token(Some(secret)), None);
    }
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No secret, no token: the form will be refused and say to reload.
        return (String::new(), None);
    }
    let secret = opsgate_domain::hash::hex(&bytes);
    (
        csrf_token(Some(&secret)),
        Some(format!(
            "{FORM_COOKIE}={secret}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=43200"
        )),
    )
}

/// The form secret cookie of `seen`, when it is well formed.
fn form_secret(seen: &super::Seen) -> Option<&str> {
    cookie(seen, FORM_COOKIE).filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The CSRF token a form posted with `seen` must carry: `None` when no token can be right (a
/// person signed in by the proxy whose form secret is missing).
fn expected_csrf(seen: &super::Seen) -> Option<String> {
    match cookie(seen, SESSION) {
        Some(session) => Some(csrf_token(Some(session))),
        None if seen.proxied().is_some() => form_secret(seen).map(|s| csrf_token(Some(s))),
        None => Some(csrf_token(None)),
    }
}

/// How an action's call is made on the person's behalf: their credential as metadata, the SSO
/// proxy's person as an extension.
pub(crate) struct Sent {
    metadata: MetadataMap,
    extensions: tonic::Extensions,
}

impl Sent {
    fn request<T>(self, message: T) -> tonic::Request<T> {
        tonic::Request::from_parts(self.metadata, self.extensions, message)
    }
}

/// The form fields of an action.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct ActionForm {
    csrf: String,
    node: String,
    links: String,
    text: String,
    decision: String,
    comment: String,
    /// One reason per line (rejecting the handover).
    reasons: String,
    /// Why (a waiver).
    reason: String,
    /// Until when (a waiver), YYYY-MM-DD: to the end of that day, UTC.
    until: String,
    /// Development servers only: who acts.
    #[serde(rename = "as")]
    acting_as: String,
}

pub(crate) async fn submit(
    State(web): State<Web>,
    Path(id): Path<String>,
    headers: super::Seen,
    body: Bytes,
) -> Response {
    act(&web, SUBMIT, &id, &headers, &body, |api, form, sent| {
        Box::pin(async move {
            let links: Vec<String> = form
                .links
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            let request = sent.request(pb::SubmitDeliverableRequest {
                transition_id: form.id.clone(),
                deliverable_id: form.node.clone(),
                evidence: Some(pb::Evidence {
                    links,
                    text: form.text.clone(),
                    attachments: Vec::new(),
                }),
            });
            TransitionService::submit_deliverable(api, request)
                .await
                .map(drop)
        })
    })
    .await
}

pub(crate) async fn review(
    State(web): State<Web>,
    Path(id): Path<String>,
    headers: super::Seen,
    body: Bytes,
) -> Response {
    act(&web, REVIEW, &id, &headers, &body, |api, form, sent| {
        Box::pin(async move {
            let decision = match form.decision.as_str() {
                "approve" => pb::ReviewDecision::Approve,
                "request_changes" => pb::ReviewDecision::RequestChanges,
                _ => {
                    return Err(tonic::Status::invalid_argument(
                        "choose Approve or Request changes",
                    ));
                }
            };
            let request = sent.request(pb::ReviewDeliverableRequest {
                transition_id: form.id.clone(),
                deliverable_id: form.node.clone(),
                decision: decision.into(),
                comment: form.comment.clone(),
            });
            TransitionService::review_deliverable(api, request)
                .await
                .map(drop)
        })
    })
    .await
}

pub(crate) async fn accept(
    State(web): State<Web>,
    Path(id): Path<String>,
    headers: super::Seen,
    body: Bytes,
) -> Response {
    act(&web, ACCEPT, &id, &headers, &body, |api, form, sent| {
        Box::pin(async move {
            let request = sent.request(pb::AcceptHandoverRequest {
                transition_id: form.id.clone(),
                comment: form.comment.clone(),
            });
            TransitionService::accept_handover(api, request)
                .await
                .map(drop)
        })
    })
    .await
}

/// An action's form with the transition it is for.
pub(crate) struct Acted {
    id: String,
    node: String,
    links: String,
    text: String,
    decision: String,
    comment: String,
    reasons: String,
    reason: String,
    until: String,
    /// The deliverables a rejection reopens (the repeated `reopen` field).
    reopen: Vec<String>,
}

pub(crate) async fn waive(
    State(web): State<Web>,
    Path(id): Path<String>,
    headers: super::Seen,
    body: Bytes,
) -> Response {
    act(&web, WAIVE, &id, &headers, &body, |api, form, sent| {
        Box::pin(async move {
            let until = chrono::NaiveDate::parse_from_str(form.until.trim(), "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(23, 59, 59))
                .ok_or_else(|| {
                    tonic::Status::invalid_argument("give the last day of the waiver (YYYY-MM-DD)")
                })?
                .and_utc();
            let request = sent.request(pb::WaiveDeliverableRequest {
                transition_id: form.id.clone(),
                deliverable_id: form.node.clone(),
                reason: form.reason.clone(),
                until: Some(prost_types::Timestamp {
                    seconds: until.timestamp(),
                    nanos: 0,
                }),
            });
            TransitionService::waive_deliverable(api, request)
                .await
                .map(drop)
        })
    })
    .await
}

pub(crate) async fn sign_off(
    State(web): State<Web>,
    Path(id): Path<String>,
    headers: super::Seen,
    body: Bytes,
) -> Response {
    act(&web, SIGN_OFF, &id, &headers, &body, |api, form, sent| {
        Box::pin(async move {
            let request = sent.request(pb::SignOffMilestoneRequest {
                transition_id: form.id.clone(),
                milestone_id: form.node.clone(),
                comment: form.comment.clone(),
            });
            TransitionService::sign_off_milestone(api, request)
                .await
                .map(drop)
        })
    })
    .await
}

pub(crate) async fn reject(
    State(web): State<Web>,
    Path(id): Path<String>,
    headers: super::Seen,
    body: Bytes,
) -> Response {
    act(&web, REJECT, &id, &headers, &body, |api, form, sent| {
        Box::pin(async move {
            let request = sent.request(pb::RejectHandoverRequest {
                transition_id: form.id.clone(),
                reasons: form
                    .reasons
                    .lines()
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect(),
                reopen_deliverables: form.reopen.clone(),
            });
            TransitionService::reject_handover(api, request)
                .await
                .map(drop)
        })
    })
    .await
}

type Call<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), tonic::Status>> + Send + 'a>>;

/// Authorizes the page, checks the CSRF token, and runs `call` as the person acting; then back
/// to the transition page, or a page saying what went wrong.
async fn act<F>(
    web: &Web,
    route: &str,
    id: &str,
    headers: &super::Seen,
    body: &[u8],
    call: F,
) -> Response
where
    F: for<'a> FnOnce(&'a crate::services::Api, &'a Acted, Sent) -> Call<'a>,
{
    if body.len() > MAX_FORM {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            id,
            "The form is too large.",
        );
    }
    // Every field as sent (`reopen` repeats), then the named ones.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let form: ActionForm = match serde_urlencoded::from_bytes(body) {
        Ok(f) => f,
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                None,
                id,
                &format!("The form could not be read: {e}"),
            );
        }
    };
    // On a development server the form's "Acting as" says who acts, as the development header
    // would (a secure server ignores it: the viewer is then whoever the credential names).
    let mut checked = headers.clone();
    if !form.acting_as.trim().is_empty()
        && !headers.contains_key(header::AUTHORIZATION)
        && cookie(headers, SESSION).is_none()
        && let Ok(value) = HeaderValue::from_str(form.acting_as.trim())
    {
        checked.insert("x-opsgate-actor", value);
    }
    let viewer = match web.viewer(&checked, route).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let who = viewer.as_ref();
    let session = cookie(headers, SESSION);
    // A credential a browser sends by itself (the session cookie, the SSO proxy's; on a
    // development server none) needs the page's CSRF token; an `Authorization` header no other
    // site can make one send.
    let ambient = !headers.contains_key(header::AUTHORIZATION);
    if ambient && expected_csrf(headers).is_none_or(|expected| form.csrf != expected) {
        return refused(
            StatusCode::FORBIDDEN,
            who,
            id,
            "The form did not come from this site's page, or your session changed: open the \
             page again and retry.",
        );
    }
    let mut metadata = MetadataMap::new();
    if let Some(value) = headers.get(header::AUTHORIZATION)
        && let Ok(value) = value.to_str().unwrap_or_default().parse()
    {
        metadata.insert("authorization", value);
    } else if let Some(token) = session
        && let Ok(value) = format!("Bearer {token}").parse()
    {
        metadata.insert("authorization", value);
    } else if !form.acting_as.trim().is_empty()
        && let Ok(value) = form.acting_as.trim().parse()
    {
        // A development server: the person the page was told acts (the API refuses it on a
        // secure server).
        metadata.insert("x-opsgate-actor", value);
    }
    let acted = Acted {
        id: id.to_owned(),
        node: form.node,
        links: form.links,
        text: form.text,
        decision: form.decision,
        comment: form.comment,
        reasons: form.reasons,
        reason: form.reason,
        until: form.until,
        reopen: pairs
            .into_iter()
            .filter(|(k, _)| k == "reopen")
            .map(|(_, v)| v)
            .collect(),
    };
    let sent = Sent {
        metadata,
        extensions: headers.extensions(),
    };
    match call(&web.api, &acted, sent).await {
        Ok(()) => {
            let anchor = if acted.node.is_empty() {
                String::new()
            } else {
                format!("#node-{}", super::page::segment(&acted.node))
            };
            let location = format!("/transitions/{}{anchor}", super::page::segment(id));
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            secure(response.headers_mut());
            response
        }
        Err(status) => refused(
            super::connect::http_status(status.code()),
            who,
            id,
            status.message(),
        ),
    }
}

fn refused(
    status: StatusCode,
    who: Option<&crate::auth::Caller>,
    id: &str,
    message: &str,
) -> Response {
    let mut response = layout(
        "Not done",
        who,
        &format!(
            "<h1>That was not done</h1><p class=\"problem\" role=\"alert\">{}</p>\
             <p><a href=\"/transitions/{}\">Back to the transition</a></p>",
            esc(message),
            super::page::segment(id)
        ),
    );
    *response.status_mut() = status;
    response
}
