//! The engine's shared state on Redis (or Valkey): [`RedisState`], the
//! [`StateStore`] behind `agentpolicy serve --state redis://HOST:PORT/DB`, so several
//! service replicas act as one engine (`docs/scaling.md`).
//!
//! Keys (all under `agentpolicy:`): `next_session` (a counter, `INCR`),
//! `session:{id}` (a hash: `v` the version, `state` the snapshot; expires
//! `ttl` after its last change), `kill` (a hash: field `*` for every agent, or an
//! agent's name). A commit is one Lua script that compares `v` and writes, so no two
//! replicas commit on the same version; a load is one script that reads the session
//! and the kill switch together.
//!
//! Every round trip has a budget: connecting, sending and reading each time out after
//! it, and an error or a timeout is a [`StateError`] (the engine denies). Connections
//! come from a small pool; one that failed is dropped, and the next step connects
//! again, so the service recovers when Redis returns without a restart. No queue: a
//! step that cannot get an answer within the budget fails at once.

use std::sync::Mutex;
use std::time::Duration;

use agentpolicy_runtime::engine::{
    OnEvent, SharedControls, SharedEvent, StateError, StateStore, Stored,
};
use redis::{Client, Connection, Script, Value};

const PREFIX: &str = "agentpolicy:";

/// The most idle connections kept; more may be open at once while busy.
const POOL: usize = 64;

/// The channel every replica subscribes to: `claim ID`, `finished ID`, `kill`,
/// `table HASH`.
const CHANNEL: &str = "agentpolicy:events";

const LOAD: &str = r"
local s = redis.call('HMGET', KEYS[1], 'v', 'state')
local k = redis.call('HKEYS', KEYS[2])
local t = redis.call('GET', KEYS[3])
return {s[1] or '', s[2] or '', k, t or ''}
";

/// Takes a pending escalation off the list and records the claim, in one step: of
/// two replicas claiming at once, one gets the escalation, the other nil.
const CLAIM: &str = r"
local p = redis.call('HGET', KEYS[1], ARGV[1])
if not p then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'claim ' .. ARGV[1])
return p
";

const FINISH: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], 'finished ' .. ARGV[1])
return 1
";

const COMMIT: &str = r"
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', v + 1, 'state', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// How the Redis store behaves.
#[derive(Debug, Clone, Copy)]
pub struct RedisSettings {
    /// The longest one round trip (or connecting) may take before the step fails
    /// closed.
    pub budget: Duration,
    /// A session not changed for this long expires from Redis.
    pub ttl: Duration,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            budget: Duration::from_millis(250),
            ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The engine's state on one Redis database.
pub struct RedisState {
    client: Client,
    settings: RedisSettings,
    idle: Mutex<Vec<Connection>>,
    load: Script,
    commit: Script,
    claim: Script,
    finish: Script,
    /// What the address was given as, without a password, for messages.
    shown: String,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("at", &self.shown)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RedisState {
    /// Checks the address (`redis://HOST:PORT/DB`); connects only when used, so a
    /// service can start while Redis is down (and deny until it is up).
    pub fn open(url: &str, settings: RedisSettings) -> Result<RedisState, String> {
        if !url.starts_with("redis://") {
            return Err(format!(
                "`{}` is not a Redis address: expected redis://HOST:PORT/DB (for example redis://127.0.0.1:6379/0)",
                shown(url)
            ));
        }
        let client = Client::open(url)
            .map_err(|e| format!("`{}` is not a usable Redis address: {e}", shown(url)))?;
        Ok(RedisState {
            client,
            settings,
            idle: Mutex::new(Vec::new()),
            load: Script::new(LOAD),
            commit: Script::new(COMMIT),
            claim: Script::new(CLAIM),
            finish: Script::new(FINISH),
            shown: shown(url),
        })
    }

    fn connect(&self) -> Result<Connection, StateError> {
        let budget = self.settings.budget;
        let con = self
            .client
            .get_connection_with_timeout(budget)
            .map_err(|e| self.error("cannot connect", &e))?;
        con.set_read_timeout(Some(budget))
            .and_then(|()| con.set_write_timeout(Some(budget)))
            .map_err(|e| self.error("cannot set timeouts", &e))?;
        Ok(con)
    }

    /// Runs `f` on a pooled connection; a connection that failed is not put back. A
    /// pooled connection that Redis closed (it restarted) empties the pool, and `f` is
    /// run once more on a new connection: a dead socket carried nothing to Redis.
    fn with<T>(
        &self,
        mut f: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StateError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let fresh = pooled.is_none();
        let mut con = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let mut result = f(&mut con);
        if let Err(e) = &result
            && !fresh
            && (e.is_connection_dropped() || e.is_unrecoverable_error())
            && !e.is_timeout()
        {
            if let Ok(mut idle) = self.idle.lock() {
                idle.clear();
            }
            con = self.connect()?;
            result = f(&mut con);
        }
        match result {
            Ok(v) => {
                if let Ok(mut idle) = self.idle.lock()
                    && idle.len() < POOL
                {
                    idle.push(con);
                }
                Ok(v)
            }
            Err(e) => Err(self.error("a request failed", &e)),
        }
    }

    fn error(&self, what: &str, e: &redis::RedisError) -> StateError {
        let why = if e.is_timeout() {
            format!(
                "no answer within the budget of {} ms",
                self.settings.budget.as_millis()
            )
        } else {
            e.to_string()
        };
        StateError(format!("Redis at {}: {what}: {why}", self.shown))
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.settings.ttl.as_millis()).unwrap_or(u64::MAX)
    }
}

fn session_key(id: u64) -> String {
    format!("{PREFIX}session:{id}")
}

fn kill_key() -> String {
    format!("{PREFIX}kill")
}

fn table_key() -> String {
    format!("{PREFIX}table")
}

fn escalations_key() -> String {
    format!("{PREFIX}escalations")
}

fn claims_key() -> String {
    format!("{PREFIX}claims")
}

fn result_key(id: &str) -> String {
    format!("{PREFIX}resolved:{id}")
}

/// An event as published on [`CHANNEL`]; `None` for anything else.
fn event(payload: &str) -> Option<SharedEvent> {
    let (kind, arg) = payload.split_once(' ').unwrap_or((payload, ""));
    match (kind, arg) {
        ("claim", id) if !id.is_empty() => Some(SharedEvent::Claimed(id.to_owned())),
        ("finished", id) if !id.is_empty() => Some(SharedEvent::Finished(id.to_owned())),
        ("kill", "") => Some(SharedEvent::Kill),
        ("table", hash) if !hash.is_empty() => Some(SharedEvent::Table(hash.to_owned())),
        _ => None,
    }
}

/// The address without a password (`redis://:secret@host` → `redis://***@host`).
fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn controls_from(names: Vec<String>, table: Option<String>) -> SharedControls {
    let kill_all = names.iter().any(|n| n == "*");
    let mut killed: Vec<String> = names.into_iter().filter(|n| n != "*").collect();
    killed.sort();
    SharedControls {
        kill_all,
        killed,
        table: table.filter(|t| !t.is_empty()),
    }
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

impl StateStore for RedisState {
    fn next_session(&self) -> Result<u64, StateError> {
        self.with(|con| {
            redis::cmd("INCR")
                .arg(format!("{PREFIX}next_session"))
                .query(con)
        })
    }

    fn load(&self, session: u64) -> Result<(Option<Stored>, SharedControls), StateError> {
        let reply: Value = self.with(|con| {
            self.load
                .key(session_key(session))
                .key(kill_key())
                .key(table_key())
                .invoke(con)
        })?;
        let bad = || {
            StateError(format!(
                "Redis at {}: an unexpected answer to a load",
                self.shown
            ))
        };
        let Value::Array(parts) = reply else {
            return Err(bad());
        };
        let [v, state, kill, table] = parts.as_slice() else {
            return Err(bad());
        };
        let version = bytes(v).ok_or_else(bad)?;
        let state = bytes(state).ok_or_else(bad)?;
        let names: Vec<String> = match kill {
            Value::Array(items) => items
                .iter()
                .filter_map(bytes)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .collect(),
            _ => return Err(bad()),
        };
        let stored = if version.is_empty() {
            None
        } else {
            let version = std::str::from_utf8(&version)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(bad)?;
            Some(Stored {
                version,
                bytes: state,
            })
        };
        let table = bytes(table).map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok((stored, controls_from(names, table)))
    }

    fn commit(&self, session: u64, version: u64, state: &[u8]) -> Result<bool, StateError> {
        let ttl = self.ttl_ms();
        let written: i64 = self.with(|con| {
            self.commit
                .key(session_key(session))
                .arg(version)
                .arg(state)
                .arg(ttl)
                .invoke(con)
        })?;
        Ok(written == 1)
    }

    fn controls(&self) -> Result<SharedControls, StateError> {
        let (names, table): (Vec<String>, Option<String>) = self.with(|con| {
            redis::pipe()
                .cmd("HKEYS")
                .arg(kill_key())
                .cmd("GET")
                .arg(table_key())
                .query(con)
        })?;
        Ok(controls_from(names, table))
    }

    fn set_kill(&self, agent: Option<&str>, on: bool) -> Result<(), StateError> {
        let field = agent.unwrap_or("*");
        self.with(|con| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            if on {
                pipe.cmd("HSET").arg(kill_key()).arg(field).arg(1);
            } else {
                pipe.cmd("HDEL").arg(kill_key()).arg(field);
            }
            pipe.cmd("PUBLISH").arg(CHANNEL).arg("kill");
            pipe.query::<()>(con)
        })
    }

    fn set_table(&self, hash: &str) -> Result<(), StateError> {
        self.with(|con| {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(table_key())
                .arg(hash)
                .cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(format!("table {hash}"))
                .query::<()>(con)
        })
    }

    fn put_escalation(&self, id: &str, bytes: &[u8]) -> Result<(), StateError> {
        self.with(|con| {
            redis::cmd("HSET")
                .arg(escalations_key())
                .arg(id)
                .arg(bytes)
                .query::<()>(con)
        })
    }

    fn drop_escalation(&self, id: &str) -> Result<(), StateError> {
        self.with(|con| {
            redis::cmd("HDEL")
                .arg(escalations_key())
                .arg(id)
                .query::<()>(con)
        })
    }

    fn escalations(&self) -> Result<Vec<Vec<u8>>, StateError> {
        self.with(|con| redis::cmd("HVALS").arg(escalations_key()).query(con))
    }

    fn claim_escalation(&self, id: &str, claim: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.with(|con| {
            self.claim
                .key(escalations_key())
                .key(claims_key())
                .arg(id)
                .arg(claim)
                .arg(CHANNEL)
                .invoke(con)
        })
    }

    fn claims(&self, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>, StateError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.with(|con| redis::cmd("HMGET").arg(claims_key()).arg(ids).query(con))
    }

    fn finish_escalation(&self, id: &str, result: &[u8]) -> Result<(), StateError> {
        let ttl = self.ttl_ms();
        self.with(|con| {
            self.finish
                .key(claims_key())
                .key(result_key(id))
                .arg(id)
                .arg(result)
                .arg(ttl)
                .arg(CHANNEL)
                .invoke::<()>(con)
        })
    }

    fn escalation_result(&self, id: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.with(|con| redis::cmd("GET").arg(result_key(id)).query(con))
    }

    fn watch(&self, on: OnEvent) -> Result<bool, StateError> {
        let client = self.client.clone();
        let budget = self.settings.budget;
        std::thread::Builder::new()
            .name("agentpolicy-redis-events".into())
            .spawn(move || listen(&client, budget, &on))
            .map_err(|e| StateError(format!("cannot start the Redis event thread: {e}")))?;
        Ok(true)
    }

    fn ping(&self) -> Result<(), StateError> {
        self.with(|con| redis::cmd("PING").query::<()>(con))
    }
}

/// How long the event thread waits for a message before it asks whether to go on.
const IDLE: Duration = Duration::from_millis(500);

/// The event thread: subscribes to [`CHANNEL`] and hands each event to `on` until it
/// says stop; when Redis is gone it connects again (events missed meanwhile are
/// covered by the engines' timer).
fn listen(client: &Client, budget: Duration, on: &OnEvent) {
    loop {
        if let Ok(mut con) = client.get_connection_with_timeout(budget) {
            let mut sub = con.as_pubsub();
            if sub.subscribe(CHANNEL).is_ok() && sub.set_read_timeout(Some(IDLE)).is_ok() {
                loop {
                    match sub.get_message() {
                        Ok(msg) => {
                            let payload = String::from_utf8_lossy(msg.get_payload_bytes());
                            if let Some(e) = event(&payload)
                                && !on(Some(e))
                            {
                                return;
                            }
                        }
                        Err(e) if e.is_timeout() => {
                            if !on(None) {
                                return;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        if !on(None) {
            return;
        }
        std::thread::sleep(IDLE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_with_a_password_is_shown_without_it() {
        assert_eq!(
            shown("redis://:hunter2@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(
            shown("redis://127.0.0.1:6379/2"),
            "redis://127.0.0.1:6379/2"
        );
    }

    #[test]
    fn events_read_as_published_and_nothing_else() {
        assert_eq!(
            event("claim s3:2"),
            Some(SharedEvent::Claimed("s3:2".into()))
        );
        assert_eq!(event("kill"), Some(SharedEvent::Kill));
        assert_eq!(event("table ab12"), Some(SharedEvent::Table("ab12".into())));
        assert_eq!(event("claim "), None);
        assert_eq!(event("reboot now"), None);
    }

    #[test]
    fn a_bad_address_is_refused_with_the_form_expected() {
        let e = RedisState::open("http://localhost", RedisSettings::default()).unwrap_err();
        assert!(e.contains("expected redis://HOST:PORT/DB"), "{e}");
    }

    #[test]
    fn the_kill_hash_reads_as_controls() {
        let c = controls_from(
            vec!["b".into(), "*".into(), "a".into()],
            Some(String::new()),
        );
        assert!(c.kill_all);
        assert_eq!(c.table, None);
        assert_eq!(c.killed, vec!["a".to_owned(), "b".to_owned()]);
    }
}
