//! [`compact`]: applies a retention schedule to a log, in memory. It removes every record
//! that has been kept for the longest period that applies to it, and puts one signed
//! checkpoint record (see [`super::checkpoint`]) in place of each run of removed records,
//! so the chain still verifies. It never removes a checkpoint, nor the log's last record
//! (the head that anchors and the `close` seal refer to).
//!
//! A run is a maximal stretch of consecutive removable records that fall under the same
//! clause: each checkpoint cites one clause, which verification holds it to. Removal in
//! the middle of a log (a sensitive record kept between old ones) therefore splits the
//! removed records into several runs, one checkpoint each.
//!
//! It does no IO: the CLI reads the log, writes the result to a temp file and renames it.

use std::collections::BTreeMap;
use std::fmt;

use super::checkpoint::{Checkpoint, SigningKey};
use super::record::{Record, RecordKind, decode, encode};
use super::verify::{VerifyReport, verify};
use crate::hash::ContentHash;
use crate::{Period, RecordTier, Retention, TierId};

/// What compaction needs besides the log.
#[derive(Debug, Clone, Copy)]
pub struct CompactConfig<'a> {
    pub retention: &'a Retention,
    /// The table's tier names, lowest first (what `TierId`s index).
    pub tiers: &'a [String],
    /// The content hash of the table the schedule came from; checkpoints name it.
    pub table: ContentHash,
    /// The time compaction counts from, in ms since the epoch.
    pub now_ms: i64,
    /// Compact a log whose last record is not `close` (its writer crashed). Never use it
    /// on a log a writer still has open: its later appends would go to the replaced file.
    pub force: bool,
}

/// One run of removed records, as its checkpoint states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedRun {
    pub checkpoint: Checkpoint,
    /// The 1-based line the run started at in the input.
    pub line: u64,
}

/// The result: the new log, the removed lines, and what was removed.
#[derive(Debug, Clone, Default)]
pub struct Compaction {
    /// The compacted log; equal to the input when nothing was removed.
    pub log: Vec<u8>,
    /// The removed lines, each with its `\n`, in order (for an archive).
    pub removed_lines: Vec<u8>,
    pub runs: Vec<RemovedRun>,
    /// Records in the input and in the output (checkpoints included).
    pub records_before: u64,
    pub records_after: u64,
}

impl Compaction {
    pub fn removed(&self) -> u64 {
        self.runs.iter().map(|r| r.checkpoint.removed).sum()
    }
}

/// Why a log was not compacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompactError {
    /// The log does not verify: compacting would hide the evidence.
    NotIntact(Box<VerifyReport>),
    /// The log ends in a torn tail (a writer crashed mid-write).
    TornTail,
    /// The last record is not `close`: a writer may still have it open.
    NotSealed,
    /// The schedule has no clause: nothing may ever be removed.
    NoSchedule,
    /// A record could not be read back or written again. Verification reads every line
    /// first, so this means the log changed under compaction or a bug.
    Unreadable,
}

impl fmt::Display for CompactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompactError::NotIntact(report) => {
                write!(
                    f,
                    "the log does not verify ({} problem(s)",
                    report.problems.len()
                )?;
                if let Some(p) = report.problems.first() {
                    write!(f, "; first: {p}")?;
                }
                write!(f, "); compacting it would hide the evidence")
            }
            CompactError::TornTail => write!(
                f,
                "the log ends in a torn tail (a crashed write); open it with the engine once so it recovers the tail and closes cleanly"
            ),
            CompactError::NotSealed => write!(
                f,
                "the log's last record is not `close`: a writer may still have it open, and its later appends would be lost"
            ),
            CompactError::NoSchedule => write!(
                f,
                "the policy sets no retention (`retain audit PERIOD`): no record may be removed"
            ),
            CompactError::Unreadable => write!(
                f,
                "a record could not be read back or written again; nothing was changed"
            ),
        }
    }
}

impl std::error::Error for CompactError {}

struct Line<'a> {
    bytes: &'a [u8],
    record: Record,
    stored: ContentHash,
}

/// Compacts a log held in memory; see the module docs.
///
/// ```
/// use agentpolicy_runtime::audit::{CompactConfig, CompactError, compact};
/// use agentpolicy_runtime::{ContentHash, Retention};
/// let cfg = CompactConfig {
///     retention: &Retention::default(),
///     tiers: &[],
///     table: ContentHash::default(),
///     now_ms: 0,
///     force: false,
/// };
/// let key = agentpolicy_runtime::audit::SigningKey::from_seed([9; 32]);
/// assert_eq!(compact(b"", &cfg, &key).unwrap_err(), CompactError::NoSchedule);
/// ```
pub fn compact(
    input: &[u8],
    cfg: &CompactConfig<'_>,
    key: &SigningKey,
) -> Result<Compaction, CompactError> {
    if cfg.retention.is_empty() {
        return Err(CompactError::NoSchedule);
    }
    let report = verify(input).map_err(|_| CompactError::Unreadable)?;
    if !report.is_intact() {
        return Err(CompactError::NotIntact(Box::new(report)));
    }
    if report.torn_tail.is_some() {
        return Err(CompactError::TornTail);
    }
    if !report.sealed && !cfg.force && report.records > 0 {
        return Err(CompactError::NotSealed);
    }
    let mut lines: Vec<Line<'_>> = Vec::new();
    for raw in input.split_inclusive(|b| *b == b'\n') {
        let body = raw.strip_suffix(b"\n").unwrap_or(raw);
        // The log verified, so every line decodes.
        let d = decode(body).map_err(|_| CompactError::Unreadable)?;
        lines.push(Line {
            bytes: raw,
            record: d.record,
            stored: d.stored,
        });
    }
    // Which clause lets each record go, if any.
    let mut removable: Vec<Option<(Period, Option<usize>)>> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        if last || line.record.kind == RecordKind::Checkpoint {
            removable.push(None);
            continue;
        }
        let tier = match &line.record.tier {
            None => RecordTier::None,
            Some(name) => match cfg.tiers.iter().position(|t| t == name) {
                Some(rank) => RecordTier::Known(TierId(rank as u32)),
                None => RecordTier::Unknown,
            },
        };
        let rule = cfg.retention.rule_for_record(tier, cfg.now_ms);
        removable.push(
            rule.filter(|r| line.record.time_ms <= r.cutoff_ms)
                .map(|r| (r.period, r.clause)),
        );
    }
    let mut out = Compaction {
        records_before: lines.len() as u64,
        ..Compaction::default()
    };
    let mut i = 0;
    while i < lines.len() {
        let (Some(line), Some(rule)) = (lines.get(i), removable.get(i)) else {
            break;
        };
        let Some(rule) = *rule else {
            out.log.extend_from_slice(line.bytes);
            out.records_after += 1;
            i += 1;
            continue;
        };
        let start = i;
        while i < lines.len() && removable.get(i).copied().flatten() == Some(rule) {
            i += 1;
        }
        let run = lines.get(start..i).unwrap_or_default();
        let (record, checkpoint) = checkpoint_for(run, rule, cfg, key)?;
        let (bytes, _) = encode(&record).map_err(|_| CompactError::Unreadable)?;
        out.log.extend_from_slice(&bytes);
        out.records_after += 1;
        for l in run {
            out.removed_lines.extend_from_slice(l.bytes);
        }
        out.runs.push(RemovedRun {
            checkpoint,
            line: start as u64 + 1,
        });
    }
    Ok(out)
}

fn checkpoint_for(
    run: &[Line<'_>],
    (period, clause): (Period, Option<usize>),
    cfg: &CompactConfig<'_>,
    key: &SigningKey,
) -> Result<(Record, Checkpoint), CompactError> {
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return Err(CompactError::Unreadable);
    };
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut digest_input = Vec::new();
    for l in run {
        *kinds.entry(l.record.kind.keyword().to_owned()).or_default() += 1;
        digest_input.extend_from_slice(l.bytes);
    }
    let times = run.iter().map(|l| l.record.time_ms);
    let checkpoint = Checkpoint {
        from_seq: first.record.seq,
        to_seq: last.record.seq,
        removed: run.len() as u64,
        kinds,
        oldest_ms: times.clone().min().unwrap_or_default(),
        youngest_ms: times.max().unwrap_or_default(),
        last_hash: last.stored,
        digest: ContentHash::of(&digest_input),
        rule: cfg.retention.clause_text(clause, cfg.tiers),
        period,
        key: String::new(),
        signature: String::new(),
    };
    let mut record = Record::new(RecordKind::Checkpoint, cfg.now_ms);
    record.seq = first.record.seq;
    record.prev = first.record.prev;
    record.table = Some(cfg.table);
    record.detail = Some(if run.len() == 1 {
        format!(
            "record {} removed under `{}`",
            checkpoint.from_seq, checkpoint.rule
        )
    } else {
        format!(
            "records {} to {} removed under `{}`",
            checkpoint.from_seq, checkpoint.to_seq, checkpoint.rule
        )
    });
    record.checkpoint = Some(checkpoint);
    key.sign(&mut record);
    let signed = record.checkpoint.clone().ok_or(CompactError::Unreadable)?;
    Ok((record, signed))
}
