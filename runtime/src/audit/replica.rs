//! [`ReplicaId`]: the name of one engine replica among several that share their state
//! (`agentpolicy serve --state … --replica-id ID`). Each replica keeps its own audit
//! log, its own hash chain; the engine writes the id into every record it appends, in
//! the hashed line, so it cannot be edited, and `agentpolicy audit verify|query` use
//! it to tell the logs apart when they merge them.

use std::fmt;

/// The longest replica id, in bytes.
pub const MAX_REPLICA_ID: usize = 64;

/// A validated replica id: 1 to [`MAX_REPLICA_ID`] ASCII letters, digits, `.`, `_` or
/// `-`, starting with a letter or digit (a pod, host or service name fits).
///
/// ```
/// use agentpolicy_runtime::audit::ReplicaId;
/// let id: ReplicaId = "api-7f9c.eu_1".parse().unwrap();
/// assert_eq!(id.as_str(), "api-7f9c.eu_1");
/// assert!("".parse::<ReplicaId>().is_err());
/// assert!("-a".parse::<ReplicaId>().is_err());
/// assert!("a b".parse::<ReplicaId>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplicaId(String);

/// Why a text is not a replica id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaIdError {
    Empty,
    TooLong { len: usize },
    BadStart { found: char },
    BadChar { found: char, at: usize },
}

impl fmt::Display for ReplicaIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HINT: &str = "use 1 to 64 ASCII letters, digits, `.`, `_` or `-`, starting with a letter or digit, e.g. a pod or host name";
        match self {
            ReplicaIdError::Empty => write!(f, "the replica id is empty; {HINT}"),
            ReplicaIdError::TooLong { len } => write!(
                f,
                "the replica id is {len} bytes long, more than {MAX_REPLICA_ID}; {HINT}"
            ),
            ReplicaIdError::BadStart { found } => write!(
                f,
                "the replica id starts with `{}`; {HINT}",
                found.escape_default()
            ),
            ReplicaIdError::BadChar { found, at } => write!(
                f,
                "the replica id has `{}` at byte {at}; {HINT}",
                found.escape_default()
            ),
        }
    }
}

impl std::error::Error for ReplicaIdError {}

impl std::str::FromStr for ReplicaId {
    type Err = ReplicaIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(first) = s.chars().next() else {
            return Err(ReplicaIdError::Empty);
        };
        if s.len() > MAX_REPLICA_ID {
            return Err(ReplicaIdError::TooLong { len: s.len() });
        }
        if !first.is_ascii_alphanumeric() {
            return Err(ReplicaIdError::BadStart { found: first });
        }
        if let Some((at, found)) = s
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(ReplicaIdError::BadChar { found, at });
        }
        Ok(ReplicaId(s.to_owned()))
    }
}

impl ReplicaId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_for_length_and_characters() {
        assert!("a".parse::<ReplicaId>().is_ok());
        assert!("a".repeat(64).parse::<ReplicaId>().is_ok());
        assert_eq!(
            "a".repeat(65).parse::<ReplicaId>(),
            Err(ReplicaIdError::TooLong { len: 65 })
        );
        assert_eq!("".parse::<ReplicaId>(), Err(ReplicaIdError::Empty));
        assert_eq!(
            ".a".parse::<ReplicaId>(),
            Err(ReplicaIdError::BadStart { found: '.' })
        );
        assert_eq!(
            "a/b".parse::<ReplicaId>(),
            Err(ReplicaIdError::BadChar { found: '/', at: 1 })
        );
        assert_eq!(
            "aé".parse::<ReplicaId>(),
            Err(ReplicaIdError::BadChar { found: 'é', at: 1 })
        );
        let e = "a\nb".parse::<ReplicaId>().unwrap_err().to_string();
        assert!(e.contains("`\\n` at byte 1"), "{e}");
        assert!(e.contains("1 to 64 ASCII letters"), "{e}");
    }
}
