//! The console's cookie sessions: a pasted bearer token is exchanged once for a random
//! session id carried in a cookie (`HttpOnly; Secure; SameSite=Strict; Path=/console`),
//! so the token is never stored by the browser and never appears in a URL. Each session
//! holds the token's principal, a synchronizer CSRF token, and when it was made and
//! last used; it ends on logout, after [`crate::Limits::console_idle`] without a
//! request, or [`crate::Limits::console_lifetime`] after login, whichever comes first.
//!
//! Must not: keep a session id or a bearer token in clear (the store is keyed by the
//! SHA-256 of the id; the token is hashed by [`crate::Tokens`]), or grow without bound
//! (at most [`MAX_SESSIONS`] at once; expired ones are dropped first).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::auth::Principal;

/// The cookie's name.
pub const COOKIE: &str = "agentpolicy_console";

/// The most console sessions held at once; a login beyond it is refused (429).
pub const MAX_SESSIONS: usize = 1_000;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub principal: Principal,
    /// The synchronizer token every state-changing request must carry in
    /// `X-CSRF-Token`.
    pub csrf: String,
    created: Instant,
    last_used: Instant,
}

/// Why a cookie does not open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// No cookie, or one the store never issued (or forgot at logout).
    Missing,
    /// A session that idled or lived too long; it is removed.
    Expired,
}

impl Lookup {
    pub fn why(self) -> &'static str {
        match self {
            Lookup::Missing => "no console session (log in at /console/login)",
            Lookup::Expired => "the console session expired (log in again at /console/login)",
        }
    }
}

/// The console sessions of one service.
#[derive(Debug)]
pub struct Sessions {
    idle: Duration,
    lifetime: Duration,
    held: Mutex<HashMap<[u8; 32], ConsoleSession>>,
}

/// 32 random bytes from the operating system, as 64 hex digits.
fn random_hex() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the system: {e}"))?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Compares two texts in time that depends on their lengths only.
pub fn same_secret(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .bytes()
        .zip(b.bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl Sessions {
    pub fn new(idle: Duration, lifetime: Duration) -> Sessions {
        Sessions {
            idle,
            lifetime,
            held: Mutex::new(HashMap::new()),
        }
    }

    fn expired(&self, s: &ConsoleSession, now: Instant) -> bool {
        now.duration_since(s.last_used) >= self.idle
            || now.duration_since(s.created) >= self.lifetime
    }

    /// A new session for `principal`: its id (for the cookie) and the session. `Err`
    /// when the store is full of live sessions or the system gives no randomness.
    pub fn create(&self, principal: Principal) -> Result<(String, ConsoleSession), String> {
        let id = random_hex()?;
        let now = Instant::now();
        let session = ConsoleSession {
            principal,
            csrf: random_hex()?,
            created: now,
            last_used: now,
        };
        let mut held = self
            .held
            .lock()
            .map_err(|_| "the console's session store is poisoned".to_owned())?;
        if held.len() >= MAX_SESSIONS {
            held.retain(|_, s| !self.expired(s, now));
        }
        if held.len() >= MAX_SESSIONS {
            return Err(format!(
                "{MAX_SESSIONS} console sessions are open; log out of one or wait until one expires"
            ));
        }
        held.insert(key(&id), session.clone());
        Ok((id, session))
    }

    /// The live session of a cookie value, marked as used now.
    pub fn find(&self, id: &str) -> Result<ConsoleSession, Lookup> {
        let now = Instant::now();
        let mut held = self.held.lock().map_err(|_| Lookup::Missing)?;
        let k = key(id);
        let Some(s) = held.get_mut(&k) else {
            return Err(Lookup::Missing);
        };
        if self.expired(s, now) {
            held.remove(&k);
            return Err(Lookup::Expired);
        }
        s.last_used = now;
        Ok(s.clone())
    }

    /// Ends a session (logout).
    pub fn remove(&self, id: &str) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(&key(id));
        }
    }
}

/// The session id of a request's `Cookie` headers, if it carries the console's cookie.
pub fn cookie_value(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value that gives the browser its session.
pub fn set_cookie(id: &str, lifetime: Duration) -> String {
    format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        lifetime.as_secs()
    )
}

/// The `Set-Cookie` value that removes it.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Role, Tokens, hash_token};

    fn principal() -> Principal {
        let tokens = Tokens::parse(&format!(
            r#"{{"tokens": [{{"name": "ops", "sha256": "{}", "role": "operator", "agents": ["*"], "routes": ["*"]}}]}}"#,
            hash_token("t")
        ))
        .unwrap();
        tokens.find("t").unwrap().clone()
    }

    #[test]
    fn sessions_are_found_by_their_id_and_expire() {
        let store = Sessions::new(Duration::from_secs(60), Duration::from_secs(3600));
        let (id, s) = store.create(principal()).unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(s.csrf.len(), 64);
        assert_ne!(id, s.csrf);
        assert_eq!(store.find(&id).unwrap().principal.role, Role::Operator);
        assert_eq!(store.find(&"0".repeat(64)).unwrap_err(), Lookup::Missing);
        store.remove(&id);
        assert_eq!(store.find(&id).unwrap_err(), Lookup::Missing);

        let short = Sessions::new(Duration::ZERO, Duration::from_secs(3600));
        let (id, _) = short.create(principal()).unwrap();
        assert_eq!(short.find(&id).unwrap_err(), Lookup::Expired);
        assert_eq!(short.find(&id).unwrap_err(), Lookup::Missing);
    }

    #[test]
    fn the_cookie_is_read_only_in_its_own_shape() {
        let mut h = axum::http::HeaderMap::new();
        let id = "a".repeat(64);
        h.insert(
            axum::http::header::COOKIE,
            format!("other=1; {COOKIE}={id}").parse().unwrap(),
        );
        assert_eq!(cookie_value(&h), Some(id));
        let mut bad = axum::http::HeaderMap::new();
        bad.insert(
            axum::http::header::COOKIE,
            format!("{COOKIE}=short").parse().unwrap(),
        );
        assert_eq!(cookie_value(&bad), None);
        assert!(
            set_cookie("x", Duration::from_secs(5)).contains("HttpOnly; Secure; SameSite=Strict")
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
