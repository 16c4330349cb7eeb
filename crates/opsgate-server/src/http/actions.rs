//! The actions of a transition page, each a `POST` with a CSRF token (never a `GET` that acts:
//! mail scanners prefetch links): submit a deliverable with evidence, approve it or request
//! changes, sign off a milestone, accept or reject the handover. Each calls the very RPC the gRPC API serves, as the signed-in
//! person (their session token), so the API's authorization and validation decide; a refusal
//! is a page saying why, with the way back.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
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
    act(&web, SUBMIT, &id, &headers, body, |api, form, sent| {
        Box::pin(async move {
            let links: Vec<String> = form
                .links
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            // The files first (content-addressed, per transition); those this request stored
            // go again when the submission is refused, so nothing is left half-written.
            let mut attachments = Vec::new();
            let mut stored = Vec::new();
            for file in &form.files {
                let put = api
                    .store()
                    .put_attachment(
                        &form.id,
                        &opsgate_store::NewAttachment {
                            name: &file.name,
                            content_type: &file.content_type,
                            content: &file.content,
                        },
                        &form.by,
                    )
                    .await;
                match put {
                    Ok((sha256, new)) => {
                        if new {
                            stored.push(sha256.clone());
                        }
                        attachments.push(pb::Attachment {
                            uri: attachment_uri(&sha256, &file.name),
                            sha256,
                        });
                    }
                    Err(e) => {
                        forget(api, &form.id, &stored).await;
                        return Err(crate::error::status(e));
                    }
                }
            }
            let request = sent.request(pb::SubmitDeliverableRequest {
                transition_id: form.id.clone(),
                deliverable_id: form.node.clone(),
                evidence: Some(pb::Evidence {
                    links,
                    text: form.text.clone(),
                    attachments,
                }),
            });
            let submitted = TransitionService::submit_deliverable(api, request)
                .await
                .map(drop);
            if submitted.is_err() {
                forget(api, &form.id, &stored).await;
            }
            submitted
        })
    })
    .await
}

/// Removes the files `stored` for transition `id` (a refused submission's).
async fn forget(api: &crate::services::Api, id: &str, stored: &[String]) {
    for sha256 in stored {
        if let Err(e) = api.store().remove_attachment(id, sha256).await {
            tracing::warn!(transition = id, sha256, error = %e, "an uploaded file of a refused submission stays stored");
        }
    }
}

/// The prefix of an uploaded file's uri in the evidence: `opsgate:attachments/SHA256/NAME`,
/// downloaded at `/transitions/ID/attachments/SHA256`.
pub(crate) const ATTACHMENT_URI: &str = "opsgate:attachments/";

/// The evidence uri of the uploaded file `name` with `sha256`: the name kept to letters,
/// digits, `.`, `-` and `_` (a uri has no spaces).
fn attachment_uri(sha256: &str, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    format!("{ATTACHMENT_URI}{sha256}/{safe}")
}

/// The SHA-256 and file name of an evidence uri naming an uploaded file.
pub(crate) fn uploaded(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix(ATTACHMENT_URI)?;
    let (sha256, name) = rest.split_once('/').unwrap_or((rest, "file"));
    (sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit())).then_some((sha256, name))
}

pub(crate) async fn review(
    State(web): State<Web>,
    Path(id): Path<String>,
    headers: super::Seen,
    body: Bytes,
) -> Response {
    act(&web, REVIEW, &id, &headers, body, |api, form, sent| {
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
    act(&web, ACCEPT, &id, &headers, body, |api, form, sent| {
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
    /// Files uploaded with a submission.
    files: Vec<Upload>,
    /// Who acts (whom an uploaded file is recorded as from).
    by: opsgate_domain::Actor,
}

/// A file uploaded with the submit form.
pub(crate) struct Upload {
    /// Its name without any directory.
    name: String,
    content_type: String,
    content: Bytes,
}

/// Most files one submission uploads.
const MAX_FILES: usize = 10;
/// Largest submit request: up to four files of the largest size, and the form.
pub(crate) const MAX_UPLOAD: usize = 4 * opsgate_store::MAX_ATTACHMENT_BYTES + MAX_FORM;

/// The fields of a form, `application/x-www-form-urlencoded` or (the submit form, with files)
/// `multipart/form-data`, and its files; or the status and message to refuse it with.
async fn read_form(
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(Vec<(String, String)>, Vec<Upload>), (StatusCode, String)> {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Ok(boundary) = multer::parse_boundary(kind) else {
        if body.len() > MAX_FORM {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large.".into(),
            ));
        }
        return serde_urlencoded::from_bytes(&body)
            .map(|pairs| (pairs, Vec::new()))
            .map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("The form could not be read: {e}"),
                )
            });
    };
    let limits = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(MAX_UPLOAD as u64)
            .per_field(opsgate_store::MAX_ATTACHMENT_BYTES as u64),
    );
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut parts = multer::Multipart::with_constraints(stream, boundary, limits);
    let unread = |e: multer::Error| match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "A file is larger than {} MiB, or the files together larger than {} MiB.",
                opsgate_store::MAX_ATTACHMENT_BYTES / (1024 * 1024),
                MAX_UPLOAD / (1024 * 1024)
            ),
        ),
        e => (
            StatusCode::BAD_REQUEST,
            format!("The form could not be read: {e}"),
        ),
    };
    let (mut pairs, mut files, mut text) = (Vec::new(), Vec::new(), 0usize);
    while let Some(field) = parts.next_field().await.map_err(unread)? {
        let name = field.name().unwrap_or_default().to_owned();
        match field.file_name().map(base_name) {
            Some(file_name) => {
                let content_type = field
                    .content_type()
                    .map_or("application/octet-stream".to_owned(), ToString::to_string);
                let content = field.bytes().await.map_err(unread)?;
                // A file input left empty still sends a part, without a name or bytes.
                if name != "file" || (file_name.is_empty() && content.is_empty()) {
                    continue;
                }
                if files.len() == MAX_FILES {
                    return Err((
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("At most {MAX_FILES} files at once."),
                    ));
                }
                files.push(Upload {
                    name: if file_name.is_empty() {
                        "file".to_owned()
                    } else {
                        file_name
                    },
                    content_type,
                    content,
                });
            }
            None => {
                let value = field.text().await.map_err(unread)?;
                text += name.len() + value.len();
                if text > MAX_FORM {
                    return Err((
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "The form is too large.".into(),
                    ));
                }
                pairs.push((name, value));
            }
        }
    }
    Ok((pairs, files))
}

/// An uploaded file's name without the directory some browsers send, control characters or
/// more than 200 characters.
fn base_name(name: &str) -> String {
    name.rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
}

pub(crate) async fn waive(
    State(web): State<Web>,
    Path(id): Path<String>,
    headers: super::Seen,
    body: Bytes,
) -> Response {
    act(&web, WAIVE, &id, &headers, body, |api, form, sent| {
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
    act(&web, SIGN_OFF, &id, &headers, body, |api, form, sent| {
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
    act(&web, REJECT, &id, &headers, body, |api, form, sent| {
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
    body: Bytes,
    call: F,
) -> Response
where
    F: for<'a> FnOnce(&'a crate::services::Api, &'a Acted, Sent) -> Call<'a>,
{
    // Every field as sent (`reopen` repeats), then the named ones.
    let (pairs, files) = match read_form(headers, body).await {
        Ok(read) => read,
        Err((status, message)) => return refused(status, None, id, &message),
    };
    let form: ActionForm = match serde_urlencoded::to_string(&pairs)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_urlencoded::from_str(&text).map_err(|e| e.to_string()))
    {
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
    // A change always has someone acting (the table's row names roles).
    let Some(by) = who.map(|w| w.actor.clone()) else {
        return refused(
            StatusCode::UNAUTHORIZED,
            None,
            id,
            "Sign in to act on this page.",
        );
    };
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
        files,
        by,
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
