//! Notifications: escalations raised, resolved and timed out, and breaker trips,
//! delivered to the webhooks configured for the policy's `notify` targets, each POST
//! signed with HMAC-SHA256 (`X-Agentpolicy-Signature: t=UNIX,v1=HEX` over `t.body`,
//! as Stripe signs), retried with exponential backoff.
//!
//! Nothing is lost in a crash, because the audit log is the outbox: events are derived
//! from its records, and only from records the log acknowledged. A follower thread reads
//! the log as it grows; the delivery ledger (`outbox.jsonl` beside the log, JSON lines)
//! records how far the follower has read (`cursor`), each delivery it owes (`queued`,
//! with its body) and each one finished (`done` or `failed`), fsynced before the next
//! step. After a SIGKILL the next start reads the ledger, sends what is owed and reads
//! the log on from the cursor. Delivery is at least once: receivers deduplicate by the
//! event id (`X-Agentpolicy-Event`, the record's hash).
//!
//! Must not: block the decide path (it reads the log on its own thread), send an event
//! for a record the log has not acknowledged, or hold a secret anywhere but memory.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use agentpolicy_runtime::audit::{Record, RecordKind, format_time, read_records};
use agentpolicy_runtime::engine::Engine;

/// The largest config file read, in bytes.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// How often the follower looks for new records when nothing pokes it.
const POLL: Duration = Duration::from_millis(200);

/// One webhook: where events for a `notify` target go.
#[derive(Debug, Clone)]
pub struct Hook {
    /// A `notify` target of the policy (`queue:practice-support`), or `*` for every one.
    pub target: String,
    pub url: String,
    secret: Vec<u8>,
}

/// The notification settings of `serve --config`.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    pub hooks: Vec<Hook>,
    /// The `notify` targets breaker trips go to (breakers name no route).
    pub breakers: Vec<String>,
    /// Attempts per delivery before it is given up (recorded as `failed`).
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    notify: Option<NotifyFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyFile {
    #[serde(default)]
    breakers: Vec<String>,
    #[serde(default)]
    webhook: Vec<HookFile>,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    backoff_ms: Option<u64>,
    #[serde(default)]
    max_backoff_ms: Option<u64>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HookFile {
    target: String,
    url: String,
    #[serde(default)]
    secret_file: Option<PathBuf>,
    #[serde(default)]
    secret_env: Option<String>,
}

impl Webhooks {
    /// Reads the `[notify]` part of a `serve --config` file (TOML). Secrets come from a
    /// file (relative to the config file) or an environment variable, never the config
    /// itself; each must hold at least 16 bytes.
    pub fn load(path: &Path) -> Result<Webhooks, String> {
        let at = path.display();
        let file = File::open(path).map_err(|e| format!("cannot read `{at}`: {e}"))?;
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read `{at}`: {e}"))?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(format!("`{at}` is larger than {MAX_CONFIG_BYTES} bytes"));
        }
        let config: ConfigFile = toml::from_str(&text).map_err(|e| format!("`{at}`: {e}"))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let n = config.notify.unwrap_or(NotifyFile {
            breakers: Vec::new(),
            webhook: Vec::new(),
            max_attempts: None,
            backoff_ms: None,
            max_backoff_ms: None,
            timeout_ms: None,
        });
        let mut hooks = Vec::new();
        for (i, h) in n.webhook.into_iter().enumerate() {
            let which = format!("`{at}`: webhook #{} (`{}`)", i + 1, h.target);
            if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
                return Err(format!(
                    "{which}: `url` must start with https:// (or http:// on a trusted network)"
                ));
            }
            let secret = match (&h.secret_file, &h.secret_env) {
                (Some(f), None) => {
                    let f = base.join(f);
                    std::fs::read(&f).map_err(|e| {
                        format!("{which}: cannot read the secret `{}`: {e}", f.display())
                    })?
                }
                (None, Some(var)) => std::env::var(var)
                    .map_err(|_| format!("{which}: the environment variable `{var}` is not set"))?
                    .into_bytes(),
                _ => {
                    return Err(format!(
                        "{which}: give exactly one of `secret_file` and `secret_env`"
                    ));
                }
            };
            let secret: Vec<u8> = secret.trim_ascii().to_vec();
            if secret.len() < 16 {
                return Err(format!(
                    "{which}: the secret is shorter than 16 bytes; make one with `head -c 32 /dev/urandom | base64`"
                ));
            }
            hooks.push(Hook {
                target: h.target,
                url: h.url,
                secret,
            });
        }
        Ok(Webhooks {
            hooks,
            breakers: n.breakers,
            max_attempts: n.max_attempts.unwrap_or(12).max(1),
            backoff: Duration::from_millis(n.backoff_ms.unwrap_or(1_000)),
            max_backoff: Duration::from_millis(n.max_backoff_ms.unwrap_or(300_000)),
            timeout: Duration::from_millis(n.timeout_ms.unwrap_or(10_000)),
        })
    }

    fn hooks_for<'a>(&'a self, targets: &'a [String]) -> impl Iterator<Item = &'a Hook> + 'a {
        self.hooks
            .iter()
            .filter(move |h| h.target == "*" || targets.contains(&h.target))
    }
}

/// The HMAC-SHA256 signature header of a body sent at `unix` seconds.
///
/// ```
/// let header = agentpolicy_server::webhook::signature(b"0123456789abcdef", 1_700_000_000, b"{}");
/// assert!(header.starts_with("t=1700000000,v1="));
/// assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
/// ```
pub fn signature(secret: &[u8], unix: u64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC takes keys of any length; this branch cannot be taken.
        Err(_) => return String::new(),
    };
    mac.update(unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={unix},v1={hex}")
}

/// One POST owed to one webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Delivery {
    /// The event id and the URL, so one event to two webhooks is two deliveries.
    id: String,
    event: String,
    kind: String,
    url: String,
    body: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry {
    Cursor(u64),
    Queued(Delivery),
    Done(String),
    Failed { id: String, why: String },
}

/// The events of a record and the `notify` targets each goes to.
fn events(config: &Webhooks, r: &Record) -> Vec<(String, Vec<String>, Value)> {
    let event_id = r.hash.to_string();
    let time = format_time(r.time_ms);
    let escalation = |info: &agentpolicy_runtime::audit::EscalationInfo| {
        json!({
            "id": info.id,
            "session": r.session,
            "agent": r.agent,
            "tool": r.tool,
            "rule": r.rule,
            "routes": info.routes,
            "notify": info.notify,
            "deadline": info.deadline_ms.map(format_time),
            "timeout_outcome": info.timeout_outcome.keyword(),
        })
    };
    let base = |kind: &str| {
        json!({
            "id": event_id,
            "type": kind,
            "time": time,
            "table": r.table.map(|t| t.to_string()),
            "audit": { "seq": r.seq, "hash": event_id },
        })
    };
    let mut out = Vec::new();
    match (r.kind, &r.escalation) {
        (RecordKind::Decision, Some(info)) => {
            let mut v = base("escalation.raised");
            v["escalation"] = escalation(info);
            v["escalation"]["reasoning"] = json!(r.reasoning);
            v["escalation"]["context"] = json!(r.context);
            v["escalation"]["args"] = json!(r.args);
            v["escalation"]["why"] = json!(r.why);
            out.push(("escalation.raised".to_owned(), info.notify.clone(), v));
        }
        (RecordKind::Resolution, Some(info)) => {
            let kind = if r.resolution.as_deref() == Some("timeout") {
                "escalation.timed_out"
            } else {
                "escalation.resolved"
            };
            let mut v = base(kind);
            v["escalation"] = escalation(info);
            v["escalation"]["resolution"] = json!(r.resolution);
            v["escalation"]["outcome"] = json!(r.outcome.map(|o| o.keyword()));
            v["escalation"]["by"] = json!(r.by);
            v["escalation"]["why"] = json!(r.why);
            out.push((kind.to_owned(), info.notify.clone(), v));
        }
        (RecordKind::Breaker, _) => {
            let detail = r.detail.as_deref().unwrap_or_default();
            if detail.contains(" tripped at ") || detail.contains(" re-opened") {
                let mut v = base("breaker.tripped");
                v["breaker"] = json!({ "agent": r.agent, "detail": detail });
                out.push(("breaker.tripped".to_owned(), config.breakers.clone(), v));
            }
        }
        _ => {}
    }
    let _ = config;
    out
}

/// What the metrics show of the notifier.
#[derive(Debug, Default)]
pub struct NotifyStats {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    pub pending: AtomicU64,
}

/// The follower and sender, on its own thread.
pub(crate) struct Notifier {
    stop: Arc<AtomicBool>,
    poke: std::sync::mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<NotifyStats>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

struct Ledger {
    path: PathBuf,
    file: File,
}

impl Ledger {
    /// Reads the ledger (if any) and rewrites it with only what is still owed.
    fn open(path: &Path, head: u64) -> Result<(Ledger, u64, Vec<Delivery>), String> {
        let at = path.display();
        let mut cursor = None;
        let mut owed: BTreeMap<String, Delivery> = BTreeMap::new();
        match File::open(path) {
            Ok(f) => {
                for line in BufReader::new(f).lines() {
                    let line = line.map_err(|e| format!("cannot read `{at}`: {e}"))?;
                    // A torn last line (a crash mid-write) was never relied on.
                    let Ok(entry) = serde_json::from_str::<Entry>(&line) else {
                        continue;
                    };
                    match entry {
                        Entry::Cursor(c) => cursor = Some(c),
                        Entry::Queued(d) => {
                            owed.insert(d.id.clone(), d);
                        }
                        Entry::Done(id) | Entry::Failed { id, .. } => {
                            owed.remove(&id);
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read `{at}`: {e}")),
        }
        // A new ledger starts at the log's head: history is not re-sent.
        let cursor = cursor.unwrap_or(head);
        let tmp = path.with_extension("jsonl.tmp");
        {
            let mut f = File::create(&tmp).map_err(|e| format!("cannot write `{at}`: {e}"))?;
            let mut text = String::new();
            for d in owed.values() {
                text.push_str(
                    &serde_json::to_string(&Entry::Queued(d.clone())).unwrap_or_default(),
                );
                text.push('\n');
            }
            text.push_str(&serde_json::to_string(&Entry::Cursor(cursor)).unwrap_or_default());
            text.push('\n');
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| format!("cannot write `{at}`: {e}"))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| format!("cannot write `{at}`: {e}"))?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot write `{at}`: {e}"))?;
        Ok((
            Ledger {
                path: path.to_path_buf(),
                file,
            },
            cursor,
            owed.into_values().collect(),
        ))
    }

    fn write(&mut self, entries: &[Entry]) -> Result<(), String> {
        let mut text = String::new();
        for e in entries {
            text.push_str(&serde_json::to_string(e).map_err(|e| e.to_string())?);
            text.push('\n');
        }
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| format!("cannot write `{}`: {e}", self.path.display()))
    }
}

/// A delivery waiting for its next attempt.
struct Owed {
    d: Delivery,
    attempts: u32,
    next: Instant,
}

impl Notifier {
    /// Opens the ledger beside the audit log, works out what is owed from it and from
    /// the log's records after the cursor, and starts the thread.
    pub(crate) fn start(
        config: Webhooks,
        audit: &Path,
        engine: Arc<Engine>,
    ) -> Result<Notifier, String> {
        let ledger_path = audit.with_extension("outbox.jsonl");
        let head = engine.audit_acknowledged().unwrap_or(0);
        let (ledger, cursor, owed) = Ledger::open(&ledger_path, head)?;
        let stats = Arc::new(NotifyStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (poke, poked) = std::sync::mpsc::channel();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let mut worker = Worker {
            config,
            audit: audit.to_path_buf(),
            offset: 0,
            cursor,
            ledger,
            owed: owed
                .into_iter()
                .map(|d| Owed {
                    d,
                    attempts: 0,
                    next: Instant::now(),
                })
                .collect(),
            engine,
            agent,
            stats: Arc::clone(&stats),
        };
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("agentpolicy-notify".into())
            .spawn(move || worker.run(&stop2, &poked))
            .map_err(|e| format!("cannot start the notifier thread: {e}"))?;
        Ok(Notifier {
            stop,
            poke,
            thread: Some(thread),
            stats,
        })
    }

    /// Stops the thread after its current step; what is owed stays in the ledger.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.poke.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    config: Webhooks,
    audit: PathBuf,
    /// How far the log file has been read, in bytes.
    offset: u64,
    /// Every record up to this seq has its deliveries in the ledger.
    cursor: u64,
    ledger: Ledger,
    owed: Vec<Owed>,
    engine: Arc<Engine>,
    agent: ureq::Agent,
    stats: Arc<NotifyStats>,
}

impl Worker {
    fn run(&mut self, stop: &AtomicBool, poked: &std::sync::mpsc::Receiver<()>) {
        while !stop.load(Ordering::SeqCst) {
            if let Err(why) = self.follow() {
                eprintln!("warning: notifications: {why}");
            }
            self.send_due(stop);
            self.stats
                .pending
                .store(self.owed.len() as u64, Ordering::Relaxed);
            let wait = self
                .owed
                .iter()
                .map(|o| o.next.saturating_duration_since(Instant::now()))
                .min()
                .unwrap_or(POLL)
                .min(POLL);
            let _ = poked.recv_timeout(wait);
        }
    }

    /// Reads the records the log acknowledged since the last look, queueing their
    /// deliveries in the ledger before moving the cursor past them.
    fn follow(&mut self) -> Result<(), String> {
        let acknowledged = self.engine.audit_acknowledged().unwrap_or(0);
        if acknowledged <= self.cursor {
            return Ok(());
        }
        let mut f = File::open(&self.audit).map_err(|e| format!("cannot read the log: {e}"))?;
        f.seek(SeekFrom::Start(self.offset))
            .map_err(|e| format!("cannot read the log: {e}"))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read the log: {e}"))?;
        // Whole lines of acknowledged records only.
        let mut used = 0usize;
        let mut records = Vec::new();
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            if line.last() != Some(&b'\n') {
                break;
            }
            let mut r = read_records(line).map_err(|e| format!("the log: {e}"))?;
            let Some(r) = r.pop() else { break };
            if r.seq > acknowledged {
                break;
            }
            used += line.len();
            records.push(r);
        }
        self.offset += used as u64;
        let mut entries = Vec::new();
        let mut last = self.cursor;
        for r in records.iter().filter(|r| r.seq > self.cursor) {
            for (kind, targets, body) in events(&self.config, r) {
                for hook in self.config.hooks_for(&targets) {
                    let mut body = body.clone();
                    body["target"] = json!(hook.target);
                    let d = Delivery {
                        id: format!("{}@{}", r.hash, hook.url),
                        event: r.hash.to_string(),
                        kind: kind.clone(),
                        url: hook.url.clone(),
                        body: body.to_string(),
                    };
                    entries.push(Entry::Queued(d.clone()));
                    self.owed.push(Owed {
                        d,
                        attempts: 0,
                        next: Instant::now(),
                    });
                }
            }
            last = r.seq;
        }
        if last > self.cursor {
            entries.push(Entry::Cursor(last));
            self.ledger.write(&entries)?;
            self.cursor = last;
        }
        Ok(())
    }

    fn send_due(&mut self, stop: &AtomicBool) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.owed.len() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let Some(o) = self.owed.get_mut(i) else { break };
            if o.next > now {
                i += 1;
                continue;
            }
            let secret = self
                .config
                .hooks
                .iter()
                .find(|h| h.url == o.d.url)
                .map(|h| h.secret.clone());
            let outcome = match secret {
                None => Err("the webhook is no longer configured".to_owned()),
                Some(secret) => send(&self.agent, &secret, &o.d),
            };
            o.attempts += 1;
            let finished = match outcome {
                Ok(()) => {
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    Some(Entry::Done(o.d.id.clone()))
                }
                Err(why) if o.attempts >= self.config.max_attempts => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!(
                        "warning: notification {} to {} given up after {} attempts: {why}",
                        o.d.kind, o.d.url, o.attempts
                    );
                    Some(Entry::Failed {
                        id: o.d.id.clone(),
                        why,
                    })
                }
                Err(_) => {
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    let factor = 1u32 << (o.attempts - 1).min(16);
                    o.next = Instant::now()
                        + self
                            .config
                            .backoff
                            .saturating_mul(factor)
                            .min(self.config.max_backoff);
                    None
                }
            };
            match finished {
                Some(entry) => {
                    if let Err(why) = self.ledger.write(&[entry]) {
                        eprintln!("warning: notifications: {why}");
                    }
                    self.owed.remove(i);
                }
                None => i += 1,
            }
        }
    }
}

/// One POST; `Ok` on a 2xx answer.
fn send(agent: &ureq::Agent, secret: &[u8], d: &Delivery) -> Result<(), String> {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let response = agent
        .post(&d.url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "agentpolicy-serve")
        .header("X-Agentpolicy-Event", &d.event)
        .header("X-Agentpolicy-Event-Type", &d.kind)
        .header(
            "X-Agentpolicy-Signature",
            &signature(secret, unix, d.body.as_bytes()),
        )
        .send(d.body.as_bytes())
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("the receiver answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // RFC 4231 test case 2 style check: a known key and message.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"0123456789abcdef").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        let want: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            signature(b"0123456789abcdef", 1_700_000_000, b"{\"a\":1}"),
            format!("t=1700000000,v1={want}")
        );
        assert_ne!(
            signature(b"0123456789abcdeX", 1_700_000_000, b"{\"a\":1}"),
            signature(b"0123456789abcdef", 1_700_000_000, b"{\"a\":1}")
        );
    }
}
