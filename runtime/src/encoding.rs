//! Writing and loading tables: a compact binary form for deployment and JSON for people.
//!
//! Binary layout (all integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `AGPTABLE` |
//! | 8..12 | format version (`u32`) |
//! | 12..44 | source hash (SHA-256) |
//! | 44..52 | payload length (`u64`) |
//! | 52..84 | SHA-256 of the payload |
//! | 84.. | payload: the [`TableData`] in postcard encoding |
//!
//! Loading checks each field in order and refuses the table at the first problem, with a
//! [`LoadError`] that says which; nothing is used until the whole table validated.

use std::fmt;

use crate::FORMAT_VERSION;
use crate::decision_table::DecisionTable;
use crate::hash::ContentHash;
use crate::table::TableData;
use crate::validate::InvalidTable;

/// The first eight bytes of every binary table.
pub const MAGIC: [u8; 8] = *b"AGPTABLE";
const HEADER_LEN: usize = 84;

/// Why a table could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The bytes do not start with [`MAGIC`].
    NotATable,
    /// The table was written by another format version.
    UnsupportedVersion { found: u32, supported: u32 },
    /// The input ends before the header or payload does.
    Truncated { expected: u64, found: u64 },
    /// Bytes follow the payload.
    TrailingBytes { extra: u64 },
    /// The payload's checksum does not match the header: the file was damaged.
    Corrupted,
    /// The payload does not decode (or the JSON does not parse).
    Malformed(String),
    /// The header and the payload disagree on version or source hash.
    HeaderMismatch,
    /// The table decoded but failed validation.
    Invalid(InvalidTable),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotATable => f.write_str(
                "not an agentpolicy decision table (missing the AGPTABLE magic bytes); build one with `agentpolicy build`",
            ),
            LoadError::UnsupportedVersion { found, supported } => write!(
                f,
                "decision table format version {found} is not supported (this runtime reads version {supported}); rebuild the table with a matching `agentpolicy build`"
            ),
            LoadError::Truncated { expected, found } => write!(
                f,
                "decision table is truncated: expected {expected} bytes, found {found}"
            ),
            LoadError::TrailingBytes { extra } => write!(
                f,
                "decision table has {extra} unexpected bytes after its payload"
            ),
            LoadError::Corrupted => {
                f.write_str("decision table is corrupted: its payload checksum does not match")
            }
            LoadError::Malformed(why) => write!(f, "decision table does not decode: {why}"),
            LoadError::HeaderMismatch => f.write_str(
                "decision table header and payload disagree on format version or source hash",
            ),
            LoadError::Invalid(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

impl DecisionTable {
    /// The binary form: header, then the postcard-encoded data.
    ///
    /// ```
    /// use agentpolicy_runtime::{DecisionTable, FORMAT_VERSION, LoadError, TableData};
    /// let table = DecisionTable::new(TableData {
    ///     format_version: FORMAT_VERSION,
    ///     ..TableData::default()
    /// })
    /// .unwrap();
    /// let bytes = table.to_bytes();
    /// assert_eq!(DecisionTable::from_bytes(&bytes), Ok(table));
    /// assert_eq!(
    ///     DecisionTable::from_bytes(&bytes[..bytes.len() - 1]),
    ///     Err(LoadError::Truncated { expected: bytes.len() as u64, found: bytes.len() as u64 - 1 })
    /// );
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let data = self.data();
        // Serializing plain data to a Vec cannot fail; an empty payload would fail to
        // load, so a failure here can never produce a table that half-loads.
        let payload = postcard::to_allocvec(data).unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&data.format_version.to_le_bytes());
        out.extend_from_slice(&data.source_hash.0);
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&ContentHash::of(&payload).0);
        out.extend_from_slice(&payload);
        out
    }

    /// Loads and validates a binary table; see the module docs for the checks.
    pub fn from_bytes(bytes: &[u8]) -> Result<DecisionTable, LoadError> {
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes.get(..magic_len) != MAGIC.get(..magic_len) {
            return Err(LoadError::NotATable);
        }
        let header = bytes.get(..HEADER_LEN).ok_or(LoadError::Truncated {
            expected: HEADER_LEN as u64,
            found: bytes.len() as u64,
        })?;
        let version = u32::from_le_bytes(field(header, 8));
        if version != FORMAT_VERSION {
            return Err(LoadError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let source_hash = ContentHash(field(header, 12));
        let payload_len = u64::from_le_bytes(field(header, 44));
        let checksum = ContentHash(field(header, 52));
        let rest = bytes.get(HEADER_LEN..).unwrap_or(&[]);
        let rest_len = rest.len() as u64;
        if rest_len < payload_len {
            return Err(LoadError::Truncated {
                expected: HEADER_LEN as u64 + payload_len,
                found: bytes.len() as u64,
            });
        }
        if rest_len > payload_len {
            return Err(LoadError::TrailingBytes {
                extra: rest_len - payload_len,
            });
        }
        if ContentHash::of(rest) != checksum {
            return Err(LoadError::Corrupted);
        }
        let (data, leftover): (TableData, &[u8]) =
            postcard::take_from_bytes(rest).map_err(|e| LoadError::Malformed(e.to_string()))?;
        if !leftover.is_empty() {
            return Err(LoadError::Malformed(format!(
                "{} bytes left over after the table",
                leftover.len()
            )));
        }
        if data.format_version != version || data.source_hash != source_hash {
            return Err(LoadError::HeaderMismatch);
        }
        DecisionTable::new(data).map_err(LoadError::Invalid)
    }

    /// Pretty JSON, for inspection and diffing.
    ///
    /// ```
    /// use agentpolicy_runtime::{DecisionTable, FORMAT_VERSION, TableData};
    /// let table = DecisionTable::new(TableData {
    ///     format_version: FORMAT_VERSION,
    ///     ..TableData::default()
    /// })
    /// .unwrap();
    /// let json = table.to_json();
    /// assert!(json.contains("\"source_hash\": \"sha256:"));
    /// assert_eq!(DecisionTable::from_json(&json), Ok(table));
    /// ```
    pub fn to_json(&self) -> String {
        // Maps in the data have string keys and numbers are integers, so this cannot fail.
        serde_json::to_string_pretty(self.data()).unwrap_or_default()
    }

    /// Loads and validates a table from its JSON form.
    pub fn from_json(text: &str) -> Result<DecisionTable, LoadError> {
        let data: TableData =
            serde_json::from_str(text).map_err(|e| LoadError::Malformed(e.to_string()))?;
        if data.format_version != FORMAT_VERSION {
            return Err(LoadError::UnsupportedVersion {
                found: data.format_version,
                supported: FORMAT_VERSION,
            });
        }
        DecisionTable::new(data).map_err(LoadError::Invalid)
    }
}

/// `N` bytes of the header at `at`; the header's length is checked before any call.
fn field<const N: usize>(header: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(bytes) = header.get(at..at + N) {
        out.copy_from_slice(bytes);
    }
    out
}
