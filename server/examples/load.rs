//! A load generator for `agentpolicy serve`: N clients, each a thread with one
//! keep-alive HTTP/1.1 connection, deciding allowed calls as fast as the service
//! answers for S seconds. It starts nothing; `bench/serve_load.sh` starts the service
//! and runs it (docs/performance.md has the figures).
//!
//! ```sh
//! cargo run --release -p agentpolicy-server --example load -- \
//!   --url http://127.0.0.1:8181 --token TOKEN --clients 8 --seconds 10
//! ```
//!
//! `--url` given several times (replicas sharing their state, `serve --state`) spreads
//! the clients over them, client `i` on the `i % n`th.
//!
//! Each client opens a session (`POST /v1/sessions`, agent `research` of
//! examples/law_firm unless `--agent`) and loops `POST /v1/sessions/{s}/decide` with
//! `--call` (by default `search_case_law` at confidence 0.95, which the law firm
//! allows). The research agent may make 30 calls a minute per session, so a client
//! opens a fresh session every `--calls-per-session` (30) decisions: every measured
//! decision is an allow, and a decision that is not is counted as a failure. Only
//! decisions are timed; session opens are counted apart.
//!
//! Output: a summary on stderr, and one line on stdout for scripts:
//! `clients=8 seconds=10.0 decisions=… sessions=… failures=0 rps=… p50_us=… p99_us=… max_us=…`.
//! Exit 1 if any request failed (a transport error, a status other than 200, an
//! outcome other than allow), 2 on bad arguments.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: load --url http://HOST:PORT [--url …] --token TOKEN [--clients N] [--seconds S] \
[--agent NAME] [--call JSON] [--calls-per-session N]";

/// What to run, from the command line.
#[derive(Debug, Clone)]
struct LoadConfig {
    /// `host:port` of each replica of the service (plain HTTP only); client `i`
    /// talks to replica `i % n`.
    authorities: Vec<String>,
    token: String,
    clients: usize,
    duration: Duration,
    agent: String,
    call: String,
    calls_per_session: u64,
}

fn parse_args(args: &[String]) -> Result<LoadConfig, String> {
    let mut urls = Vec::new();
    let mut token = None;
    let mut clients = 1usize;
    let mut seconds = 10.0f64;
    let mut agent = "research".to_owned();
    let mut call =
        r#"{"tool":"search_case_law","args":{"query":"indemnity caps"},"confidence":0.95}"#
            .to_owned();
    let mut calls_per_session = 30u64;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--url" => urls.push(value()?),
            "--token" => token = Some(value()?),
            "--clients" => {
                clients = value()?
                    .parse()
                    .ok()
                    .filter(|n| (1..=4096).contains(n))
                    .ok_or("--clients: a whole number from 1 to 4096")?;
            }
            "--seconds" => {
                seconds = value()?
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                    .ok_or("--seconds: a number of seconds above 0")?;
            }
            "--agent" => agent = value()?,
            "--call" => {
                let v = value()?;
                serde_json::from_str::<serde_json::Value>(&v)
                    .map_err(|e| format!("--call: not JSON: {e}"))?;
                call = v;
            }
            "--calls-per-session" => {
                calls_per_session = value()?
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or("--calls-per-session: a whole number of at least 1")?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if urls.is_empty() {
        return Err(format!("--url is required\n{USAGE}"));
    }
    let mut authorities = Vec::new();
    for url in &urls {
        let authority = url
            .strip_prefix("http://")
            .ok_or("--url: only http:// is supported (run the service without TLS to measure it)")?
            .trim_end_matches('/')
            .to_owned();
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("--url: expected http://HOST:PORT, got `{url}`"));
        }
        authorities.push(authority);
    }
    Ok(LoadConfig {
        authorities,
        token: token.ok_or_else(|| format!("--token is required\n{USAGE}"))?,
        clients,
        duration: Duration::from_secs_f64(seconds),
        agent,
        call,
        calls_per_session,
    })
}

/// One keep-alive connection.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    authority: String,
    token: String,
}

impl Connection {
    fn open(config: &LoadConfig, authority: &str) -> Result<Connection, String> {
        let stream = TcpStream::connect(authority)
            .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Connection {
            reader: BufReader::new(stream),
            writer,
            authority: authority.to_owned(),
            token: config.token.clone(),
        })
    }

    /// POSTs `body` to `path` and returns the status and the response body.
    fn post(&mut self, path: &str, body: &str) -> Result<(u16, String), String> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.authority,
            self.token,
            body.len()
        );
        self.writer
            .write_all(request.as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP status line: {line:?}"))?;
        let mut length = None;
        loop {
            line.clear();
            self.reader
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let length = length.ok_or("an answer without Content-Length")?;
        let mut body = vec![0; length];
        self.reader
            .read_exact(&mut body)
            .map_err(|e| format!("read: {e}"))?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    fn open_session(&mut self, agent: &str) -> Result<String, String> {
        let (status, body) = self.post(
            "/v1/sessions",
            &serde_json::json!({ "agent": agent }).to_string(),
        )?;
        if status != 200 {
            return Err(format!("opening a session: {status} {body}"));
        }
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("session answer: {e}"))?;
        v["session"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no session id in {body}"))
    }
}

/// What one client measured.
#[derive(Debug, Default)]
struct ClientRun {
    /// Each allowed decision's round trip, in nanoseconds.
    latencies: Vec<u64>,
    sessions: u64,
    failures: u64,
    first_failure: Option<String>,
}

fn client(config: &LoadConfig, authority: &str, until: Instant) -> ClientRun {
    let mut run = ClientRun::default();
    let fail = |run: &mut ClientRun, why: String| {
        run.failures += 1;
        run.first_failure.get_or_insert(why);
    };
    let mut conn = match Connection::open(config, authority) {
        Ok(c) => c,
        Err(e) => {
            fail(&mut run, e);
            return run;
        }
    };
    'sessions: while Instant::now() < until {
        let session = match conn.open_session(&config.agent) {
            Ok(s) => s,
            Err(e) => {
                fail(&mut run, e);
                break;
            }
        };
        run.sessions += 1;
        let path = format!("/v1/sessions/{session}/decide");
        for _ in 0..config.calls_per_session {
            let began = Instant::now();
            if began >= until {
                break 'sessions;
            }
            match conn.post(&path, &config.call) {
                Ok((200, body)) if body.contains(r#""outcome":"allow""#) => {
                    run.latencies.push(began.elapsed().as_nanos() as u64);
                }
                Ok((status, body)) => {
                    fail(&mut run, format!("decide: {status} {body}"));
                }
                Err(e) => {
                    fail(&mut run, e);
                    break 'sessions;
                }
            }
        }
    }
    run
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let began = Instant::now();
    let until = began + config.duration;
    let runs: Vec<ClientRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..config.clients)
            .map(|i| {
                let authority = &config.authorities[i % config.authorities.len()];
                let config = &config;
                scope.spawn(move || client(config, authority, until))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| ClientRun {
                    failures: 1,
                    first_failure: Some("a client thread panicked".into()),
                    ..ClientRun::default()
                })
            })
            .collect()
    });
    let elapsed = began.elapsed().as_secs_f64();
    let mut latencies: Vec<u64> = runs
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    latencies.sort_unstable();
    let sessions: u64 = runs.iter().map(|r| r.sessions).sum();
    let failures: u64 = runs.iter().map(|r| r.failures).sum();
    let decisions = latencies.len();
    let rps = decisions as f64 / elapsed;
    let us = |ns: u64| ns as f64 / 1000.0;
    let (p50, p99, max) = (
        us(percentile(&latencies, 50.0)),
        us(percentile(&latencies, 99.0)),
        us(latencies.last().copied().unwrap_or(0)),
    );
    eprintln!(
        "{} clients, {elapsed:.1} s: {decisions} allowed decisions ({rps:.0}/s), {sessions} sessions, {failures} failures; latency p50 {p50:.0} µs, p99 {p99:.0} µs, max {max:.0} µs",
        config.clients
    );
    if let Some(why) = runs.iter().find_map(|r| r.first_failure.as_deref()) {
        eprintln!("first failure: {why}");
    }
    println!(
        "clients={} seconds={elapsed:.1} decisions={decisions} sessions={sessions} failures={failures} rps={rps:.0} p50_us={p50:.0} p99_us={p99:.0} max_us={max:.0}",
        config.clients
    );
    if failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
