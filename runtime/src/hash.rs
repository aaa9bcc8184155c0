//! Content hashes: the SHA-256 that names a policy's sources in every audit record, and
//! the checksum that guards a binary table's payload.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::FORMAT_VERSION;

/// A SHA-256 digest. Shown and written to JSON as `sha256:` and 64 hex digits.
///
/// ```
/// use agentpolicy_runtime::ContentHash;
/// let h = ContentHash::of(b"abc");
/// assert!(h.to_string().starts_with("sha256:ba7816bf"));
/// assert_eq!(h.to_string().parse::<ContentHash>(), Ok(h));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// The SHA-256 of some bytes.
    pub fn of(bytes: &[u8]) -> ContentHash {
        ContentHash(Sha256::digest(bytes).into())
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write as _;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

/// Why a text is not a content hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseHashError;

impl std::fmt::Display for ParseHashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("expected a content hash: `sha256:` followed by 64 hex digits")
    }
}

impl std::error::Error for ParseHashError {}

impl std::str::FromStr for ContentHash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s).as_bytes();
        if hex.len() != 64 {
            return Err(ParseHashError);
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let digit = |c: u8| (c as char).to_digit(16).ok_or(ParseHashError);
            *byte = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Ok(ContentHash(out))
    }
}

impl Serialize for ContentHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(D::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(ContentHash)
        }
    }
}

/// The content hash of a policy's sources, as stored in its decision table.
///
/// It depends on the files' contents and their paths relative to the policy's root
/// only, never on how the root was typed: `pa`, `./pa`, `pa/` and `/abs/pa` give one
/// hash, so the signed matrix, the deployed table and the audit records name the same
/// policy ([`policy_relative_paths`]). Files are sorted by relative path; line endings
/// are normalised (CRLF to LF) so a checkout on another platform hashes the same. The
/// hash covers the table format version, each relative path and each normalised text,
/// every part length-prefixed so no two different inputs share an encoding.
///
/// ```
/// use agentpolicy_runtime::source_hash;
/// let a = source_hash(&[("b.agentpolicy", "x\r\ny"), ("a.agentpolicy", "z")]);
/// let b = source_hash(&[("a.agentpolicy", "z"), ("b.agentpolicy", "x\ny")]);
/// assert_eq!(a, b);
/// assert_ne!(a, source_hash(&[("a.agentpolicy", "z")]));
/// let typed = |root: &str| {
///     source_hash(&[
///         (format!("{root}a.agentpolicy"), "z"),
///         (format!("{root}sub/b.agentpolicy"), "y"),
///     ])
/// };
/// assert_eq!(typed("pa/"), typed("./pa/"));
/// assert_eq!(typed("pa/"), typed("/home/me/pa/"));
/// assert_eq!(typed("pa/"), typed(""));
/// ```
pub fn source_hash<P: AsRef<str>, T: AsRef<str>>(files: &[(P, T)]) -> ContentHash {
    let relative = policy_relative_paths(files.iter().map(|(p, _)| p.as_ref()));
    let mut sorted: Vec<(&str, &str)> = relative
        .iter()
        .zip(files)
        .map(|(p, (_, t))| (p.as_str(), t.as_ref()))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    hasher.update(b"agentpolicy-sources\0");
    hasher.update(FORMAT_VERSION.to_le_bytes());
    hasher.update((sorted.len() as u64).to_le_bytes());
    for (path, text) in sorted {
        let text = text.replace("\r\n", "\n");
        hasher.update((path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    ContentHash(hasher.finalize().into())
}

/// Each path relative to the policy's root: the longest directory all the paths share
/// is removed (for one file, its directory), `\\` becomes `/`, and `.` components go.
/// The root is where the policy's files are, however it was spelled on the command line
/// or in an editor's file URI. Virtual paths such as the standard library's
/// `<stdlib>/legal.agentpolicy` are already independent of any root and stay as they are.
///
/// ```
/// use agentpolicy_runtime::policy_relative_paths;
/// assert_eq!(policy_relative_paths(["./pa/x.agentpolicy"]), ["x.agentpolicy"]);
/// assert_eq!(
///     policy_relative_paths(["/w/pa/x.agentpolicy", "<stdlib>/legal.agentpolicy"]),
///     ["x.agentpolicy", "<stdlib>/legal.agentpolicy"]
/// );
/// assert_eq!(
///     policy_relative_paths(["/w/pa/x.agentpolicy", "/w/pa/sub/y.agentpolicy"]),
///     ["x.agentpolicy", "sub/y.agentpolicy"]
/// );
/// ```
pub fn policy_relative_paths<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let split: Vec<Vec<&str>> = paths
        .into_iter()
        .map(|p| {
            p.split(['/', '\\'])
                .filter(|c| !c.is_empty() && *c != ".")
                .collect()
        })
        .collect();
    let is_virtual = |c: &[&str]| c.first().is_some_and(|first| first.starts_with('<'));
    // Directories only: the last component of each path is its file name.
    let common = split
        .iter()
        .filter(|c| !is_virtual(c))
        .map(|c| &c[..c.len().saturating_sub(1)])
        .reduce(|a, b| {
            let n = a.iter().zip(b).take_while(|(x, y)| x == y).count();
            &a[..n]
        })
        .map_or(0, <[&str]>::len);
    split
        .iter()
        .map(|c| {
            let skip = if is_virtual(c) {
                0
            } else {
                common.min(c.len())
            };
            c[skip..].join("/")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_bad_text() {
        assert_eq!("sha256:12".parse::<ContentHash>(), Err(ParseHashError));
        let bad = format!("sha256:{}", "g".repeat(64));
        assert_eq!(bad.parse::<ContentHash>(), Err(ParseHashError));
        let ok = "ab".repeat(32);
        assert_eq!(ok.parse::<ContentHash>(), Ok(ContentHash([0xab; 32])));
    }

    #[test]
    fn path_and_text_boundaries_are_unambiguous() {
        assert_ne!(source_hash(&[("ab", "c")]), source_hash(&[("a", "bc")]));
    }

    #[test]
    fn json_form_is_the_display_form() {
        let h = ContentHash([7; 32]);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{h}\""));
        assert_eq!(serde_json::from_str::<ContentHash>(&json).unwrap(), h);
    }
}
