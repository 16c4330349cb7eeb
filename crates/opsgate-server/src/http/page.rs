//! What every web page shares: escaping, the layout (header, navigation, the one vendored style
//! sheet), the security headers (a Content-Security-Policy without inline script, no framing),
//! and who is looking (an API token from the `Authorization` header or the session cookie that
//! `/signin` sets; on a development server, nobody needs one to read).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Web;
use crate::auth::Caller;

/// The session cookie: the API token a person signed in with (`HttpOnly`, `Secure`,
/// `SameSite=Strict`).
pub(crate) const SESSION: &str = "opsgate_session";

/// `text` safe inside HTML text and attribute values.
pub(crate) fn esc(text: &str) -> String {
    opsgate_domain::docs::html_escape(text)
}

/// `text` as one path segment of a URL.
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A whole page: `title`, then `body` (already escaped HTML), for `who` (the signed-in person).
pub(crate) fn layout(title: &str, who: Option<&Caller>, body: &str) -> Response {
    layout_live(title, who, body, None)
}

/// [`layout`] for a page that follows its subject: `live` is the address of its event stream.
pub(crate) fn layout_live(
    title: &str,
    who: Option<&Caller>,
    body: &str,
    live: Option<&str>,
) -> Response {
    let who = match who {
        Some(c) => format!(
            "<span class=\"who\">{}</span> <form method=\"post\" action=\"/signout\" \
             class=\"inline\"><button type=\"submit\" class=\"link\">Sign out</button></form>",
            esc(&c.actor.to_string())
        ),
        None => "<a href=\"/signin\">Sign in</a>".to_owned(),
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · opsgate</title><link rel=\"stylesheet\" href=\"/static/opsgate.css\">\
         <script src=\"/static/opsgate.js\" defer></script></head><body><header><a class=\"brand\" href=\"/\">opsgate</a><nav>\
         <a href=\"/\">Board</a><a href=\"/me\">My work</a><a href=\"/stalled\">Stalled</a><a href=\"/workflows\">Workflows</a></nav><div class=\"session\">{who}</div></header>\
         <main{live}>{body}</main></body></html>\n",
        title = esc(title),
        live = live
            .map(|l| format!(" data-live=\"{}\"", esc(l)))
            .unwrap_or_default(),
    );
    with_headers(StatusCode::OK, html)
}

/// An error page with `status` and a message a person can act on.
pub(crate) fn problem(status: StatusCode, who: Option<&Caller>, message: &str) -> Response {
    let mut response = layout(
        status.canonical_reason().unwrap_or("Error"),
        who,
        &format!(
            "<h1>{}</h1><p class=\"problem\">{}</p>",
            esc(status.canonical_reason().unwrap_or("Error")),
            esc(message)
        ),
    );
    *response.status_mut() = status;
    response
}

/// `html` with the headers every page carries.
pub(crate) fn with_headers(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(headers);
    response
}

/// The security headers: no script or style from anywhere but here and nothing inline, no
/// framing, no type sniffing, no referrer leaving the site, nothing cached.
pub(crate) fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The value of cookie `name` in `headers`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

impl Web {
    /// Who is looking at page `route`: the `Authorization` header, else the session cookie, else
    /// the person a trusted SSO proxy names, as the gRPC API decides it; a refusal is the page to answer with (401 leads to sign-in).
    pub(crate) async fn viewer(
        &self,
        seen: &super::Seen,
        route: &str,
    ) -> Result<Option<Caller>, Response> {
        let mut seen = seen.clone();
        if !seen.headers.contains_key(header::AUTHORIZATION)
            && let Some(token) = cookie(&seen.headers, SESSION)
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            seen.headers.insert(header::AUTHORIZATION, value);
        }
        // The development header says who acts, not who reads: a page shows it as the viewer.
        match self.caller(&seen, route).await {
            Ok(caller) => Ok(caller),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                let mut response = problem(
                    StatusCode::UNAUTHORIZED,
                    None,
                    "Sign in with your opsgate API token to see this page.",
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"opsgate\""),
                );
                Err(response)
            }
            Err(status) => Err(problem(StatusCode::FORBIDDEN, None, status.message())),
        }
    }
}

impl Web {
    /// Transition `id` if `who` may read it (as `GetTransition` decides), or the page saying why
    /// not: 404 for an address that names no transition, 403 for one they may not read.
    pub(crate) async fn readable(
        &self,
        who: Option<&Caller>,
        id: &str,
    ) -> Result<opsgate_store::TransitionView, Response> {
        if crate::services::transition_id("id", id).is_err() {
            return Err(problem(
                StatusCode::NOT_FOUND,
                who,
                "There is no transition at this address: a transition's address ends in its id.",
            ));
        }
        let view = match self.api.store().get_transition(id).await {
            Ok(view) => view,
            Err(e) => {
                let s = crate::error::status(e);
                let message = if s.code() == tonic::Code::NotFound {
                    format!("No transition {id}.")
                } else {
                    s.message().to_owned()
                };
                return Err(problem(
                    super::connect::http_status(s.code()),
                    who,
                    &message,
                ));
            }
        };
        if let Err(s) = self.api.may_read(who, &view).await {
            return Err(problem(StatusCode::FORBIDDEN, who, s.message()));
        }
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped_and_cookies_are_found_by_name() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(segment("payroll 2.0/x"), "payroll%202.0%2Fx");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; opsgate_session=og_abc; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION), Some("og_abc"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
