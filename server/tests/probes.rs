//! The probes and failing closed, in process: a service whose audit log stops taking
//! records is not ready (503), keeps refusing what it must refuse (401 even though the
//! refusal cannot be recorded), and denies every decision; `/healthz` still answers.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use agentpolicy_runtime::audit::{AuditLog, Durability, GENESIS, LogSink};
use agentpolicy_runtime::*;
use agentpolicy_server::{Limits, ServeConfig, Service, Tokens, hash_token};

/// A disk that takes `writes_left` writes, then fails every one.
#[derive(Debug)]
struct BrokenDisk {
    writes_left: usize,
}

impl LogSink for BrokenDisk {
    fn write_all(&mut self, _: &[u8]) -> std::io::Result<()> {
        if self.writes_left == 0 {
            return Err(std::io::Error::other("no space left on device"));
        }
        self.writes_left -= 1;
        Ok(())
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One agent, `intake`, allowed the one tool `search`.
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

fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    let body = raw.split_once("\r\n\r\n").expect("a head").1.to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_audit_log_makes_the_service_not_ready_and_every_decision_a_deny() {
    let tokens = Tokens::parse(&format!(
        r#"{{"tokens": [
          {{"name": "bot", "sha256": "{}", "role": "agent", "agents": ["intake"]}},
          {{"name": "ops", "sha256": "{}", "role": "operator", "agents": ["*"], "routes": ["*"]}}
        ]}}"#,
        hash_token("bot-token"),
        hash_token("ops-token")
    ))
    .unwrap();
    // The engine's start record and the session's record get through; then the disk
    // fails.
    let log = AuditLog::with_sink(
        Box::new(BrokenDisk { writes_left: 2 }),
        Durability::default(),
        1,
        GENESIS,
    );
    let service = Service::start(ServeConfig {
        table: table(),
        reload: Box::new(|| Err("no reload in this test".into())),
        audit: Some(log),
        tokens,
        limits: Limits::default(),
        housekeeping: Duration::from_secs(1),
        webhooks: None,
        state: None,
        replica: None,
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(service.serve(listener, async {
        let _ = stopped.await;
    }));

    let checks = tokio::task::spawn_blocking(move || {
        let (status, body) = http(port, "GET", "/readyz", Some("ops-token"), "");
        assert_eq!(status, 200, "{body}");
        let (status, body) = http(
            port,
            "POST",
            "/v1/sessions",
            Some("bot-token"),
            r#"{"agent": "intake"}"#,
        );
        assert_eq!(status, 200, "{body}");
        // The first decision's record is the write that fails: denied, reason internal.
        let (status, body) = http(
            port,
            "POST",
            "/v1/sessions/s1/decide",
            Some("bot-token"),
            r#"{"tool": "search"}"#,
        );
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["outcome"], "deny", "{v}");
        assert_eq!(v["reason"], "internal", "{v}");
        let (status, body) = http(port, "GET", "/readyz", Some("ops-token"), "");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("audit log cannot be written"), "{body}");
        // Refusals still refuse, though they can no longer be recorded.
        let (status, _) = http(port, "POST", "/v1/kill", None, "{}");
        assert_eq!(status, 401);
        let (status, _) = http(port, "POST", "/v1/kill", Some("bot-token"), "{}");
        assert_eq!(status, 403);
        let (status, _) = http(port, "GET", "/healthz", Some("ops-token"), "");
        assert_eq!(status, 200);
        let (_, body) = http(port, "GET", "/v1/status", Some("ops-token"), "");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["audit"]["failure"]
                .as_str()
                .is_some_and(|f| f.contains("no space")),
            "{v}"
        );
    })
    .await;
    let _ = stop.send(());
    let served = served.await.unwrap();
    checks.unwrap();
    // Closing a failed log is not attempted (`Engine::shutdown` skips it): no error.
    assert_eq!(served, Ok(()));
}
