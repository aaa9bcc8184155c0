//! The operator console's security at the HTTP level, in process: the login form
//! exchanges an operator's or auditor's token for a `HttpOnly; Secure; SameSite=Strict`
//! cookie (an agent's is refused), every console response carries the strict CSP and
//! frame headers, a state-changing request needs this origin and the session's CSRF
//! token and an operator, sessions expire and end at logout, and every refusal is in
//! the audit log. The browser tests (`server/console-tests/`) drive the page itself.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use agentpolicy_runtime::audit::{AuditLog, Durability, read_records};
use agentpolicy_runtime::engine::SystemClock;
use agentpolicy_runtime::*;
use agentpolicy_server::{Limits, ServeConfig, Service, Tokens, hash_token};

fn table() -> DecisionTable {
    let mut data = TableData {
        format_version: FORMAT_VERSION,
        ..TableData::default()
    };
    data.files.push("t.agentpolicy".into());
    data.tools.push(Tool {
        name: "search".into(),
        params: vec![],
        effects: vec![],
        reads: vec![],
        writes: vec![],
    });
    data.agents.push(Agent {
        name: "intake".into(),
        owner: None,
        mode: Mode::Enforce,
        max_tier: None,
        limits: vec![],
        breakers: vec![],
    });
    data.rules.push(Rule {
        id: "intake/allow/search#1".into(),
        agent: AgentId(0),
        kind: RuleKind::Allow,
        target: Target::Tool(ToolId(0)),
        route: None,
        span: Span::default(),
    });
    data.cells.push(Cell {
        granted: true,
        allow: vec![Entry {
            rule: RuleIndex(0),
            condition: None,
        }],
        ..Cell::default()
    });
    DecisionTable::new(data).expect("a valid table")
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut extra = String::new();
    for (k, v) in headers {
        extra.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// Logs in with `token`; the cookie (`name=value`) when it was given one.
fn login(port: u16, token: &str) -> (Reply, Option<String>) {
    let origin = format!("http://127.0.0.1:{port}");
    let r = http(
        port,
        "POST",
        "/console/login",
        &[FORM, ("Origin", &origin)],
        &format!("token={token}"),
    );
    let cookie = r
        .header("set-cookie")
        .and_then(|c| c.split(';').next().map(str::to_owned));
    (r, cookie)
}

fn csrf(port: u16, cookie: &str) -> String {
    let r = http(port, "GET", "/console/api/me", &[("Cookie", cookie)], "");
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    v["csrf"].as_str().expect("a csrf token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_cookies_csrf_and_headers() {
    let dir = std::env::temp_dir().join(format!("agentpolicy-console-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log_path = dir.join("audit.jsonl");
    let log = AuditLog::open(&log_path, Durability::default(), &SystemClock).expect("log");
    let tokens = Tokens::parse(&format!(
        r#"{{"tokens": [
          {{"name": "bot", "sha256": "{}", "role": "agent", "agents": ["intake"]}},
          {{"name": "ops", "sha256": "{}", "role": "operator", "agents": ["*"], "routes": ["*"]}},
          {{"name": "audit", "sha256": "{}", "role": "auditor"}}
        ]}}"#,
        hash_token("bot-token"),
        hash_token("ops-token"),
        hash_token("audit-token")
    ))
    .expect("tokens");
    let service = Service::start(ServeConfig {
        table: table(),
        reload: Box::new(|| Err("no reload in this test".into())),
        audit: Some(log),
        tokens,
        limits: Limits {
            console_idle: Duration::from_millis(1500),
            ..Limits::default()
        },
        housekeeping: Duration::from_secs(1),
        webhooks: None,
        state: None,
        replica: None,
    })
    .expect("start");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(service.serve(listener, async {
        let _ = stopped.await;
    }));

    let checks = tokio::task::spawn_blocking(move || {
        let origin = format!("http://127.0.0.1:{port}");
        // Without a session the page sends the browser to the login form; both carry
        // the strict headers.
        let r = http(port, "GET", "/console", &[], "");
        assert_eq!(r.status, 303);
        assert_eq!(r.header("location").as_deref(), Some("/console/login"));
        let r = http(port, "GET", "/console/login", &[], "");
        assert_eq!(r.status, 200);
        let csp = r.header("content-security-policy").expect("a CSP");
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert!(
            r.body
                .contains(r#"<form method="post" action="/console/login""#)
        );
        assert!(!r.body.contains("<script"), "the login page runs no script");

        // An agent token never opens the console; an unknown token neither.
        let (r, cookie) = login(port, "bot-token");
        assert_eq!(r.status, 403);
        assert!(cookie.is_none());
        assert!(r.body.contains("agent token cannot open the console"));
        let (r, cookie) = login(port, "nobody");
        assert_eq!(r.status, 401);
        assert!(cookie.is_none());
        // A login posted from another site is refused before the token is looked at.
        let r = http(
            port,
            "POST",
            "/console/login",
            &[FORM, ("Origin", "http://evil.example")],
            "token=ops-token",
        );
        assert_eq!(r.status, 403);
        assert!(r.header("set-cookie").is_none());

        // An operator gets the cookie and the page.
        let (r, cookie) = login(port, "ops-token");
        assert_eq!(r.status, 303, "{}", r.body);
        let set = r.header("set-cookie").expect("a cookie");
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
            assert!(set.contains(attr), "{set}");
        }
        assert!(!set.contains("ops-token"));
        let cookie = cookie.expect("a cookie");
        let r = http(port, "GET", "/console", &[("Cookie", &cookie)], "");
        assert_eq!(r.status, 200);
        assert!(
            r.body
                .contains(r#"<script src="/console/assets/console.js""#)
        );
        assert!(r.header("content-security-policy").is_some());
        let r = http(port, "GET", "/console/assets/console.js", &[], "");
        assert_eq!(r.status, 200);
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("text/javascript"))
        );
        let token = csrf(port, &cookie);

        // The state answers with an ETag, and 304 while nothing changed.
        let r = http(
            port,
            "GET",
            "/console/api/state",
            &[("Cookie", &cookie)],
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let etag = r.header("etag").expect("an etag");
        let r = http(
            port,
            "GET",
            "/console/api/state",
            &[("Cookie", &cookie), ("If-None-Match", &etag)],
            "",
        );
        assert_eq!(r.status, 304);

        // State changes need this origin, the CSRF token and an operator.
        let kill = |headers: &[(&str, &str)]| {
            http(
                port,
                "POST",
                "/console/api/kill",
                headers,
                r#"{"agent": "intake"}"#,
            )
        };
        assert_eq!(
            kill(&[("Cookie", &cookie), ("X-CSRF-Token", &token)]).status,
            403
        );
        assert_eq!(
            kill(&[
                ("Cookie", &cookie),
                ("X-CSRF-Token", &token),
                ("Origin", "http://evil.example")
            ])
            .status,
            403
        );
        assert_eq!(
            kill(&[("Cookie", &cookie), ("Origin", &origin)]).status,
            403
        );
        assert_eq!(
            kill(&[
                ("Cookie", &cookie),
                ("Origin", &origin),
                ("X-CSRF-Token", &"0".repeat(64))
            ])
            .status,
            403
        );
        assert_eq!(
            kill(&[("Origin", &origin), ("X-CSRF-Token", &token)]).status,
            401
        );
        let ok = kill(&[
            ("Cookie", &cookie),
            ("Origin", &origin),
            ("X-CSRF-Token", &token),
        ]);
        assert_eq!(ok.status, 200, "{}", ok.body);
        assert!(ok.body.contains(r#""by":"ops""#), "{}", ok.body);

        // An auditor reads, but its POST is refused even with its own CSRF token.
        let (_, auditor) = login(port, "audit-token");
        let auditor = auditor.expect("an auditor cookie");
        let a_token = csrf(port, &auditor);
        let r = kill(&[
            ("Cookie", &auditor),
            ("Origin", &origin),
            ("X-CSRF-Token", &a_token),
        ]);
        assert_eq!(r.status, 403);
        assert!(r.body.contains("role `auditor`"), "{}", r.body);

        // Logout ends the session; the old cookie opens nothing.
        let r = http(
            port,
            "POST",
            "/console/logout",
            &[
                ("Cookie", &cookie),
                ("Origin", &origin),
                ("X-CSRF-Token", &token),
            ],
            "",
        );
        assert_eq!(r.status, 204);
        assert!(
            r.header("set-cookie")
                .is_some_and(|c| c.contains("Max-Age=0"))
        );
        assert_eq!(
            http(port, "GET", "/console/api/me", &[("Cookie", &cookie)], "").status,
            401
        );

        // An idle session expires.
        std::thread::sleep(Duration::from_millis(1700));
        let r = http(port, "GET", "/console/api/me", &[("Cookie", &auditor)], "");
        assert_eq!(r.status, 401);
        assert!(r.body.contains("expired"), "{}", r.body);
    })
    .await;
    let _ = stop.send(());
    let _ = served.await;
    checks.expect("the checks pass");

    // Every refusal is in the audit log, by whom and why.
    let records = read_records(std::io::BufReader::new(
        std::fs::File::open(&log_path).expect("the log"),
    ))
    .expect("records");
    let refusals: Vec<String> = records
        .iter()
        .filter(|r| r.kind == agentpolicy_runtime::audit::RecordKind::Refusal)
        .map(|r| {
            format!(
                "{}: {}",
                r.by.clone().unwrap_or_default(),
                r.detail.clone().unwrap_or_default()
            )
        })
        .collect();
    for want in [
        "bot: refused POST /console/login: an agent token may not open the operator console",
        "anonymous: refused POST /console/login: unknown token",
        "anonymous: refused POST /console/login: cross-site request",
        "ops: refused POST /console/api/kill: a state-changing console request without an `Origin` header",
        "ops: refused POST /console/api/kill: cross-site request: `Origin: http://evil.example`",
        "ops: refused POST /console/api/kill: the console's CSRF token is missing or wrong",
        "anonymous: refused POST /console/api/kill: no console session",
        "audit: refused POST /console/api/kill: role `auditor` may not do this",
        "anonymous: refused GET /console/api/me: the console session expired",
    ] {
        assert!(
            refusals.iter().any(|r| r.starts_with(want)),
            "missing refusal {want:?} in {refusals:#?}"
        );
    }
    let kills: Vec<_> = records
        .iter()
        .filter(|r| r.kind == agentpolicy_runtime::audit::RecordKind::Control && r.by.is_some())
        .collect();
    assert_eq!(kills.len(), 1, "only the operator's kill got through");
    assert_eq!(kills[0].by.as_deref(), Some("ops"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A matrix page as `agentpolicy matrix --format html` writes it, signing `hash`.
fn matrix_page(hash: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"agentpolicy-source-hash\" content=\"{hash}\">\n<title>Access-control matrix: t</title>\n\
<style>body {{ font-family: sans-serif }}</style>\n</head>\n<body>\n<h1>Matrix of {hash}</h1>\n</body>\n</html>\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_serves_the_signed_matrix_of_the_table_in_force_only() {
    use agentpolicy_server::console::matrix::SignedMatrix;

    let in_force = table().source_hash().to_string();
    let mut other = table().data().clone();
    other.source_hash = ContentHash::of(b"another policy");
    let other_hash = other.source_hash.to_string();
    assert_ne!(in_force, other_hash);
    let tokens = Tokens::parse(&format!(
        r#"{{"tokens": [
          {{"name": "ops", "sha256": "{}", "role": "operator", "agents": ["*"], "routes": ["*"]}},
          {{"name": "audit", "sha256": "{}", "role": "auditor"}}
        ]}}"#,
        hash_token("ops-token"),
        hash_token("audit-token")
    ))
    .expect("tokens");
    let start = |tokens: Tokens, other: TableData| {
        Service::start(ServeConfig {
            table: table(),
            reload: Box::new(move || DecisionTable::new(other.clone()).map_err(|e| e.to_string())),
            audit: None,
            tokens,
            limits: Limits::default(),
            housekeeping: Duration::from_secs(1),
            webhooks: None,
            state: None,
            replica: None,
        })
        .expect("start")
    };

    // Pages that are not a matrix of this table are refused at start, with the reason.
    let not_a_matrix = SignedMatrix::from_html("<html><body>hello</body></html>".into());
    assert!(
        not_a_matrix
            .as_ref()
            .is_err_and(|e| e.contains("names no source hash")),
        "{not_a_matrix:?}"
    );
    let wrong = SignedMatrix::from_html(matrix_page(&other_hash)).expect("a matrix page");
    let refused = start(tokens.clone(), other.clone()).with_matrix(wrong);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("but the table in force has")),
        "a matrix of another table must be refused"
    );

    let page = matrix_page(&in_force);
    let service = start(tokens, other)
        .with_matrix(SignedMatrix::from_html(page.clone()).expect("a matrix page"))
        .expect("the matrix of the table in force");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(service.serve(listener, async {
        let _ = stopped.await;
    }));

    let checks = tokio::task::spawn_blocking(move || {
        // No session: the login form, not the matrix.
        let r = http(port, "GET", "/console/matrix", &[], "");
        assert_eq!(r.status, 303);
        assert!(!r.body.contains("Matrix of"));

        // An auditor reads it, under a policy that runs no script at all.
        let (_, cookie) = login(port, "audit-token");
        let cookie = cookie.expect("a cookie");
        let r = http(port, "GET", "/console/matrix", &[("Cookie", &cookie)], "");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, page);
        let csp = r.header("content-security-policy").expect("a CSP");
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(!csp.contains("script-src"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let state = http(
            port,
            "GET",
            "/console/api/state",
            &[("Cookie", &cookie)],
            "",
        );
        let v: serde_json::Value = serde_json::from_str(&state.body).expect("JSON");
        assert_eq!(v["policy"]["matrix"], true, "{}", state.body);

        // After a reload to another policy the matrix no longer signs the table in force:
        // the console says it is stale instead of showing it.
        let r = http(
            port,
            "POST",
            "/v1/reload",
            &[("Authorization", "Bearer ops-token")],
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let r = http(port, "GET", "/console/matrix", &[("Cookie", &cookie)], "");
        assert_eq!(r.status, 409, "{}", r.body);
        assert!(r.body.contains("stale"), "{}", r.body);
        assert!(!r.body.contains("Matrix of"));
        let state = http(
            port,
            "GET",
            "/console/api/state",
            &[("Cookie", &cookie)],
            "",
        );
        let v: serde_json::Value = serde_json::from_str(&state.body).expect("JSON");
        assert_eq!(v["policy"]["matrix"], false, "{}", state.body);
    })
    .await;
    let _ = stop.send(());
    let _ = served.await;
    checks.expect("the checks passed");
}
