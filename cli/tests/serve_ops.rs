//! Running `agentpolicy serve`: it survives SIGKILL (a restart on the same audit log
//! resumes sessions with their bound matter and limits used, pending escalations and
//! the kill switch, and delivers the webhook notifications it owed); the crash test
//! kills it under load at random points, 20 times, and checks after each restart that
//! the log verifies, that every acknowledged decision is in it, and that sessions and
//! escalations are as the clients were told. Also: signed webhooks, hot reload on a
//! file change and SIGHUP, and a flood of refused requests audited without flooding
//! the log.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

#[path = "support/service.rs"]
mod service;
mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use service::{AGENT, OPERATOR, Server, try_http, verify_passes};
use support::temp_dir;

const LAW_FIRM: &[&str] = &["--policy", "examples/law_firm"];

fn open(s: &Server, agent: &str, matter: Option<&str>) -> String {
    let mut body = json!({ "agent": agent });
    if let Some(m) = matter {
        body["bind"] = json!({ "matter": m });
    }
    let r = s.post("/v1/sessions", AGENT, body);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["session"].as_str().expect("id").to_owned()
}

fn decide(s: &Server, session: &str, body: Value) -> Value {
    let r = s.post(&format!("/v1/sessions/{session}/decide"), AGENT, body);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn search(matter: &str) -> Value {
    json!({ "tool": "search_documents", "args": { "query": "indemnity cap" }, "confidence": 0.95,
            "read": { "resource": "matter_documents", "keys": { "matter": matter } } })
}

#[test]
fn a_restart_after_sigkill_resumes_sessions_escalations_and_the_kill_switch() {
    let dir = temp_dir("restart");
    let s = Server::start_in(&dir, LAW_FIRM);
    let sid = open(&s, "research", None);
    for _ in 0..3 {
        assert_eq!(decide(&s, &sid, search("M-1"))["outcome"], "allow");
    }
    let unsure = decide(
        &s,
        &sid,
        json!({ "tool": "search_case_law", "args": { "query": "x" }, "confidence": 0.5 }),
    );
    assert_eq!(unsure["outcome"], "escalate", "{unsure}");
    let escalation = unsure["escalation"].as_str().expect("id").to_owned();
    assert_eq!(
        s.post("/v1/kill", OPERATOR, json!({ "agent": "billing" }))
            .status,
        200
    );
    let before = s.get(&format!("/v1/sessions/{sid}"), AGENT).json();
    assert_eq!(before["bound"]["matter"], "M-1");
    s.kill();

    let s = Server::start_in(&dir, LAW_FIRM);
    let after = s.get(&format!("/v1/sessions/{sid}"), AGENT).json();
    assert_eq!(after, before, "the session as it was before the kill");
    let status = s.get("/v1/status", OPERATOR).json();
    assert_eq!(status["restored"]["pending_escalations"], 1, "{status}");
    assert_eq!(status["restored"]["killed"], json!(["billing"]), "{status}");
    // The matter stays bound: another matter's documents are refused.
    let other = decide(&s, &sid, search("M-2"));
    assert_eq!(other["outcome"], "deny", "{other}");
    assert_eq!(other["reason"], "flow", "{other}");
    // The kill switch still holds.
    let billing = open(&s, "billing", None);
    let v = decide(
        &s,
        &billing,
        json!({ "tool": "read_billing_history", "args": { "matter_code": "c1" }, "confidence": 0.99 }),
    );
    assert_eq!(v["reason"], "suspended", "{v}");
    // The escalation raised before the kill is approved after it, and the waiting agent
    // learns the answer.
    let r = s.post(
        &format!("/v1/escalations/{escalation}/approve"),
        OPERATOR,
        json!({ "reason": "checked after the restart" }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let waited = s
        .get(
            &format!("/v1/escalations/{escalation}/wait?timeout_ms=2000"),
            AGENT,
        )
        .json();
    assert_eq!(waited["status"], "resolved", "{waited}");
    // A new session does not reuse an id from before the kill.
    assert_ne!(open(&s, "research", None), sid);
    let log = s.stop();
    let report = verify_passes(&log);
    assert_eq!(report["sealed"], true, "{report}");
}

/// A request the receiver got: its headers (lower-case names) and body.
type Got = (HashMap<String, String>, String);

/// A webhook receiver on a loopback port: answers 200 and keeps each request's headers
/// (lower-case names) and body.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn start(listener: TcpListener) -> Receiver {
        let port = listener.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut headers = HashMap::new();
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                if let Ok(mut g) = sink.lock() {
                    g.push((headers, String::from_utf8_lossy(&body).into_owned()));
                }
            }
        });
        Receiver { port, got }
    }

    /// Waits until an event of `kind` arrived; returns its headers and body.
    fn wait_for(&self, kind: &str) -> (HashMap<String, String>, Value) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((h, b)) =
                self.got.lock().expect("lock").iter().find(|(h, _)| {
                    h.get("x-agentpolicy-event-type").map(String::as_str) == Some(kind)
                })
            {
                return (h.clone(), serde_json::from_str(b).expect("event JSON"));
            }
            assert!(Instant::now() < deadline, "no `{kind}` event arrived");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn raw_body(&self, kind: &str) -> String {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .find(|(h, _)| h.get("x-agentpolicy-event-type").map(String::as_str) == Some(kind))
            .map(|(_, b)| b.clone())
            .expect("event")
    }
}

const SECRET: &str = "whsec-0123456789abcdef0123456789";

fn write_config(dir: &std::path::Path, port: u16) -> String {
    std::fs::write(dir.join("hook.secret"), format!("{SECRET}\n")).expect("secret");
    let config = format!(
        "[notify]\nbreakers = [\"pager:on-call\"]\nbackoff_ms = 200\nmax_backoff_ms = 400\n\n[[notify.webhook]]\ntarget = \"queue:practice-support\"\nurl = \"http://127.0.0.1:{port}/hooks\"\nsecret_file = \"hook.secret\"\n\n[[notify.webhook]]\ntarget = \"pager:on-call\"\nurl = \"http://127.0.0.1:{port}/pager\"\nsecret_file = \"hook.secret\"\n"
    );
    let path = dir.join("serve.toml");
    std::fs::write(&path, config).expect("config");
    path.display().to_string()
}

/// Checks `t=…,v1=…` with Python's own `hmac` module: an implementation independent of
/// the server's.
fn signature_verifies(header: &str, body: &str) -> bool {
    let (t, v1) = header
        .split_once(",v1=")
        .map(|(t, v)| (t.trim_start_matches("t="), v))
        .expect("t=…,v1=…");
    let script = "import hmac,hashlib,sys\nkey,t,sig=sys.argv[1].encode(),sys.argv[2],sys.argv[3]\nbody=sys.stdin.buffer.read()\nmac=hmac.new(key,t.encode()+b'.'+body,hashlib.sha256).hexdigest()\nsys.exit(0 if hmac.compare_digest(mac,sig) else 1)";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, SECRET, t, v1])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write");
    child.wait().expect("python3").success()
}

#[test]
fn escalations_and_breaker_trips_are_signed_webhooks_delivered_even_across_a_sigkill() {
    let dir = temp_dir("webhooks");
    let receiver = Receiver::start(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let config = write_config(&dir, receiver.port);
    let mut args = LAW_FIRM.to_vec();
    args.extend(["--config", &config]);
    let s = Server::start_in(&dir, &args);
    let sid = open(&s, "research", None);
    let unsure = decide(
        &s,
        &sid,
        json!({ "tool": "search_case_law", "args": { "query": "x" }, "confidence": 0.5 }),
    );
    let (headers, event) = receiver.wait_for("escalation.raised");
    assert_eq!(event["escalation"]["id"], unsure["escalation"], "{event}");
    assert_eq!(event["target"], "queue:practice-support");
    assert_eq!(event["escalation"]["routes"], json!(["human_review"]));
    assert_eq!(
        headers.get("x-agentpolicy-event"),
        Some(&event["id"].as_str().expect("id").to_owned())
    );
    let signature = headers.get("x-agentpolicy-signature").expect("signed");
    assert!(signature_verifies(
        signature,
        &receiver.raw_body("escalation.raised")
    ));
    assert!(!signature_verifies(
        signature,
        &receiver
            .raw_body("escalation.raised")
            .replace("human_review", "nobody")
    ));
    // Research trips its breaker at more than 10 denials in 5 minutes.
    for _ in 0..11 {
        decide(
            &s,
            &sid,
            json!({ "tool": "send_invoice", "args": { "matter_code": "c", "amount": "$10" }, "confidence": 0.99 }),
        );
    }
    let (_, trip) = receiver.wait_for("breaker.tripped");
    assert_eq!(trip["breaker"]["agent"], "research", "{trip}");
    assert_eq!(trip["target"], "pager:on-call");
    let metrics = s.call("GET", "/metrics", Some(OPERATOR), None).body;
    for line in [
        "agentpolicy_breaker_open{agent=\"research\",breaker=\"denials > 10 over 5m then suspend agent\"} 1",
        "agentpolicy_audit_failed 0",
        "agentpolicy_audit_flush_seconds_count ",
        "agentpolicy_suspended{agent=\"*\"} 0",
    ] {
        assert!(metrics.contains(line), "no `{line}` in\n{metrics}");
    }
    let delivered = metrics
        .lines()
        .find_map(|l| l.strip_prefix("agentpolicy_notifications_total{result=\"delivered\"} "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("a delivered count");
    assert!(delivered >= 2, "{metrics}");

    // Now the receiver is gone: the next escalation cannot be delivered before the
    // service is killed; after the restart it is.
    let port = receiver.port;
    drop(receiver);
    let down = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let down_port = down.local_addr().expect("addr").port();
    drop(down);
    s.kill();
    let config = write_config(&dir, down_port);
    let mut args = LAW_FIRM.to_vec();
    args.extend(["--config", &config]);
    let s = Server::start_in(&dir, &args);
    let _ = port;
    let sid = open(&s, "intake", None);
    let owed = decide(
        &s,
        &sid,
        json!({ "tool": "check_conflicts", "args": { "party": "Acme" }, "confidence": 0.5 }),
    );
    assert_eq!(owed["outcome"], "escalate", "{owed}");
    // The follower has queued it (the ledger names it) and failed to send it.
    let ledger = dir.join("audit.outbox.jsonl");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&ledger)
        .unwrap_or_default()
        .contains(owed["escalation"].as_str().expect("id"))
    {
        assert!(Instant::now() < deadline, "the delivery was never queued");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.kill();
    let receiver = Receiver::start(TcpListener::bind(("127.0.0.1", down_port)).expect("rebind"));
    let s = Server::start_in(&dir, &args);
    let (headers, event) = receiver.wait_for("escalation.raised");
    assert_eq!(event["escalation"]["id"], owed["escalation"], "{event}");
    assert!(signature_verifies(
        headers.get("x-agentpolicy-signature").expect("signed"),
        &receiver.raw_body("escalation.raised")
    ));
    s.stop();
}

/// What the clients were told since the last restart was checked: per session, the
/// calls acknowledged, those counted against limits (not denied), and the calls sent
/// without an answer (the kill cut them off: each may or may not have been recorded);
/// every escalation raised and every acknowledged audit record.
#[derive(Default)]
struct Told {
    calls: HashMap<String, u64>,
    counted: HashMap<String, u64>,
    in_flight: HashMap<String, u64>,
    escalations: Vec<String>,
    acked: Vec<(u64, String)>,
}

#[test]
fn sigkill_at_random_points_under_load_loses_nothing_acknowledged() {
    let dir = temp_dir("crash");
    let mut seed: u64 = 0x5EED_1234_ABCD_0001;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let told = Arc::new(Mutex::new(Told::default()));
    let mut sessions: Vec<String> = Vec::new();
    for round in 0..20 {
        let s = Server::start_in(&dir, LAW_FIRM);
        // After a restart: everything acknowledged is there, as the clients were told.
        {
            let mut t = told.lock().expect("lock");
            for sid in &sessions {
                let state = s.get(&format!("/v1/sessions/{sid}"), AGENT).json();
                let calls = state["calls"].as_u64().expect("calls");
                // `200 calls per task`: the calls not denied.
                let used = state["limits"][0]["used"].as_u64().expect("used");
                let acked = t.calls.get(sid).copied().unwrap_or(0);
                let counted = t.counted.get(sid).copied().unwrap_or(0);
                let slack = t.in_flight.get(sid).copied().unwrap_or(0);
                assert!(
                    (acked..=acked + slack).contains(&calls),
                    "round {round}: session {sid} has {calls} calls, the clients were told {acked} (+{slack} cut off)"
                );
                assert!(
                    (counted..=counted + slack).contains(&used),
                    "round {round}: session {sid} used {used} of its limit, the clients were told {counted} (+{slack} cut off)"
                );
                // The next round counts from what this restart holds.
                t.calls.insert(sid.clone(), calls);
                t.counted.insert(sid.clone(), used);
                t.in_flight.insert(sid.clone(), 0);
            }
            let pending: Vec<String> = s.get("/v1/escalations", OPERATOR).json()["escalations"]
                .as_array()
                .expect("list")
                .iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect();
            for e in &t.escalations {
                assert!(
                    pending.contains(e),
                    "round {round}: escalation {e} was lost"
                );
            }
        }
        let sid = open(&s, "research", None);
        sessions.push(sid.clone());
        // Two clients: one per new session, one on an old session; each call's answer is
        // noted before the next call is sent.
        let mut clients = Vec::new();
        let picks = [sid, sessions[rand(sessions.len() as u64) as usize].clone()];
        for (i, session) in picks.into_iter().enumerate() {
            let told = Arc::clone(&told);
            let port = s.port;
            clients.push(std::thread::spawn(move || {
                for n in 0..200u64 {
                    let body = if (n + i as u64) % 7 == 3 {
                        json!({ "tool": "search_case_law", "args": { "query": "q" }, "confidence": 0.5 })
                    } else {
                        json!({ "tool": "search_case_law", "args": { "query": "q" }, "confidence": 0.99 })
                    };
                    *told
                        .lock()
                        .expect("lock")
                        .in_flight
                        .entry(session.clone())
                        .or_default() += 1;
                    let Some(r) = try_http(
                        port,
                        "POST",
                        &format!("/v1/sessions/{session}/decide"),
                        Some(AGENT),
                        Some(body.to_string().as_bytes()),
                    ) else {
                        return;
                    };
                    if r.status != 200 {
                        return;
                    }
                    let v: Value = serde_json::from_str(&r.body).expect("JSON");
                    let mut t = told.lock().expect("lock");
                    if let Some(n) = t.in_flight.get_mut(&session) {
                        *n -= 1;
                    }
                    *t.calls.entry(session.clone()).or_default() += 1;
                    if v["outcome"] != "deny" {
                        *t.counted.entry(session.clone()).or_default() += 1;
                    }
                    if let Some(e) = v["escalation"].as_str() {
                        t.escalations.push(e.to_owned());
                    }
                    if let (Some(seq), Some(hash)) =
                        (v["audit"]["seq"].as_u64(), v["audit"]["hash"].as_str())
                    {
                        t.acked.push((seq, hash.to_owned()));
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(30 + rand(250)));
        s.kill();
        for c in clients {
            let _ = c.join();
        }
        // The killed service's log verifies (unsealed) and holds every acknowledged
        // record, by sequence number and hash.
        verify_passes(&dir.join("audit.jsonl"));
        let text = std::fs::read_to_string(dir.join("audit.jsonl")).expect("log");
        let t = told.lock().expect("lock");
        for (seq, hash) in &t.acked {
            assert!(
                text.contains(&format!("\"hash\":\"{hash}\"")),
                "round {round}: acknowledged record {seq} ({hash}) is missing"
            );
        }
    }
    let s = Server::start_in(&dir, LAW_FIRM);
    let log = s.stop();
    assert_eq!(verify_passes(&log)["sealed"], true);
}

fn source_hash(s: &Server) -> String {
    s.get("/v1/status", OPERATOR).json()["policy"]["source_hash"]
        .as_str()
        .expect("hash")
        .to_owned()
}

fn wait_for_hash(s: &Server, changed_from: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = source_hash(s);
        if now != changed_from {
            return now;
        }
        assert!(Instant::now() < deadline, "the table was not reloaded");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_changed_policy_is_reloaded_on_watch_and_sighup_and_an_invalid_one_is_refused() {
    let dir = temp_dir("reload");
    let policy = dir.join("policy");
    std::fs::create_dir_all(&policy).expect("dir");
    let source = support::repo_root().join("examples/law_firm/policy.agentpolicy");
    let text = std::fs::read_to_string(&source).expect("policy");
    let file = policy.join("policy.agentpolicy");
    std::fs::write(&file, &text).expect("write");
    let policy_arg = policy.display().to_string();
    let s = Server::start_in(&dir, &["--policy", &policy_arg, "--watch"]);
    let first = source_hash(&s);

    // A valid change is picked up by the watcher.
    std::fs::write(
        &file,
        text.replace(
            "partner_approval_amount = $5,000",
            "partner_approval_amount = $6,000",
        ),
    )
    .expect("write");
    let second = wait_for_hash(&s, &first);

    // An invalid one is refused; the table in force keeps serving.
    std::fs::write(&file, text.replace("agent research {", "agent research {{")).expect("write");
    std::thread::sleep(Duration::from_millis(3_500));
    assert_eq!(
        source_hash(&s),
        second,
        "an invalid policy never replaces the table"
    );
    let sid = open(&s, "research", None);
    assert_eq!(decide(&s, &sid, search("M-1"))["outcome"], "allow");

    // Without --watch a change waits for SIGHUP (or the API).
    let changed = text.replace(
        "partner_approval_amount = $5,000",
        "partner_approval_amount = $6,000",
    );
    std::fs::write(&file, &changed).expect("write");
    s.stop();
    let s = Server::start_in(&dir, &["--policy", &policy_arg]);
    assert_eq!(
        source_hash(&s),
        second,
        "restarted on the last valid policy"
    );
    std::fs::write(&file, &text).expect("write");
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(
        source_hash(&s),
        second,
        "no watcher: nothing reloads by itself"
    );
    let status = std::process::Command::new("kill")
        .args(["-HUP", &s.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    assert_eq!(wait_for_hash(&s, &second), first);
    let log = s.stop();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains(&format!("table swapped: {first} replaced by {second}")),
        "the swap is audited with both hashes"
    );
    assert!(
        text.contains("the new table is not valid"),
        "the refused reload is audited"
    );
}

#[test]
fn a_flood_of_refused_requests_is_audited_in_full_without_a_record_each() {
    let dir = temp_dir("flood");
    let s = Server::start_in(&dir, LAW_FIRM);
    let n = 250;
    for i in 0..n {
        let r = s.call("GET", "/v1/status", Some(&format!("wrong-{i}")), None);
        assert_eq!(r.status, 401);
    }
    let log = s.stop();
    let text = std::fs::read_to_string(&log).expect("log");
    let mut one_by_one = 0u64;
    let mut counted = 0u64;
    for line in text.lines() {
        let r: Value = serde_json::from_str(line).expect("record");
        if r["kind"] != "refusal" {
            continue;
        }
        if r["by"] == "throttled" {
            let detail = r["detail"].as_str().expect("detail");
            let n: u64 = detail
                .split("requests: ")
                .nth(1)
                .and_then(|d| d.split(' ').next())
                .and_then(|d| d.parse().ok())
                .unwrap_or_else(|| panic!("a count in {detail}"));
            assert!(detail.contains("anonymous (GET /v1/status)"), "{detail}");
            counted += n;
        } else {
            one_by_one += 1;
        }
    }
    assert_eq!(one_by_one + counted, n, "every refusal is in the log");
    assert!(one_by_one < n, "not one record each: {one_by_one}");
}

#[test]
fn sessions_beyond_the_cap_are_refused_until_one_is_closed() {
    let dir = temp_dir("cap");
    let mut args = LAW_FIRM.to_vec();
    args.extend(["--max-sessions", "2"]);
    let s = Server::start_in(&dir, &args);
    let a = open(&s, "research", None);
    open(&s, "research", None);
    let r = s.post("/v1/sessions", AGENT, json!({ "agent": "research" }));
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "too_many_sessions");
    assert_eq!(
        s.post(&format!("/v1/sessions/{a}/close"), AGENT, json!({}))
            .status,
        200
    );
    open(&s, "research", None);
    // A restart counts the sessions it restored.
    s.kill();
    let s = Server::start_in(&dir, &args);
    let r = s.post("/v1/sessions", AGENT, json!({ "agent": "research" }));
    assert_eq!(r.status, 429, "{}", r.body);
    let log = s.stop();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("sessions are open, the most this service holds"));
}
