//! Bearer tokens: the tokens file (JSON or TOML) holding only SHA-256 hashes of the
//! tokens, each with a name, a role and a scope; finding the caller of a request by
//! its `Authorization: Bearer …` header in constant time per entry; and what each role
//! may do. It never holds a token in clear text beyond the request that carried it.

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The largest tokens file read, in bytes.
pub const MAX_TOKENS_FILE_BYTES: usize = 1 << 20;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Opens sessions, decides and reports calls, waits on its escalations: only for
    /// the agents in its scope. Never resolves, kills, resumes, resets or reloads.
    Agent,
    /// Resolves escalations of its routes; kills, resumes and resets the agents in its
    /// scope; reloads the table; reads status, metrics and escalations.
    Operator,
    /// Reads status, metrics and escalations; changes nothing.
    Auditor,
}

impl Role {
    pub fn keyword(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
        }
    }
}

/// A set of names, or every name (`"*"`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    all: bool,
    names: Vec<String>,
}

impl Scope {
    fn of(names: Vec<String>) -> Scope {
        Scope {
            all: names.iter().any(|n| n == "*"),
            names,
        }
    }

    pub fn allows(&self, name: &str) -> bool {
        self.all || self.names.iter().any(|n| n == name)
    }

    /// Holds `*`.
    pub fn is_all(&self) -> bool {
        self.all
    }
}

/// One entry of the tokens file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    name: String,
    /// SHA-256 of the token, 64 hex digits (`sha256sum` output), optionally prefixed
    /// `sha256:`.
    sha256: String,
    role: Role,
    #[serde(default)]
    agents: Vec<String>,
    #[serde(default)]
    routes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<EntryFile>,
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// The agents it may act for (agents) or control (operators).
    pub agents: Scope,
    /// The routes whose escalations it may resolve (operators).
    pub routes: Scope,
}

#[derive(Debug, Clone)]
struct Entry {
    hash: [u8; 32],
    principal: Principal,
}

/// The tokens a service accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

impl Tokens {
    /// Reads a tokens file: JSON when it starts with `{`, TOML otherwise. Every entry
    /// needs a name (unique), a `sha256` of 64 hex digits and a role; a token's hash
    /// may appear once.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        if text.len() > MAX_TOKENS_FILE_BYTES {
            return Err(format!(
                "the tokens file is larger than {MAX_TOKENS_FILE_BYTES} bytes"
            ));
        }
        let file: TokensFile = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| format!("not a tokens file (JSON): {e}"))?
        } else {
            toml::from_str(text).map_err(|e| format!("not a tokens file (TOML): {e}"))?
        };
        let mut entries: Vec<Entry> = Vec::new();
        for (i, e) in file.tokens.into_iter().enumerate() {
            let at = format!("token #{} (`{}`)", i + 1, e.name);
            if e.name.trim().is_empty() {
                return Err(format!("token #{}: `name` is empty", i + 1));
            }
            let hash = parse_hash(&e.sha256).map_err(|why| format!("{at}: `sha256`: {why}"))?;
            if entries.iter().any(|x| x.principal.name == e.name) {
                return Err(format!("{at}: the name is used by another token"));
            }
            if entries.iter().any(|x| x.hash == hash) {
                return Err(format!("{at}: the same token hash appears twice"));
            }
            if e.role == Role::Agent && e.agents.is_empty() {
                return Err(format!(
                    "{at}: an agent token needs `agents`, the agents it may act for"
                ));
            }
            if e.role != Role::Operator && !e.routes.is_empty() {
                return Err(format!("{at}: only operator tokens have `routes`"));
            }
            entries.push(Entry {
                hash,
                principal: Principal {
                    name: e.name,
                    role: e.role,
                    agents: Scope::of(e.agents),
                    routes: Scope::of(e.routes),
                },
            });
        }
        if entries.is_empty() {
            return Err("the tokens file lists no token".into());
        }
        Ok(Tokens { entries })
    }

    /// The principal whose token this is. Every entry is compared, each in constant
    /// time, so the time taken does not say which entry (or how much of one) matched.
    pub fn find(&self, token: &str) -> Option<&Principal> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for e in &self.entries {
            if constant_time_eq(&e.hash, &hash) {
                found = Some(&e.principal);
            }
        }
        found
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The hex SHA-256 of a token, as the tokens file holds it.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let hex = text.trim();
    let hex = hex.strip_prefix("sha256:").unwrap_or(hex);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("expected 64 hex digits (the output of `sha256sum`)".into());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = hex.get(2 * i..2 * i + 2).unwrap_or("00");
        *byte = u8::from_str_radix(pair, 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> String {
        format!(
            r#"{{"tokens": [
              {{"name": "bot", "sha256": "{}", "role": "agent", "agents": ["research"]}},
              {{"name": "ops", "sha256": "sha256:{}", "role": "operator", "agents": ["*"], "routes": ["paralegals"]}}
            ]}}"#,
            hash_token("agent-secret"),
            hash_token("ops-secret")
        )
    }

    #[test]
    fn tokens_are_found_by_their_hash_only() {
        let tokens = Tokens::parse(&file()).unwrap();
        let bot = tokens.find("agent-secret").unwrap();
        assert_eq!((bot.name.as_str(), bot.role), ("bot", Role::Agent));
        assert!(bot.agents.allows("research") && !bot.agents.allows("billing"));
        let ops = tokens.find("ops-secret").unwrap();
        assert!(ops.agents.allows("anyone") && ops.agents.is_all());
        assert!(ops.routes.allows("paralegals") && !ops.routes.allows("partners"));
        assert!(tokens.find("wrong").is_none());
        assert!(tokens.find(&hash_token("agent-secret")).is_none());
    }

    #[test]
    fn toml_files_too() {
        let text = format!(
            "[[tokens]]\nname = \"audit\"\nsha256 = \"{}\"\nrole = \"auditor\"\n",
            hash_token("a")
        );
        let tokens = Tokens::parse(&text).unwrap();
        assert_eq!(tokens.find("a").map(|p| p.role), Some(Role::Auditor));
    }

    #[test]
    fn bad_files_are_refused_with_the_entry_named() {
        let bad = |t: &str| Tokens::parse(t).unwrap_err();
        assert!(bad(r#"{"tokens": []}"#).contains("no token"));
        assert!(
            bad(
                r#"{"tokens": [{"name": "x", "sha256": "abc", "role": "agent", "agents": ["a"]}]}"#
            )
            .contains("64 hex digits")
        );
        let h = hash_token("t");
        assert!(
            bad(&format!(
                r#"{{"tokens": [{{"name": "x", "sha256": "{h}", "role": "agent"}}]}}"#
            ))
            .contains("needs `agents`")
        );
        assert!(
            bad(&format!(
                r#"{{"tokens": [{{"name": "x", "sha256": "{h}", "role": "root"}}]}}"#
            ))
            .contains("unknown variant")
        );
        assert!(
            bad(&format!(
                r#"{{"tokens": [{{"name": "x", "sha256": "{h}", "role": "auditor"}}, {{"name": "y", "sha256": "{h}", "role": "auditor"}}]}}"#
            ))
            .contains("twice")
        );
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
