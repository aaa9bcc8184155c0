//! Several `agentpolicy serve` replicas sharing their state through a real
//! `redis-server` (`--state redis://…`, docs/scaling.md): each test starts its own
//! Redis on a free loopback port in a directory of its own, and two replicas of the real
//! binary on it, and checks that they act as one engine: a per-task limit exact across
//! replicas under concurrent clients, the kill switch, taint, Redis dying and coming
//! back with its state, a replica dying with its audit chain intact.
//!
//! Needs `redis-server` on PATH (Debian package `redis-server`; `.ci/run` installs it).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod support;

#[path = "support/service.rs"]
mod service;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use service::{Server, path_str, verify_passes};
use support::temp_dir;

const AGENT: &str = "shared-agent-secret";
const OPERATOR: &str = "shared-operator-secret";

/// A worker with a per-task limit, an untrusted resource (reading it taints) and an
/// external tool a tainted session may not call.
const POLICY: &str = r#"policy shared_state version "1"

use std.common

resource pages { tier public untrusted }
tool browse(url: text) { effect read reads pages }
tool search(q: text) { effect read }
tool post(body: text) { effect external }
tool pay(body: text) { effect external }

escalation treasury {
  notify "queue:treasury"
  timeout 2h then deny
}

agent worker {
  owner "ops@example.com"
  limit LIMIT calls per task
  allow browse
  allow search
  allow post
  escalate pay to treasury
  deny * when tainted and effect external
}
"#;

/// A `redis-server` of the test's own, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    /// Starts Redis on a free port with its data in `dir`; `persist` turns on the
    /// append-only file, fsynced on every write.
    fn start(dir: &Path, persist: bool) -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Redis::start_on(dir, port, persist)
    }

    fn start_on(dir: &Path, port: u16, persist: bool) -> Redis {
        std::fs::create_dir_all(dir).expect("redis dir");
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            path_str(dir),
            "--save",
            "",
            "--daemonize",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if persist {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        } else {
            args.extend(["--appendonly", "no"].map(String::from));
        }
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (Debian package `redis-server`; .ci/run installs it)");
        let redis = Redis {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis.answers() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 64];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// SIGKILL: no save, no goodbye.
    fn kill(mut self) -> (u16, PathBuf) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.port, self.dir.clone())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two replicas (or more) on one Redis, each in its own directory with its own audit log.
fn replicas(name: &str, redis: &Redis, limit: u64, n: usize) -> Vec<Server> {
    let root = temp_dir(name);
    let policy = root.join("shared.agentpolicy");
    std::fs::write(&policy, POLICY.replace("LIMIT", &limit.to_string())).expect("policy");
    let hash = agentpolicy_server::hash_token;
    let tokens = json!({ "tokens": [
        { "name": "workers", "sha256": hash(AGENT), "role": "agent", "agents": ["worker"] },
        { "name": "oncall", "sha256": hash(OPERATOR), "role": "operator",
          "agents": ["*"], "routes": ["*"] },
    ]});
    let url = redis.url();
    (0..n)
        .map(|i| {
            let dir = root.join(format!("replica-{i}"));
            std::fs::create_dir_all(&dir).expect("replica dir");
            std::fs::write(dir.join("tokens.json"), tokens.to_string()).expect("tokens");
            let id = format!("replica-{i}");
            Server::start_in(
                &dir,
                &[
                    "--policy",
                    path_str(&policy),
                    "--state",
                    &url,
                    "--replica-id",
                    &id,
                    "--durability",
                    "os-buffered",
                ],
            )
        })
        .collect()
}

fn open(s: &Server) -> String {
    let r = s.post("/v1/sessions", AGENT, json!({ "agent": "worker" }));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["session"].as_str().expect("session").to_owned()
}

fn decide(s: &Server, session: &str, tool: &str) -> Value {
    let arg = match tool {
        "browse" => json!({ "url": "https://example.com" }),
        "post" | "pay" => json!({ "body": "hello" }),
        _ => json!({ "q": "x" }),
    };
    let r = s.post(
        &format!("/v1/sessions/{session}/decide"),
        AGENT,
        json!({ "tool": tool, "args": arg }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn a_per_task_limit_is_exact_across_replicas_under_concurrent_clients() {
    let redis = Redis::start(&temp_dir("limit-redis"), false);
    let limit = 20;
    let servers = replicas("limit", &redis, limit, 2);
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    let session = open(&servers[0]);
    // Five tasks in a row, each hammered by 8 clients over both replicas: exactly
    // `limit` calls are allowed in each, the rest denied by the limit.
    for task in 1..=5 {
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let session = session.clone();
                let ports = ports.clone();
                std::thread::spawn(move || {
                    let mut outcomes = Vec::new();
                    for i in 0..8 {
                        let port = ports[(c + i) % ports.len()];
                        let r = service::http(
                            port,
                            "POST",
                            &format!("/v1/sessions/{session}/decide"),
                            Some(AGENT),
                            Some(
                                json!({ "tool": "search", "args": { "q": "x" } })
                                    .to_string()
                                    .as_bytes(),
                            ),
                        );
                        assert_eq!(r.status, 200, "{}", r.body);
                        let v = r.json();
                        outcomes.push((
                            v["outcome"].as_str().unwrap_or("").to_owned(),
                            v["reason"].as_str().unwrap_or("").to_owned(),
                        ));
                    }
                    outcomes
                })
            })
            .collect();
        let outcomes: Vec<(String, String)> = clients
            .into_iter()
            .flat_map(|c| c.join().expect("client"))
            .collect();
        let allowed = outcomes.iter().filter(|(o, _)| o == "allow").count();
        assert_eq!(allowed as u64, limit, "task {task}: {outcomes:?}");
        assert!(
            outcomes.iter().all(|(o, r)| o == "allow" || r == "limit"),
            "task {task}: every deny is the limit's: {outcomes:?}"
        );
        // Both replicas see the same count; the next task starts from zero everywhere.
        for s in &servers {
            let state = s.get(&format!("/v1/sessions/{session}"), AGENT).json();
            assert_eq!(state["limits"][0]["used"], limit, "{state}");
            assert_eq!(state["calls"], 64 * task, "{state}");
        }
        let r = servers[1].post(&format!("/v1/sessions/{session}/tasks"), AGENT, json!({}));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    for s in servers {
        verify_passes(&s.stop());
    }
}

#[test]
fn a_kill_on_one_replica_denies_the_next_call_on_the_other() {
    let redis = Redis::start(&temp_dir("kill-redis"), false);
    let servers = replicas("kill", &redis, 1000, 2);
    let (a, b) = (&servers[0], &servers[1]);
    let session = open(a);
    assert_eq!(decide(b, &session, "search")["outcome"], "allow");
    let killed = Instant::now();
    let r = a.post("/v1/kill", OPERATOR, json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = decide(b, &session, "search");
    let delay = killed.elapsed();
    assert_eq!(v["outcome"], "deny", "{v}");
    assert_eq!(v["reason"], "suspended", "{v}");
    // Not a timing assertion: the kill is read from Redis by the very next decision,
    // so the delay is the kill's reply plus one decision. Printed for the record.
    eprintln!("kill on A to a deny on B: {delay:?}");
    // Lifted on B, lifted on A.
    let r = b.post("/v1/resume", OPERATOR, json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(decide(a, &session, "search")["outcome"], "allow");
    // One agent killed on B holds on A. Before any call on A, A's gauges learn it
    // from the event (pub/sub; the 1 s timer is the fallback): printed, not asserted.
    let killed = Instant::now();
    let r = b.post("/v1/kill", OPERATOR, json!({ "agent": "worker" }));
    assert_eq!(r.status, 200, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !a
        .get("/metrics", OPERATOR)
        .body
        .contains("agentpolicy_suspended{agent=\"worker\"} 1")
    {
        assert!(Instant::now() < deadline, "A never learnt of the kill on B");
        std::thread::sleep(Duration::from_millis(1));
    }
    eprintln!(
        "kill on B to A's gauges, no call in between (the event): {:?}",
        killed.elapsed()
    );
    assert_eq!(decide(a, &session, "search")["reason"], "suspended");
    let metrics = a.get("/metrics", OPERATOR);
    assert!(
        metrics
            .body
            .contains("agentpolicy_suspended{agent=\"worker\"} 1"),
        "A's gauges show the agent killed on B: {}",
        metrics.body
    );
}

#[test]
fn taint_from_an_untrusted_read_on_one_replica_applies_on_the_other() {
    let redis = Redis::start(&temp_dir("taint-redis"), false);
    let servers = replicas("taint", &redis, 1000, 2);
    let (a, b) = (&servers[0], &servers[1]);
    let session = open(a);
    assert_eq!(decide(b, &session, "post")["outcome"], "allow");
    assert_eq!(decide(a, &session, "browse")["outcome"], "allow");
    let v = decide(b, &session, "post");
    assert_eq!(v["outcome"], "deny", "{v}");
    assert_eq!(v["reason"], "rule", "{v}");
    let state = b.get(&format!("/v1/sessions/{session}"), AGENT).json();
    assert_eq!(state["tainted"], true, "{state}");
    assert_eq!(state["tier"], "public", "{state}");
}

#[test]
fn redis_killed_mid_load_denies_with_the_state_reason_and_comes_back_with_its_state() {
    let redis = Redis::start(&temp_dir("outage-redis"), true);
    let limit = 200;
    let servers = replicas("outage", &redis, limit, 2);
    let (a, b) = (&servers[0], &servers[1]);
    let session = open(a);
    assert_eq!(decide(a, &session, "browse")["outcome"], "allow");
    for s in [a, b] {
        assert_eq!(decide(s, &session, "search")["outcome"], "allow");
    }
    // Load on both replicas while Redis is SIGKILLed.
    let load: Vec<_> = [a.port, b.port]
        .into_iter()
        .map(|port| {
            let session = session.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..40 {
                    let r = service::http(
                        port,
                        "POST",
                        &format!("/v1/sessions/{session}/decide"),
                        Some(AGENT),
                        Some(br#"{"tool":"search","args":{"q":"x"}}"#),
                    );
                    seen.push((r.status, r.body));
                    std::thread::sleep(Duration::from_millis(5));
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(60));
    let (port, dir) = redis.kill();
    let seen: Vec<(u16, String)> = load
        .into_iter()
        .flat_map(|t| t.join().expect("load thread: no replica hung"))
        .collect();
    let allowed_under_load = seen
        .iter()
        .filter(|(s, b)| *s == 200 && b.contains(r#""outcome":"allow""#))
        .count();
    // Every answer is a decision (200) or, with Redis gone, a deny naming the store.
    for (status, body) in &seen {
        assert_eq!(*status, 200, "{body}");
        let v: Value = serde_json::from_str(body).expect("JSON");
        if v["outcome"] != "allow" {
            assert!(
                v["reason"] == "limit"
                    || (v["reason"] == "internal"
                        && v["explanation"]
                            .as_str()
                            .is_some_and(|e| e.contains("shared state store"))),
                "{v}"
            );
        }
    }
    let denied_by_the_store = seen
        .iter()
        .filter(|(_, b)| b.contains("shared state store"))
        .count();
    assert!(
        allowed_under_load > 0 && denied_by_the_store > 0,
        "Redis died mid-load: {allowed_under_load} allowed before, {denied_by_the_store} denied after"
    );
    // With Redis down: denied with the store's reason, not ready, nothing panicked.
    for s in [a, b] {
        let v = decide(s, &session, "search");
        assert_eq!(v["outcome"], "deny", "{v}");
        assert_eq!(v["reason"], "internal", "{v}");
        let why = v["explanation"].as_str().unwrap_or("");
        assert!(why.contains("shared state store is unavailable"), "{v}");
        assert!(why.contains("Redis at redis://127.0.0.1"), "{v}");
        let r = s.get("/readyz", OPERATOR);
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(r.body.contains("Redis"), "{}", r.body);
    }
    // A session neither replica has seen cannot be looked up: 503, saying why.
    let r = b.post(
        "/v1/sessions/s999/decide",
        AGENT,
        json!({ "tool": "search" }),
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("state_unavailable"), "{}", r.body);
    // Redis back on the same port with its append-only file: the session, its count
    // and its taint are there again, and the replicas serve without a restart.
    let _redis = Redis::start_on(&dir, port, true);
    for s in [a, b] {
        let r = s.get("/readyz", OPERATOR);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let state = b.get(&format!("/v1/sessions/{session}"), AGENT).json();
    assert_eq!(state["tainted"], true, "{state}");
    let used = state["limits"][0]["used"].as_u64().expect("used") as usize;
    // Every allowed call is counted. A commit Redis applied but whose answer was lost
    // when it died counts too, though its call was denied: the count errs on the safe
    // side, never below what was allowed.
    assert!(
        (3 + allowed_under_load..=3 + allowed_under_load + denied_by_the_store).contains(&used),
        "{used} used, {allowed_under_load} allowed under load: {state}"
    );
    let used = used as u64;
    assert_eq!(decide(a, &session, "post")["reason"], "rule", "taint holds");
    // The limit goes on from where it was: exactly `limit` in the task.
    let mut allowed = used;
    for i in 0..(limit - used + 10) {
        let v = decide(&servers[(i % 2) as usize], &session, "search");
        if v["outcome"] == "allow" {
            allowed += 1;
        } else {
            assert_eq!(v["reason"], "limit", "{v}");
        }
    }
    assert_eq!(allowed, limit);
}

#[test]
fn a_replica_killed_mid_load_leaves_a_chain_that_verifies_and_the_others_go_on() {
    let redis = Redis::start(&temp_dir("replica-redis"), false);
    let mut servers = replicas("replica", &redis, 100_000, 2);
    let b = servers.pop().expect("b");
    let a = servers.pop().expect("a");
    let session = open(&a);
    let b_port = b.port;
    let load = {
        let session = session.clone();
        std::thread::spawn(move || {
            let mut answered: Vec<u64> = Vec::new();
            for _ in 0..200 {
                match service::try_http(
                    b_port,
                    "POST",
                    &format!("/v1/sessions/{session}/decide"),
                    Some(AGENT),
                    Some(br#"{"tool":"search","args":{"q":"x"}}"#),
                ) {
                    Some(r) if r.status == 200 => {
                        answered.push(r.json()["call"].as_u64().unwrap_or(0))
                    }
                    _ => break,
                }
            }
            answered
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    let b_log = b.audit.clone();
    b.kill();
    let answered = load.join().expect("load");
    let answered_by_b = answered.len();
    assert!(answered_by_b > 0, "B answered calls before it died");
    let report = verify_passes(&b_log);
    assert_eq!(report["sealed"], false, "killed, not closed: {report}");
    // A goes on with the session, and counts B's calls.
    assert_eq!(decide(&a, &session, "search")["outcome"], "allow");
    let state = a.get(&format!("/v1/sessions/{session}"), AGENT).json();
    assert!(
        state["calls"].as_u64().expect("calls") > answered_by_b as u64,
        "{state}"
    );
    let a_decided = decide(&a, &session, "search");
    let a_log = a.stop();
    verify_passes(&a_log);
    // Both chains verify together, each its own, each naming its replica.
    let out = support::agentpolicy(&[
        "audit",
        "verify",
        path_str(&a_log),
        path_str(&b_log),
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(
        report["logs"][0]["replicas"],
        json!(["replica-0"]),
        "{report}"
    );
    assert_eq!(
        report["logs"][1]["replicas"],
        json!(["replica-1"]),
        "{report}"
    );
    // The merged query holds every decision either replica acknowledged, by time.
    let out = support::agentpolicy(&[
        "audit",
        "query",
        path_str(&a_log),
        path_str(&b_log),
        "--kind",
        "decision",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let records = merged["records"].as_array().expect("records");
    let times: Vec<i64> = records
        .iter()
        .map(|r| r["time_ms"].as_i64().unwrap_or(0))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "ordered by time: {times:?}"
    );
    let calls_of = |replica: &str| -> Vec<u64> {
        records
            .iter()
            .filter(|r| r["replica"] == replica)
            .map(|r| r["call"].as_u64().unwrap_or(0))
            .collect()
    };
    let b_calls = calls_of("replica-1");
    for call in &answered {
        assert!(
            b_calls.contains(call),
            "B acknowledged call {call}; merged: {b_calls:?}"
        );
    }
    let a_call = a_decided["call"].as_u64().expect("call");
    assert!(calls_of("replica-0").contains(&a_call), "{merged}");
    assert!(
        records
            .iter()
            .all(|r| r["log"] == path_str(&a_log) || r["log"] == path_str(&b_log))
    );
    // The same log twice, or two logs of one replica, are refused.
    let out = support::agentpolicy(&["audit", "query", path_str(&a_log), path_str(&a_log)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is given twice"));
    let copy = a_log.with_file_name("copy.jsonl");
    std::fs::copy(&a_log, &copy).expect("copy");
    let out = support::agentpolicy(&["audit", "verify", path_str(&a_log), path_str(&copy)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("both hold records of replica `replica-0`"),
        "{err}"
    );
}

#[test]
fn replica_ids_are_required_with_state_checked_and_tied_to_their_log() {
    let dir = temp_dir("replica-id");
    let policy = dir.join("shared.agentpolicy");
    std::fs::write(&policy, POLICY.replace("LIMIT", "10")).expect("policy");
    let tokens = dir.join("tokens.json");
    let hash = agentpolicy_server::hash_token;
    let list = json!({ "tokens": [
        { "name": "workers", "sha256": hash(AGENT), "role": "agent", "agents": ["worker"] },
    ]});
    std::fs::write(&tokens, list.to_string()).expect("tokens");
    let log = dir.join("audit.jsonl");
    let serve = |extra: &[&str]| {
        let mut args = vec![
            "serve",
            "--policy",
            path_str(&policy),
            "--tokens",
            path_str(&tokens),
            "--listen",
            "127.0.0.1:0",
            "--audit",
            path_str(&log),
        ];
        args.extend_from_slice(extra);
        support::agentpolicy(&args)
    };
    // --state without an id: refused before Redis is even asked.
    let out = serve(&["--state", "redis://127.0.0.1:1/0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--state needs --replica-id ID"), "{err}");
    let out = serve(&["--replica-id", "bad/id"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the replica id has `/` at byte 3"), "{err}");
    // A log written by replica `a` is refused to replica `b`.
    let a = Server::start_in(&dir, &["--policy", path_str(&policy), "--replica-id", "a"]);
    let session = open(&a);
    assert_eq!(decide(&a, &session, "search")["outcome"], "allow");
    let a_log = a.stop();
    let decisions = service::records(&a_log, "decision");
    assert!(
        decisions.iter().all(|r| r["replica"] == "a"),
        "{decisions:?}"
    );
    let out = serve(&["--replica-id", "b"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds records of replica `a`, but this replica is `b`"),
        "{err}"
    );
}

/// Raises an escalation on `a`; returns its id.
fn raise(a: &Server, session: &str) -> String {
    let v = decide(a, session, "pay");
    assert_eq!(v["outcome"], "escalate", "{v}");
    v["escalation"].as_str().expect("escalation id").to_owned()
}

/// The agent's long-poll wait on `port`, on a thread of its own.
fn wait_on(port: u16, id: &str) -> std::thread::JoinHandle<Value> {
    let path = format!("/v1/escalations/{id}/wait?timeout_ms=20000");
    std::thread::spawn(move || service::http(port, "GET", &path, Some(AGENT), None).json())
}

fn records_of(log: &Path, kind: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .expect("audit log")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["kind"] == kind)
        .collect()
}

#[test]
fn an_escalation_raised_on_one_replica_is_resolved_through_the_other_and_survives_redis() {
    let redis = Redis::start(&temp_dir("escalation-redis"), true);
    let servers = replicas("escalation", &redis, 1000, 2);
    let (a, b) = (&servers[0], &servers[1]);
    let session = open(a);

    // Approved through B, answered on A where the agent waits.
    let id = raise(a, &session);
    let listed = b.get("/v1/escalations", OPERATOR).json();
    let on_b = &listed["escalations"][0];
    assert_eq!(on_b["id"], id.as_str(), "{listed}");
    assert_eq!(
        (&on_b["tool"], &on_b["routes"][0]),
        (&json!("pay"), &json!("treasury"))
    );
    assert!(on_b["deadline_ms"].as_i64().is_some(), "{listed}");
    // No agent token resolves, on either replica.
    for s in [a, b] {
        let r = s.post(
            &format!("/v1/escalations/{id}/approve"),
            AGENT,
            json!({ "reason": "me" }),
        );
        assert_eq!(r.status, 403, "{}", r.body);
    }
    let waiting = wait_on(a.port, &id);
    std::thread::sleep(Duration::from_millis(200));
    let r = b.post(
        &format!("/v1/escalations/{id}/approve"),
        OPERATOR,
        json!({ "reason": "invoice checked" }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["outcome"], "allow", "{}", r.body);
    let answered = waiting.join().expect("wait");
    assert_eq!(answered["status"], "resolved", "{answered}");
    assert_eq!(answered["outcome"], "allow", "{answered}");
    // Resolved once: approving again, on either replica, is refused.
    for s in [a, b] {
        let r = s.post(
            &format!("/v1/escalations/{id}/approve"),
            OPERATOR,
            json!({ "reason": "again" }),
        );
        assert!(
            r.status == 404 || r.status == 409,
            "{} {}",
            r.status,
            r.body
        );
    }

    // Rejected through B: the agent on A gets deny.
    let id = raise(a, &session);
    let waiting = wait_on(a.port, &id);
    std::thread::sleep(Duration::from_millis(200));
    let r = b.post(
        &format!("/v1/escalations/{id}/reject"),
        OPERATOR,
        json!({ "reason": "not this month" }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["outcome"], "deny", "{}", r.body);
    assert_eq!(waiting.join().expect("wait")["outcome"], "deny");

    // Pending across a Redis SIGKILL and restart with its append-only file.
    let id = raise(a, &session);
    let (port, dir) = redis.kill();
    let r = b.get("/v1/escalations", OPERATOR);
    assert_eq!(r.status, 503, "{}", r.body);
    let _redis = Redis::start_on(&dir, port, true);
    let listed = b.get("/v1/escalations", OPERATOR).json();
    assert_eq!(listed["escalations"][0]["id"], id.as_str(), "{listed}");
    let waiting = wait_on(a.port, &id);
    std::thread::sleep(Duration::from_millis(200));
    // Redis fsyncs every write and the machine is shared: a first round trip may
    // outlast the 250 ms budget (503, saying so). Asked again until the claim is
    // made (200) or found made (the earlier claim went through: 404).
    let mut r = b.post(
        &format!("/v1/escalations/{id}/approve"),
        OPERATOR,
        json!({ "reason": "after the outage" }),
    );
    for _ in 0..20 {
        if r.status != 503 {
            break;
        }
        assert!(r.body.contains("state_unavailable"), "{}", r.body);
        std::thread::sleep(Duration::from_millis(100));
        r = b.post(
            &format!("/v1/escalations/{id}/approve"),
            OPERATOR,
            json!({ "reason": "after the outage" }),
        );
    }
    assert!(
        r.status == 200 || r.status == 404,
        "{} {}",
        r.status,
        r.body
    );
    let answered = waiting.join().expect("wait");
    assert_eq!(answered["outcome"], "allow", "{answered}");

    // Each resolution is audited once, by A (which holds the calls), none by B.
    let logs: Vec<PathBuf> = servers.into_iter().map(Server::stop).collect();
    let on_a = records_of(&logs[0], "resolution");
    assert_eq!(on_a.len(), 3, "{on_a:?}");
    assert!(records_of(&logs[1], "resolution").is_empty());
    for log in &logs {
        verify_passes(log);
    }
}

#[test]
fn a_reload_on_one_replica_makes_the_others_load_the_same_table() {
    let redis = Redis::start(&temp_dir("table-redis"), false);
    let servers = replicas("table", &redis, 1000, 2);
    let (a, b) = (&servers[0], &servers[1]);
    let session = open(a);
    assert_eq!(decide(b, &session, "search")["outcome"], "allow");
    let hash = |s: &Server| s.get("/v1/status", OPERATOR).json()["policy"]["source_hash"].clone();
    let before = hash(b);
    // Both replicas read the same policy file: changed, then reloaded on A only.
    let policy = std::env::temp_dir()
        .join(format!(
            "agentpolicy-{}-{}-table",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ))
        .join("shared.agentpolicy");
    let text = std::fs::read_to_string(&policy).expect("policy");
    std::fs::write(&policy, text.replace("allow search\n", "")).expect("policy");
    let reloaded = Instant::now();
    let r = a.post("/v1/reload", OPERATOR, json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["swapped"], true, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while hash(b) == before {
        assert!(Instant::now() < deadline, "B never followed A's reload");
        std::thread::sleep(Duration::from_millis(1));
    }
    eprintln!(
        "reload on A to B on the same table: {:?}",
        reloaded.elapsed()
    );
    assert_eq!(hash(a), hash(b));
    // The new table decides on both: search is no longer allowed.
    for s in [a, b] {
        let v = decide(s, &session, "search");
        assert_eq!(v["outcome"], "deny", "{v}");
        assert_ne!(v["reason"], "internal", "{v}");
    }
}
