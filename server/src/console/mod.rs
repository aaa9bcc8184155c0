//! The operator console: a web page served under `/console` where operators answer
//! escalations, see the agents and stop or resume them, and auditors read the same
//! without any control. Plain HTML, one script and one style sheet, compiled into the
//! binary (`server/assets/`), no build step and nothing fetched from another origin.
//!
//! Security: a bearer token is pasted once into the login form (a POST) and exchanged
//! for a cookie session ([`session`]); agent tokens are refused. Every response carries
//! a strict Content-Security-Policy (`default-src 'self'`, no inline script or style,
//! `frame-ancestors 'none'`), `X-Frame-Options: DENY` and `nosniff`. Every
//! state-changing request must come from this origin (`Origin` matches `Host`) and carry
//! the session's CSRF token; an auditor's is refused whatever it carries. Every refusal
//! is audited as the API's are ([`crate::App::refuse`]). The JSON routes it uses
//! ([`api`]) are the page's, not part of the API contract (`docs/openapi.json`).
//!
//! Must not: take a token or a session id from a URL, answer a cross-origin
//! state-changing request, or act beyond the role and scope of the token that logged in.

mod api;
pub mod matrix;
pub mod session;
mod trail;

use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::auth::{Principal, Role};
use crate::reply::ApiError;
use crate::{App, Shared};
use session::{ConsoleSession, Sessions};

/// The console's state in the service.
#[derive(Debug)]
pub struct Console {
    pub sessions: Sessions,
    pub audit: trail::AuditView,
    /// The signed matrix given at start (`serve --matrix`), if any.
    pub matrix: std::sync::OnceLock<matrix::SignedMatrix>,
    lifetime: Duration,
}

impl Console {
    pub fn new(limits: &crate::Limits, audit: Option<std::path::PathBuf>) -> Console {
        Console {
            sessions: Sessions::new(limits.console_idle, limits.console_lifetime),
            audit: trail::AuditView::new(audit),
            matrix: std::sync::OnceLock::new(),
            lifetime: limits.console_lifetime,
        }
    }
}

const CONSOLE_HTML: &str = include_str!("../../assets/console.html");
const LOGIN_HTML: &str = include_str!("../../assets/login.html");
const CONSOLE_JS: &str = include_str!("../../assets/console.js");
const CONSOLE_CSS: &str = include_str!("../../assets/console.css");
const ICON_SVG: &str = include_str!("../../assets/icon.svg");

/// The largest login form read, in bytes.
const MAX_LOGIN_BODY: usize = 8 * 1024;

/// The policy every console response carries.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The console's routes, merged into the service's router.
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/assets/{file}", get(asset))
        .route("/console/matrix", get(matrix::page))
        .merge(api::router())
        .layer(middleware::map_response(secure_headers))
}

async fn secure_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    // The matrix page sets its own (its inline style sheet, no script at all).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A page of one heading and one paragraph, styled by the console's style sheet.
fn notice(title: &str, text: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{title}</title>\n<link rel=\"stylesheet\" href=\"/console/assets/console.css\">\n\
</head>\n<body>\n<main>\n<h1>{title}</h1>\n<p>{}</p>\n<p><a href=\"/console\">Back to the console</a></p>\n\
</main>\n</body>\n</html>\n",
        escape(text),
        title = escape(title)
    )
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// Text made safe to place in HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn login_with(status: StatusCode, message: &str) -> Response {
    let note = if message.is_empty() {
        String::new()
    } else {
        format!(
            r#"<p class="error" role="alert" id="login-error">{}</p>"#,
            escape(message)
        )
    };
    html(status, LOGIN_HTML.replace("<!--message-->", &note))
}

impl App {
    /// The console session of a request's cookie, or a 401 (audited) for `what`.
    pub(crate) fn console_session(
        &self,
        headers: &HeaderMap,
        what: &str,
    ) -> Result<ConsoleSession, ApiError> {
        let found = match session::cookie_value(headers) {
            Some(id) => self.console.sessions.find(&id),
            None => Err(session::Lookup::Missing),
        };
        found.map_err(|why| {
            self.refuse(
                &anonymous(),
                what,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                why.why(),
            )
        })
    }

    /// The session of a state-changing request: from this origin, carrying the
    /// session's CSRF token, by an operator. Each failure is a refusal, audited.
    pub(crate) fn console_actor(
        &self,
        headers: &HeaderMap,
        what: &str,
    ) -> Result<ConsoleSession, ApiError> {
        let s = self.console_session(headers, what)?;
        same_origin(headers).map_err(|why| self.forbid(&s.principal, what, &why))?;
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !session::same_secret(sent, &s.csrf) {
            return Err(self.forbid(
                &s.principal,
                what,
                "the console's CSRF token is missing or wrong",
            ));
        }
        if s.principal.role != Role::Operator {
            let why = format!(
                "role `{}` may not do this (allowed: operator)",
                s.principal.role.keyword()
            );
            return Err(self.forbid(&s.principal, what, &why));
        }
        Ok(s)
    }
}

/// Who a refusal names before anyone is known.
fn anonymous() -> Principal {
    Principal {
        name: "anonymous".into(),
        role: Role::Auditor,
        agents: crate::auth::Scope::default(),
        routes: crate::auth::Scope::default(),
    }
}

/// A state-changing request must say it comes from this console's origin: `Origin`
/// names the `Host` it was sent to (over http or https), and `Sec-Fetch-Site`, when the
/// browser sends it, is `same-origin`.
fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = get("host").unwrap_or_default();
    let Some(origin) = get("origin") else {
        return Err("a state-changing console request without an `Origin` header".into());
    };
    let matches = ["http://", "https://"]
        .iter()
        .any(|scheme| origin.strip_prefix(scheme) == Some(host));
    if host.is_empty() || !matches {
        return Err(format!(
            "cross-site request: `Origin: {origin}` is not this console's origin"
        ));
    }
    if let Some(site) = get("sec-fetch-site")
        && site != "same-origin"
    {
        return Err(format!("cross-site request: `Sec-Fetch-Site: {site}`"));
    }
    Ok(())
}

/// The console, or the login page when there is no session.
async fn page(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let live =
        session::cookie_value(&headers).is_some_and(|id| app.console.sessions.find(&id).is_ok());
    if live {
        html(StatusCode::OK, CONSOLE_HTML.to_owned())
    } else {
        redirect("/console/login")
    }
}

async fn login_page() -> Response {
    login_with(StatusCode::OK, "")
}

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (kind, body) = match file.as_str() {
        "console.js" => ("text/javascript; charset=utf-8", CONSOLE_JS),
        "console.css" => ("text/css; charset=utf-8", CONSOLE_CSS),
        "icon.svg" => ("image/svg+xml", ICON_SVG),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The value of `name` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))?
    })
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let pair = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(pair, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Exchanges a pasted token for a console session. The token arrives in the body of a
/// same-origin POST only; an agent token is refused, as is every failure, audited.
async fn login(State(app): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let what = "POST /console/login";
    if let Err(why) = same_origin(&headers) {
        let e = app.refuse(&anonymous(), what, StatusCode::FORBIDDEN, "forbidden", &why);
        return login_with(
            e.status,
            "This request did not come from the console's own page.",
        );
    }
    let Ok(body) = to_bytes(body, MAX_LOGIN_BODY).await else {
        return login_with(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("The form is larger than {MAX_LOGIN_BODY} bytes."),
        );
    };
    let token = form_field(&body, "token").unwrap_or_default();
    let token = token.trim();
    let principal = if token.is_empty() {
        None
    } else {
        app.tokens.find(token).cloned()
    };
    let Some(principal) = principal else {
        let why = if token.is_empty() {
            "no token in the login form"
        } else {
            "unknown token"
        };
        let e = app.refuse(
            &anonymous(),
            what,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            why,
        );
        return login_with(e.status, "That token is not in the service's tokens file.");
    };
    if principal.role == Role::Agent {
        let e = app.forbid(
            &principal,
            what,
            "an agent token may not open the operator console",
        );
        return login_with(
            e.status,
            "An agent token cannot open the console: use an operator or auditor token.",
        );
    }
    match app.console.sessions.create(principal) {
        Ok((id, _)) => {
            let cookie = session::set_cookie(&id, app.console.lifetime);
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, "/console".to_owned()),
                    (header::SET_COOKIE, cookie),
                ],
            )
                .into_response()
        }
        Err(why) => login_with(StatusCode::TOO_MANY_REQUESTS, &why),
    }
}

/// Ends the session (same-origin, with its CSRF token, any role) and clears the cookie.
async fn logout(State(app): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    let what = "POST /console/logout";
    let s = app.console_session(&headers, what)?;
    same_origin(&headers).map_err(|why| app.forbid(&s.principal, what, &why))?;
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !session::same_secret(sent, &s.csrf) {
        return Err(app.forbid(
            &s.principal,
            what,
            "the console's CSRF token is missing or wrong",
        ));
    }
    if let Some(id) = session::cookie_value(&headers) {
        app.console.sessions.remove(&id);
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session::clear_cookie())],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_and_html_escapes() {
        assert_eq!(
            form_field(b"token=a%2Bb+c&x=1", "token").as_deref(),
            Some("a+b c")
        );
        assert_eq!(form_field(b"x=1", "token"), None);
        assert_eq!(form_field(b"token=%zz", "token"), None);
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn origins_must_match_the_host() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(
            same_origin(&h(&[
                ("host", "127.0.0.1:9"),
                ("origin", "http://127.0.0.1:9")
            ]))
            .is_ok()
        );
        assert!(
            same_origin(&h(&[
                ("host", "a.example"),
                ("origin", "https://a.example")
            ]))
            .is_ok()
        );
        assert!(same_origin(&h(&[("host", "127.0.0.1:9")])).is_err());
        assert!(
            same_origin(&h(&[
                ("host", "127.0.0.1:9"),
                ("origin", "http://evil.example")
            ]))
            .is_err()
        );
        assert!(
            same_origin(&h(&[
                ("host", "127.0.0.1:9"),
                ("origin", "http://127.0.0.1:9.evil")
            ]))
            .is_err()
        );
        assert!(
            same_origin(&h(&[
                ("host", "127.0.0.1:9"),
                ("origin", "http://127.0.0.1:9"),
                ("sec-fetch-site", "cross-site")
            ]))
            .is_err()
        );
    }
}
