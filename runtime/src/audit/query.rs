//! [`query`]: the records of a log that match a [`Filter`]. Reads only; lines that are
//! not records (a torn tail, a damaged line) are counted and skipped, since `verify` is
//! the tool that judges them.

use std::io::{self, BufRead};

use super::record::{Record, RecordKind, decode};
use crate::decision::Outcome;

/// Which records to keep; every field that is set must match.
///
/// ```
/// use agentpolicy_runtime::audit::{Filter, Record, RecordKind};
/// use agentpolicy_runtime::Outcome;
/// let mut r = Record::new(RecordKind::Decision, 5_000);
/// r.agent = Some("intake".into());
/// r.outcome = Some(Outcome::Deny);
/// let f = Filter { agent: Some("intake".into()), since_ms: Some(5_000), ..Filter::default() };
/// assert!(f.matches(&r));
/// let f = Filter { outcome: Some(Outcome::Allow), ..Filter::default() };
/// assert!(!f.matches(&r));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub agent: Option<String>,
    pub tool: Option<String>,
    /// Matches the policy's outcome (the would-be outcome in shadow mode) or, for
    /// resolution records, the outcome of the resolution.
    pub outcome: Option<Outcome>,
    /// Records at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Records before this time.
    pub until_ms: Option<i64>,
    pub session: Option<String>,
    pub kind: Option<RecordKind>,
}

impl Filter {
    pub fn matches(&self, r: &Record) -> bool {
        fn eq(want: &Option<String>, have: &Option<String>) -> bool {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        }
        eq(&self.agent, &r.agent)
            && eq(&self.tool, &r.tool)
            && eq(&self.session, &r.session)
            && self.outcome.is_none_or(|o| r.outcome == Some(o))
            && self.since_ms.is_none_or(|t| r.time_ms >= t)
            && self.until_ms.is_none_or(|t| r.time_ms < t)
            && self.kind.is_none_or(|k| r.kind == k)
    }
}

/// The matching records, in file order, and how many lines were skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    pub records: Vec<Record>,
    pub skipped_lines: u64,
    /// The replica ids of every record read (matching or not), in order of first
    /// appearance.
    pub replicas: Vec<String>,
}

/// Reads a log and returns the records that match `filter`.
///
/// ```
/// use agentpolicy_runtime::audit::{query, Filter};
/// let result = query(&b"not a record\n"[..], &Filter::default()).unwrap();
/// assert!(result.records.is_empty());
/// assert_eq!(result.skipped_lines, 1);
/// ```
pub fn query<R: BufRead>(mut reader: R, filter: &Filter) -> io::Result<QueryResult> {
    let mut out = QueryResult::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        match decode(&buf) {
            Ok(d) => {
                if let Some(id) = &d.record.replica
                    && !out.replicas.contains(id)
                {
                    out.replicas.push(id.clone());
                }
                if filter.matches(&d.record) {
                    out.records.push(d.record);
                }
            }
            Err(_) => out.skipped_lines += 1,
        }
    }
    Ok(out)
}

/// Reads every record of a log for an engine to restart from
/// (`EngineConfig::restore`), refusing a log that does not hold together: a line that
/// is not a record or whose content does not match its hash, or a record whose `prev`
/// is not the hash of the record before it (outside a compaction's checkpoint). The
/// error names the line; `agentpolicy audit verify` says more. A last line without its
/// newline (a torn tail, never acknowledged) is left out: [`super::AuditLog::open`]
/// removes it.
///
/// ```
/// use agentpolicy_runtime::audit::read_records;
/// assert!(read_records(&b""[..]).unwrap().is_empty());
/// let err = read_records(&b"not a record\n"[..]).unwrap_err();
/// assert!(err.to_string().contains("line 1"));
/// ```
pub fn read_records<R: BufRead>(mut reader: R) -> io::Result<Vec<Record>> {
    let mut out: Vec<Record> = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut prev: Option<crate::hash::ContentHash> = None;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        if buf.last() != Some(&b'\n') {
            break;
        }
        buf.pop();
        let bad = |why: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {line}: {why}; run `agentpolicy audit verify` on the log"),
            )
        };
        let d = decode(&buf).map_err(|why| bad(format!("not an audit record ({why})")))?;
        if d.stored != d.computed {
            return Err(bad("the record's content does not match its hash".into()));
        }
        // Compaction removes runs of records: the chain is checked between them.
        let checkpoint = d.record.kind == RecordKind::Checkpoint;
        let after_checkpoint = out.last().is_some_and(|r| r.kind == RecordKind::Checkpoint);
        if let Some(p) = prev
            && d.record.prev != p
            && !checkpoint
            && !after_checkpoint
        {
            return Err(bad(
                "the record's `prev` is not the hash of the record before it".into(),
            ));
        }
        prev = Some(d.stored);
        out.push(d.record);
    }
    Ok(out)
}
