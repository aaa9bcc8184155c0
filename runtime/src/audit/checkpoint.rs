//! Checkpoints: the signed record that stands in for a run of records compaction removed.
//!
//! A checkpoint takes the place of records `from_seq..=to_seq`. Its `seq` is `from_seq`
//! and its `prev` is the first removed record's `prev` (the hash of the record before
//! the run), so it links back into the chain; it holds `last_hash`, the hash of the
//! last removed record, which is what the record after the run names as its `prev`, so
//! the chain continues through it. It states what was removed (how many records of
//! which kinds, the oldest and youngest time) and why (the retention clause and period,
//! the table it came from, the time of compaction), and `digest`, the SHA-256 of the
//! removed lines (each with its line end) in order, so an archive of them can be checked.
//!
//! Nothing later in the chain holds a checkpoint's own hash, so its integrity rests on
//! its ed25519 signature, over everything it says (see [`signed_message`]). Verification
//! checks the signature against the key the checkpoint names, and against a key the
//! verifier trusts when one is given; only the latter rules out a forger who re-signs
//! with a key of their own.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::{Signature, Signer, Verifier};
use serde::{Deserialize, Serialize};

use super::record::Record;
use crate::Period;
use crate::hash::ContentHash;

/// What a checkpoint record says about the records it replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub from_seq: u64,
    pub to_seq: u64,
    /// How many records were removed (`to_seq - from_seq + 1`).
    pub removed: u64,
    /// How many of each kind (`decision`, `result`, ...).
    pub kinds: BTreeMap<String, u64>,
    /// The time of the oldest and of the youngest removed record, in ms since the epoch.
    pub oldest_ms: i64,
    pub youngest_ms: i64,
    /// The hash of record `to_seq`: the `prev` of the record after the run.
    pub last_hash: ContentHash,
    /// SHA-256 of the removed lines, each with its `\n`, in order.
    pub digest: ContentHash,
    /// The clause that allowed the removal, as the policy writes it.
    pub rule: String,
    /// Its period: every removed record was at least this old at the checkpoint's time.
    pub period: Period,
    /// The key that signed: `ed25519:` and 64 hex digits.
    pub key: String,
    /// The ed25519 signature of [`signed_message`], 128 hex digits.
    pub signature: String,
}

/// The bytes a checkpoint's signature covers: a fixed prefix, then the JSON of the
/// record's `seq`, `time_ms`, `prev`, `table` and the checkpoint without its signature.
/// It is rebuilt from the parsed record, so it does not depend on how the line spaces
/// or orders its fields; what it says is what is signed.
pub fn signed_message(record: &Record, checkpoint: &Checkpoint) -> Vec<u8> {
    let mut unsigned = checkpoint.clone();
    unsigned.signature = String::new();
    let mut out = b"agentpolicy audit checkpoint v1\n".to_vec();
    let body = serde_json::to_vec(&(
        record.seq,
        record.time_ms,
        record.prev,
        record.table,
        &unsigned,
    ))
    .unwrap_or_default();
    out.extend_from_slice(&body);
    out
}

/// A key that signs checkpoints. Its text form (a key file) is `ed25519-secret:` and the
/// 64 hex digits of its seed; keep it where only the compacting operator can read it.
///
/// ```
/// use agentpolicy_runtime::audit::SigningKey;
/// let key = SigningKey::from_seed([7; 32]);
/// let again: SigningKey = key.to_text().parse().unwrap();
/// assert_eq!(again.public(), key.public());
/// assert!(format!("{key:?}").contains("ed25519:"), "Debug shows only the public key");
/// ```
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

/// The public half: `ed25519:` and 64 hex digits, as checkpoints name it.
///
/// ```
/// use agentpolicy_runtime::audit::{PublicKey, SigningKey};
/// let public = SigningKey::from_seed([7; 32]).public();
/// let text = public.to_string();
/// assert!(text.starts_with("ed25519:"));
/// assert_eq!(text.parse::<PublicKey>(), Ok(public));
/// assert!("ed25519:xyz".parse::<PublicKey>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

const SECRET_PREFIX: &str = "ed25519-secret:";
const PUBLIC_PREFIX: &str = "ed25519:";

impl SigningKey {
    /// The key of a 32-byte seed (from a good random source: `audit keygen`).
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The key file's text, without a line end.
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", hex(&self.0.to_bytes()))
    }

    /// Signs a checkpoint record: sets its `key` and `signature`.
    pub fn sign(&self, record: &mut Record) {
        let Some(mut cp) = record.checkpoint.take() else {
            return;
        };
        cp.key = self.public().to_string();
        let signature = self.0.sign(&signed_message(record, &cp));
        cp.signature = hex(&signature.to_bytes());
        record.checkpoint = Some(cp);
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public())
    }
}

impl std::str::FromStr for SigningKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let Some(digits) = s.strip_prefix(SECRET_PREFIX) else {
            return Err(if s.starts_with(PUBLIC_PREFIX) {
                "this is a public key; compaction signs with the secret key (the file `audit keygen` wrote without `.pub`)".into()
            } else {
                format!(
                    "expected `{SECRET_PREFIX}` and 64 hex digits (a file from `agentpolicy audit keygen`)"
                )
            });
        };
        let seed = unhex::<32>(digits)
            .ok_or_else(|| format!("expected 64 hex digits after `{SECRET_PREFIX}`"))?;
        Ok(SigningKey::from_seed(seed))
    }
}

impl PublicKey {
    /// Whether `signature` (hex) is this key's signature of `message`.
    fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Some(bytes) = unhex::<64>(signature) else {
            return false;
        };
        self.0
            .verify(message, &Signature::from_bytes(&bytes))
            .is_ok()
    }

    /// A short name for people: the first 16 hex digits.
    pub fn fingerprint(&self) -> String {
        let mut text = hex(self.0.as_bytes());
        text.truncate(16);
        text
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex(self.0.as_bytes()))
    }
}

impl std::str::FromStr for PublicKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with(SECRET_PREFIX) {
            return Err("this is a secret key; verification takes the public key (the `.pub` file `audit keygen` wrote)".into());
        }
        let digits = s
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or_else(|| format!("expected `{PUBLIC_PREFIX}` and 64 hex digits"))?;
        let bytes = unhex::<32>(digits)
            .ok_or_else(|| format!("expected 64 hex digits after `{PUBLIC_PREFIX}`"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| "not a valid ed25519 public key".to_string())
    }
}

/// How a checkpoint's signature checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Valid for the key the checkpoint names (and that key is the trusted one, if one
    /// was given).
    Valid,
    /// The checkpoint names no valid key, or the signature does not verify: it was
    /// altered after signing, or forged.
    Invalid,
    /// Valid for the key it names, but that is not the trusted key.
    OtherKey,
}

/// Checks a checkpoint record's signature; see [`SignatureCheck`].
pub fn check_signature(
    record: &Record,
    checkpoint: &Checkpoint,
    trusted: Option<&PublicKey>,
) -> SignatureCheck {
    let Ok(key) = checkpoint.key.parse::<PublicKey>() else {
        return SignatureCheck::Invalid;
    };
    if !key.verifies(&signed_message(record, checkpoint), &checkpoint.signature) {
        return SignatureCheck::Invalid;
    }
    match trusted {
        Some(t) if *t != key => SignatureCheck::OtherKey,
        _ => SignatureCheck::Valid,
    }
}

/// What an archive holds of the records a checkpoint removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveMatch {
    /// The archive holds the run, byte for byte: its lines hash to the checkpoint's
    /// `digest`.
    Matches,
    /// The archive holds a run starting where the checkpoint's does, but its lines do
    /// not hash to the `digest`: they were changed.
    Differs,
    /// The archive does not hold the run (or not all of it).
    Missing,
}

/// Looks for the run a checkpoint removed in an archive (lines `compact --archive`
/// appended, possibly from many compactions and logs): consecutive lines numbered
/// `from_seq..=to_seq`, the first linking to `prev` (the checkpoint record's), then
/// compares their SHA-256 with the checkpoint's `digest`.
pub fn match_archive(archive: &[u8], prev: ContentHash, checkpoint: &Checkpoint) -> ArchiveMatch {
    let lines: Vec<(&[u8], Option<Record>)> = archive
        .split_inclusive(|b| *b == b'\n')
        .map(|raw| {
            let body = raw.strip_suffix(b"\n").unwrap_or(raw);
            (raw, super::record::decode(body).ok().map(|d| d.record))
        })
        .collect();
    let Some(len) = usize::try_from(checkpoint.removed).ok().filter(|n| *n > 0) else {
        return ArchiveMatch::Missing;
    };
    let mut found = ArchiveMatch::Missing;
    for start in 0..lines.len() {
        let starts_run = lines.get(start).is_some_and(|(_, r)| {
            r.as_ref()
                .is_some_and(|r| r.seq == checkpoint.from_seq && r.prev == prev)
        });
        if !starts_run {
            continue;
        }
        let Some(run) = lines.get(start..start.saturating_add(len)) else {
            continue;
        };
        let numbered = run.iter().enumerate().all(|(i, (_, r))| {
            r.as_ref()
                .is_some_and(|r| r.seq == checkpoint.from_seq + i as u64)
        });
        if !numbered {
            continue;
        }
        let bytes: Vec<u8> = run
            .iter()
            .flat_map(|(raw, _)| raw.iter().copied())
            .collect();
        if ContentHash::of(&bytes) == checkpoint.digest {
            return ArchiveMatch::Matches;
        }
        found = ArchiveMatch::Differs;
    }
    found
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in text.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::RecordKind;

    fn checkpoint_record() -> Record {
        let mut r = Record::new(RecordKind::Checkpoint, 1_000);
        r.seq = 3;
        r.checkpoint = Some(Checkpoint {
            from_seq: 3,
            to_seq: 9,
            removed: 7,
            kinds: BTreeMap::from([("decision".to_string(), 7)]),
            oldest_ms: 1,
            youngest_ms: 2,
            last_hash: ContentHash::of(b"x"),
            digest: ContentHash::of(b"y"),
            rule: "retain audit 1d".into(),
            period: Period {
                years: 0,
                ms: 86_400_000,
            },
            key: String::new(),
            signature: String::new(),
        });
        r
    }

    #[test]
    fn a_signature_verifies_until_anything_signed_changes() {
        let key = SigningKey::from_seed([1; 32]);
        let mut r = checkpoint_record();
        key.sign(&mut r);
        let cp = r.checkpoint.clone().unwrap();
        assert_eq!(check_signature(&r, &cp, None), SignatureCheck::Valid);
        assert_eq!(
            check_signature(&r, &cp, Some(&key.public())),
            SignatureCheck::Valid
        );
        let other = SigningKey::from_seed([2; 32]).public();
        assert_eq!(
            check_signature(&r, &cp, Some(&other)),
            SignatureCheck::OtherKey
        );
        let mut altered = cp.clone();
        altered.removed = 6;
        assert_eq!(check_signature(&r, &altered, None), SignatureCheck::Invalid);
        let mut moved = r.clone();
        moved.time_ms += 1;
        assert_eq!(check_signature(&moved, &cp, None), SignatureCheck::Invalid);
    }

    #[test]
    fn key_texts_are_checked() {
        assert!("ed25519-secret:zz".parse::<SigningKey>().is_err());
        let public = SigningKey::from_seed([3; 32]).public().to_string();
        assert!(
            public
                .parse::<SigningKey>()
                .unwrap_err()
                .contains("public key")
        );
        let secret = SigningKey::from_seed([3; 32]).to_text();
        assert!(
            secret
                .parse::<PublicKey>()
                .unwrap_err()
                .contains("secret key")
        );
    }
}
