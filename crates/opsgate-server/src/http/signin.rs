//! `/signin` and `/signout`: a person signs in with an opsgate API token (`opsgate token
//! create`), kept in an `HttpOnly`, `Secure`, `SameSite=Strict` session cookie for twelve hours;
//! the form is protected by a double-submit token (a cross-site form cannot send the cookie it
//! must match). Behind an SSO proxy nobody needs this page.

use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Web;
use super::page::{SESSION, cookie, esc, layout, secure};

/// The sign-in form's double-submit cookie.
const CSRF: &str = "opsgate_signin";
/// How long a session lasts.
const SESSION_SECONDS: u32 = 12 * 3600;
/// Longest token accepted (opsgate tokens are 67 characters; a CI platform's OIDC token more).
const MAX_TOKEN: usize = 8192;

fn form(csrf: &str, message: Option<&str>) -> String {
    format!(
        "<h1>Sign in</h1>{}<form class=\"signin\" method=\"post\" action=\"/signin\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label>API token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" \
         required placeholder=\"og_...\"></label><button type=\"submit\">Sign in</button>\
         <p class=\"meta\">Ask the SMO for a token (<code>opsgate token create --principal \
         \"Your Name\" --role ...</code>); it is kept in a cookie only this site can read.</p>\
         </form>",
        message
            .map(|m| format!("<p class=\"problem\" role=\"alert\">{}</p>", esc(m)))
            .unwrap_or_default(),
        esc(csrf)
    )
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub(crate) async fn show() -> Response {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return super::page::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "The system's random source failed; try again.",
        );
    }
    let csrf = opsgate_domain::hash::hex(&bytes);
    let mut response = layout("Sign in", None, &form(&csrf, None));
    set_cookie(
        &mut response,
        &format!("{CSRF}={csrf}; HttpOnly; Secure; SameSite=Strict; Path=/signin; Max-Age=3600"),
    );
    response
}

#[derive(serde::Deserialize)]
pub(crate) struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn submit(
    State(web): State<Web>,
    headers: HeaderMap,
    Form(input): Form<SignIn>,
) -> Response {
    let expected = cookie(&headers, CSRF).unwrap_or_default();
    if expected.is_empty() || expected != input.csrf {
        let mut response = layout(
            "Sign in",
            None,
            &form(
                expected,
                Some("The form expired or did not come from this site: sign in again."),
            ),
        );
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    }
    let token = input.token.trim();
    let refused = |message: &str| {
        let mut response = layout("Sign in", None, &form(expected, Some(message)));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response
    };
    if token.is_empty() || token.len() > MAX_TOKEN || token.contains([';', ',', ' ']) {
        return refused("Paste the whole API token (it starts with og_).");
    }
    let mut check = HeaderMap::new();
    match HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(v) => {
            check.insert(header::AUTHORIZATION, v);
        }
        Err(_) => return refused("That is not an API token."),
    }
    match web.viewer(&check.into(), super::board::ROUTE).await {
        Ok(Some(_)) => {}
        _ => return refused("That token is unknown, revoked or expired."),
    }
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    secure(response.headers_mut());
    set_cookie(
        &mut response,
        &format!(
            "{SESSION}={token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={SESSION_SECONDS}"
        ),
    );
    set_cookie(
        &mut response,
        &format!("{CSRF}=; HttpOnly; Secure; SameSite=Strict; Path=/signin; Max-Age=0"),
    );
    response
}

pub(crate) async fn sign_out() -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/signin")]).into_response();
    secure(response.headers_mut());
    set_cookie(
        &mut response,
        &format!("{SESSION}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}
