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

use agentpolicy_runtime::engine::{SharedControls, StateError, StateStore, Stored};
use redis::{Client, Connection, Script, Value};

const PREFIX: &str = "agentpolicy:";

/// The most idle connections kept; more may be open at once while busy.
const POOL: usize = 64;

const LOAD: &str = r"
local s = redis.call('HMGET', KEYS[1], 'v', 'state')
local k = redis.call('HKEYS', KEYS[2])
return {s[1] or '', s[2] or '', k}
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

    /// Runs `f` on a pooled connection; a connection that failed is not put back.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StateError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut con = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        match f(&mut con) {
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

/// The address without a password (`redis://:secret@host` → `redis://***@host`).
fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn controls_from(names: Vec<String>) -> SharedControls {
    let kill_all = names.iter().any(|n| n == "*");
    let mut killed: Vec<String> = names.into_iter().filter(|n| n != "*").collect();
    killed.sort();
    SharedControls { kill_all, killed }
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
        let [v, state, kill] = parts.as_slice() else {
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
        Ok((stored, controls_from(names)))
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
        let names: Vec<String> = self.with(|con| redis::cmd("HKEYS").arg(kill_key()).query(con))?;
        Ok(controls_from(names))
    }

    fn set_kill(&self, agent: Option<&str>, on: bool) -> Result<(), StateError> {
        let field = agent.unwrap_or("*");
        self.with(|con| {
            if on {
                redis::cmd("HSET")
                    .arg(kill_key())
                    .arg(field)
                    .arg(1)
                    .query::<()>(con)
            } else {
                redis::cmd("HDEL")
                    .arg(kill_key())
                    .arg(field)
                    .query::<()>(con)
            }
        })
    }

    fn ping(&self) -> Result<(), StateError> {
        self.with(|con| redis::cmd("PING").query::<()>(con))
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
    fn a_bad_address_is_refused_with_the_form_expected() {
        let e = RedisState::open("http://localhost", RedisSettings::default()).unwrap_err();
        assert!(e.contains("expected redis://HOST:PORT/DB"), "{e}");
    }

    #[test]
    fn the_kill_hash_reads_as_controls() {
        let c = controls_from(vec!["b".into(), "*".into(), "a".into()]);
        assert!(c.kill_all);
        assert_eq!(c.killed, vec!["a".to_owned(), "b".to_owned()]);
    }
}
