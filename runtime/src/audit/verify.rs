//! [`verify`]: reads a log and checks every record's hash, the chain of `prev` hashes and
//! the run of sequence numbers, and names each problem: a record edited (content changed,
//! or changed and re-hashed), deleted, inserted, reordered, or the log truncated. It only
//! reads; it never repairs.
//!
//! A torn tail (a last line without its line end) is reported apart from the problems:
//! it is what a crash during a write leaves, and its record was never acknowledged.
//! Cutting complete records off the end leaves a valid shorter chain, which no chain can
//! show by itself: a log whose last record is not `close` is reported as not sealed, and
//! an [`Anchor`] (a head kept elsewhere, from [`super::AuditLog::head`]) proves it.
//!
//! A checkpoint (left by compaction) stands in the chain for the records it replaced:
//! it links back by its `prev` and forward by its `last_hash`, and covers their sequence
//! numbers. Each is checked on its own: its signature (against the key it names, and the
//! trusted key when one is given), that its numbers agree, and that every record it
//! removed was at least as old as the retention period it cites.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead};

use super::checkpoint::{PublicKey, SignatureCheck, check_signature};
use super::record::{GENESIS, Record, RecordKind, decode};
use crate::hash::ContentHash;

/// A record known from elsewhere: the log must still hold it, unchanged.
///
/// ```
/// use agentpolicy_runtime::audit::Anchor;
/// let a: Anchor = format!("12:sha256:{}", "ab".repeat(32)).parse().unwrap();
/// assert_eq!(a.seq, 12);
/// assert!("12".parse::<Anchor>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    pub hash: ContentHash,
}

impl std::str::FromStr for Anchor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (seq, hash) = s
            .split_once(':')
            .ok_or("expected SEQ:HASH, e.g. 120:sha256:9f2c…")?;
        Ok(Anchor {
            seq: seq
                .trim()
                .parse()
                .map_err(|_| format!("`{seq}` is not a sequence number"))?,
            hash: hash.trim().parse().map_err(|e| format!("{e}"))?,
        })
    }
}

/// How a record was edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditKind {
    /// Its content no longer matches its own hash.
    Content,
    /// Its own hash matches, but the next record holds another hash for it: it was
    /// changed and re-hashed.
    Rehashed,
    /// It is the first record but does not start from the genesis hash.
    Genesis,
}

/// One way the log differs from what its writer wrote.
///
/// ```
/// use agentpolicy_runtime::audit::Problem;
/// let p = Problem::Deleted { line: 9, from_seq: 8, to_seq: 8 };
/// assert_eq!(p.keyword(), "deleted");
/// assert_eq!(p.to_string(), "line 9: record 8 was deleted (the chain jumps over it)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The line is not a record at all.
    Malformed {
        line: u64,
        reason: String,
    },
    Edited {
        line: u64,
        seq: u64,
        how: EditKind,
    },
    /// Records `from_seq..=to_seq` are missing; `line` is the record after the gap.
    Deleted {
        line: u64,
        from_seq: u64,
        to_seq: u64,
    },
    /// A record that is not part of the chain: it repeats a sequence number that another
    /// record holds and does not link where that one does, or it follows a `close`
    /// record without being the `open` (or `recovered`) record of a new writer.
    Inserted {
        line: u64,
        seq: u64,
    },
    /// The record is in the chain but out of place: it comes after `after_seq` in the
    /// file.
    Reordered {
        line: u64,
        seq: u64,
        after_seq: u64,
    },
    /// The anchor's record is past the end: the records after `last_seq` were cut off.
    Truncated {
        last_seq: Option<u64>,
        anchor_seq: u64,
    },
    /// The log holds the anchor's record with another hash: it was rewritten from there.
    AnchorMismatch {
        seq: u64,
    },
    /// A checkpoint that cannot be trusted: its signature does not verify (it was
    /// altered or forged), it was signed by another key than the trusted one, its
    /// numbers disagree, or it removed records younger than the retention it cites.
    Checkpoint {
        line: u64,
        seq: u64,
        reason: String,
    },
}

impl Problem {
    /// The line the problem shows at, if it shows at one.
    pub fn line(&self) -> Option<u64> {
        match self {
            Problem::Malformed { line, .. }
            | Problem::Edited { line, .. }
            | Problem::Deleted { line, .. }
            | Problem::Inserted { line, .. }
            | Problem::Reordered { line, .. }
            | Problem::Checkpoint { line, .. } => Some(*line),
            Problem::Truncated { .. } | Problem::AnchorMismatch { .. } => None,
        }
    }

    /// `malformed`, `edited`, `deleted`, `inserted`, `reordered`, `truncated`,
    /// `checkpoint`.
    pub fn keyword(&self) -> &'static str {
        match self {
            Problem::Malformed { .. } => "malformed",
            Problem::Edited { .. } | Problem::AnchorMismatch { .. } => "edited",
            Problem::Deleted { .. } => "deleted",
            Problem::Inserted { .. } => "inserted",
            Problem::Reordered { .. } => "reordered",
            Problem::Truncated { .. } => "truncated",
            Problem::Checkpoint { .. } => "checkpoint",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Malformed { line, reason } => {
                write!(
                    f,
                    "line {line}: not a record ({reason}): edited or corrupted"
                )
            }
            Problem::Edited { line, seq, how } => match how {
                EditKind::Content => write!(
                    f,
                    "line {line}: record {seq} was edited: its content does not match its hash"
                ),
                EditKind::Rehashed => write!(
                    f,
                    "line {line}: record {seq} was edited and re-hashed: record {} holds another hash for it",
                    seq + 1
                ),
                EditKind::Genesis => write!(
                    f,
                    "line {line}: record {seq} was edited: the first record does not start from the genesis hash"
                ),
            },
            Problem::Deleted {
                line,
                from_seq,
                to_seq,
            } => {
                if from_seq == to_seq {
                    write!(
                        f,
                        "line {line}: record {from_seq} was deleted (the chain jumps over it)"
                    )
                } else {
                    write!(
                        f,
                        "line {line}: records {from_seq} to {to_seq} were deleted (the chain jumps over them)"
                    )
                }
            }
            Problem::Inserted { line, seq } => write!(
                f,
                "line {line}: record {seq} was inserted: it is not part of the chain the records around it form"
            ),
            Problem::Reordered {
                line,
                seq,
                after_seq,
            } => write!(
                f,
                "line {line}: record {seq} was moved: it comes after record {after_seq}"
            ),
            Problem::Truncated {
                last_seq,
                anchor_seq,
            } => match last_seq {
                Some(last) => write!(
                    f,
                    "the log was truncated: it ends at record {last}, but the anchor names record {anchor_seq}"
                ),
                None => write!(
                    f,
                    "the log was truncated: it holds no records, but the anchor names record {anchor_seq}"
                ),
            },
            Problem::AnchorMismatch { seq } => write!(
                f,
                "record {seq} differs from the anchor: the log was rewritten from there on"
            ),
            Problem::Checkpoint { line, seq, reason } => {
                write!(f, "line {line}: the checkpoint at record {seq} {reason}")
            }
        }
    }
}

/// A last line without its line end: a write the crash interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    pub line: u64,
    /// Byte offset where it starts.
    pub offset: u64,
    pub bytes: u64,
}

impl fmt::Display for TornTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: torn tail of {} bytes at byte {} (an interrupted write; its record was never acknowledged, and the next writer cuts it off)",
            self.line, self.bytes, self.offset
        )
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// Complete lines read (records and malformed lines).
    pub lines: u64,
    /// Lines that decoded as records.
    pub records: u64,
    pub first_seq: Option<u64>,
    /// The sequence number of the last record in the file.
    pub last_seq: Option<u64>,
    /// The stored hash of the last record in the file.
    pub head: Option<ContentHash>,
    /// The last record of the leading part of the file in which nothing is wrong.
    pub verified_upto: Option<u64>,
    pub problems: Vec<Problem>,
    pub torn_tail: Option<TornTail>,
    /// The last record is a `close` record, and no torn tail follows it.
    pub sealed: bool,
    /// The checkpoints compaction left, in file order.
    pub checkpoints: Vec<CheckpointSummary>,
    /// The replica ids the log's records carry, in order of first appearance (one for
    /// a replica's log, none for a log written without `--replica-id`).
    pub replicas: Vec<String>,
}

/// A checkpoint as verification saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSummary {
    pub line: u64,
    /// When compaction ran.
    pub time_ms: i64,
    /// The checkpoint record's `prev`: the hash of the record before the removed run.
    pub prev: ContentHash,
    pub checkpoint: super::Checkpoint,
    pub signature: SignatureCheck,
}

/// What [`verify_log`] checks besides the chain.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// A head kept elsewhere: the log must still hold that record unchanged.
    pub anchor: Option<Anchor>,
    /// The key checkpoints must be signed by.
    pub key: Option<PublicKey>,
}

impl VerifyReport {
    /// No record was edited, deleted, inserted or reordered, and the anchor (if any)
    /// holds. A torn tail and a missing seal do not count: a crash leaves both.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies a log read from `reader`.
///
/// ```
/// use agentpolicy_runtime::audit::verify;
/// let report = verify(&b""[..]).unwrap();
/// assert!(report.is_intact());
/// assert_eq!(report.records, 0);
/// ```
pub fn verify<R: BufRead>(reader: R) -> io::Result<VerifyReport> {
    verify_with(reader, None)
}

struct Entry {
    line: u64,
    /// The first sequence number the entry covers (a checkpoint covers several).
    seq: u64,
    last_seq: u64,
    prev: ContentHash,
    stored: ContentHash,
    /// The hash the next record must name as its `prev`: the record's own, or a
    /// checkpoint's `last_hash`.
    out: ContentHash,
    kind: RecordKind,
}

/// Verifies a log, and checks that it still holds `anchor`'s record unchanged.
///
/// ```
/// use agentpolicy_runtime::audit::{Anchor, Problem, verify_with};
/// use agentpolicy_runtime::ContentHash;
/// // An empty log cannot hold record 3.
/// let anchor = Anchor { seq: 3, hash: ContentHash::default() };
/// let report = verify_with(&b""[..], Some(anchor)).unwrap();
/// assert_eq!(report.problems, [Problem::Truncated { last_seq: None, anchor_seq: 3 }]);
/// ```
pub fn verify_with<R: BufRead>(reader: R, anchor: Option<Anchor>) -> io::Result<VerifyReport> {
    verify_log(
        reader,
        &VerifyOptions {
            anchor,
            ..VerifyOptions::default()
        },
    )
}

/// Verifies a log with every option: an anchor, and the key checkpoints must be signed
/// by.
///
/// ```
/// use agentpolicy_runtime::audit::{SigningKey, VerifyOptions, verify_log};
/// let options = VerifyOptions { key: Some(SigningKey::from_seed([1; 32]).public()), ..Default::default() };
/// let report = verify_log(&b""[..], &options).unwrap();
/// assert!(report.is_intact());
/// assert!(report.checkpoints.is_empty());
/// ```
pub fn verify_log<R: BufRead>(mut reader: R, options: &VerifyOptions) -> io::Result<VerifyReport> {
    let anchor = options.anchor;
    let mut report = VerifyReport::default();
    let mut entries: Vec<Entry> = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    let mut buf = Vec::new();
    let mut offset = 0u64;
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.last() != Some(&b'\n') {
            report.torn_tail = Some(TornTail {
                line,
                offset,
                bytes: n as u64,
            });
            break;
        }
        offset += n as u64;
        report.lines += 1;
        buf.pop();
        match decode(&buf) {
            Err(reason) => problems.push(Problem::Malformed { line, reason }),
            Ok(d) => {
                report.records += 1;
                if let Some(id) = &d.record.replica
                    && !report.replicas.contains(id)
                {
                    report.replicas.push(id.clone());
                }
                if d.stored != d.computed {
                    problems.push(Problem::Edited {
                        line,
                        seq: d.record.seq,
                        how: EditKind::Content,
                    });
                }
                let (last_seq, out) = match &d.record.checkpoint {
                    Some(cp) if d.record.kind == RecordKind::Checkpoint => {
                        (cp.to_seq.max(d.record.seq), cp.last_hash)
                    }
                    _ => (d.record.seq, d.stored),
                };
                // An edited line is reported as edited; its checkpoint claims mean nothing.
                if d.record.kind == RecordKind::Checkpoint && d.stored == d.computed {
                    check_checkpoint(
                        line,
                        &d.record,
                        options.key.as_ref(),
                        &mut report,
                        &mut problems,
                    );
                }
                entries.push(Entry {
                    line,
                    seq: d.record.seq,
                    last_seq,
                    prev: d.record.prev,
                    stored: d.stored,
                    out,
                    kind: d.record.kind,
                });
            }
        }
    }
    check_chain(&entries, &mut problems);
    report.first_seq = entries.first().map(|e| e.seq);
    report.last_seq = entries.last().map(|e| e.last_seq);
    report.head = entries.last().map(|e| e.stored);
    report.sealed =
        report.torn_tail.is_none() && entries.last().is_some_and(|e| e.kind == RecordKind::Close);
    if let Some(anchor) = anchor {
        let covering = entries.iter().find(|e| {
            e.kind == RecordKind::Checkpoint && (e.seq..=e.last_seq).contains(&anchor.seq)
        });
        match entries
            .iter()
            .find(|e| e.seq == anchor.seq && e.kind != RecordKind::Checkpoint)
        {
            // Compaction removed the anchor's record: only the last one of a run is known.
            None if covering.is_some() => {
                if let Some(c) = covering
                    && c.last_seq == anchor.seq
                    && c.out != anchor.hash
                {
                    problems.push(Problem::AnchorMismatch { seq: anchor.seq });
                }
            }
            Some(e) if e.stored != anchor.hash => {
                problems.push(Problem::AnchorMismatch { seq: anchor.seq });
            }
            Some(_) => {}
            None => {
                if report.last_seq.is_none_or(|last| anchor.seq > last) {
                    problems.push(Problem::Truncated {
                        last_seq: report.last_seq,
                        anchor_seq: anchor.seq,
                    });
                }
            }
        }
    }
    let first_bad = problems.iter().filter_map(Problem::line).min();
    report.verified_upto = entries
        .iter()
        .take_while(|e| first_bad.is_none_or(|bad| e.line < bad))
        .last()
        .map(|e| e.seq);
    problems.sort_by_key(|p| (p.line().unwrap_or(u64::MAX), p.keyword()));
    problems.dedup_by(|a, b| a.line().is_some() && a.line() == b.line());
    report.problems = problems;
    Ok(report)
}

/// The checks of one checkpoint record; see the module docs.
fn check_checkpoint(
    line: u64,
    record: &Record,
    key: Option<&PublicKey>,
    report: &mut VerifyReport,
    problems: &mut Vec<Problem>,
) {
    let seq = record.seq;
    let mut fail = |reason: String| {
        problems.push(Problem::Checkpoint { line, seq, reason });
    };
    let Some(cp) = &record.checkpoint else {
        fail("says nothing about what it removed (no `checkpoint` field)".into());
        return;
    };
    let signature = check_signature(record, cp, key);
    match signature {
        SignatureCheck::Valid => {}
        SignatureCheck::Invalid => fail(
            "has a signature that does not verify: it was altered after signing, or forged".into(),
        ),
        SignatureCheck::OtherKey => {
            fail(format!("was signed by {}, not by the trusted key", cp.key))
        }
    }
    let span = cp.to_seq.checked_sub(cp.from_seq).map(|d| d + 1);
    let kinds: u64 = cp.kinds.values().sum();
    if cp.from_seq != seq || span != Some(cp.removed) || kinds != cp.removed {
        fail(format!(
            "does not add up: it stands at record {seq} and claims records {} to {}, {} removed, {kinds} by kind",
            cp.from_seq, cp.to_seq, cp.removed
        ));
    } else if cp.oldest_ms > cp.youngest_ms {
        fail("does not add up: its oldest removed record is younger than its youngest".into());
    }
    match cp.period.cutoff(record.time_ms) {
        Some(cutoff) if cp.youngest_ms <= cutoff => {}
        _ => fail(format!(
            "removed records younger than the retention it cites: `{}` keeps them until after {}, but they were removed at {}",
            cp.rule,
            super::format_time(cp.youngest_ms),
            record.time
        )),
    }
    report.checkpoints.push(CheckpointSummary {
        line,
        time_ms: record.time_ms,
        prev: record.prev,
        checkpoint: cp.clone(),
        signature,
    });
}

/// Sequence numbers, file order and `prev` links; see the module docs. A checkpoint
/// covers `seq..=last_seq` and links out by `out`.
fn check_chain(entries: &[Entry], problems: &mut Vec<Problem>) {
    let mut by_seq: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut by_last: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        by_seq.entry(e.seq).or_default().push(i);
        by_last.entry(e.last_seq).or_default().push(i);
    }
    let links_in = |e: &Entry| -> bool {
        if e.seq <= 1 {
            return e.prev == GENESIS;
        }
        by_last.get(&(e.seq - 1)).is_some_and(|ps| {
            ps.iter()
                .any(|&p| entries.get(p).is_some_and(|p| p.out == e.prev))
        })
    };
    let links_out = |e: &Entry| -> bool {
        by_seq.get(&(e.last_seq + 1)).is_some_and(|ns| {
            ns.iter()
                .any(|&n| entries.get(n).is_some_and(|n| n.prev == e.out))
        })
    };
    // One record per sequence number is the chain's; the others were inserted.
    let mut chain: HashMap<u64, usize> = HashMap::new();
    let mut inserted = vec![false; entries.len()];
    for (&seq, idxs) in &by_seq {
        let score = |i: usize| {
            entries
                .get(i)
                .map_or(0, |e| u8::from(links_in(e)) + u8::from(links_out(e)))
        };
        let best = idxs
            .iter()
            .copied()
            .max_by_key(|&i| (score(i), std::cmp::Reverse(i)))
            .unwrap_or_default();
        chain.insert(seq, best);
        for &i in idxs {
            if i != best {
                inserted[i] = true;
                if let Some(e) = entries.get(i) {
                    problems.push(Problem::Inserted { line: e.line, seq });
                }
            }
        }
    }
    let mut max_seq: Option<u64> = None;
    for (i, e) in entries.iter().enumerate() {
        if inserted.get(i).copied().unwrap_or(false) {
            continue;
        }
        match max_seq {
            Some(max) if e.seq <= max => problems.push(Problem::Reordered {
                line: e.line,
                seq: e.seq,
                after_seq: max,
            }),
            _ => max_seq = Some(e.last_seq),
        }
    }
    let mut seqs: Vec<u64> = chain.keys().copied().collect();
    seqs.sort_unstable();
    let entry_of = |seq: u64| chain.get(&seq).and_then(|&i| entries.get(i));
    let mut expected = 1u64;
    for &seq in &seqs {
        if seq > expected {
            problems.push(Problem::Deleted {
                line: entry_of(seq).map_or(0, |e| e.line),
                from_seq: expected,
                to_seq: seq - 1,
            });
        }
        let last = entry_of(seq).map_or(seq, |e| e.last_seq);
        expected = expected.max(last.saturating_add(1));
    }
    // The chain entry that ends at each sequence number.
    let mut chain_by_last: HashMap<u64, usize> = HashMap::new();
    for &i in chain.values() {
        if let Some(e) = entries.get(i) {
            chain_by_last.insert(e.last_seq, i);
        }
    }
    let edited: Vec<u64> = problems
        .iter()
        .filter_map(|p| match p {
            Problem::Edited { line, .. } | Problem::Checkpoint { line, .. } => Some(*line),
            _ => None,
        })
        .collect();
    for &seq in &seqs {
        let Some(e) = entry_of(seq) else {
            continue;
        };
        if seq == 1 {
            if e.prev != GENESIS && !edited.contains(&e.line) {
                problems.push(Problem::Edited {
                    line: e.line,
                    seq,
                    how: EditKind::Genesis,
                });
            }
            continue;
        }
        let Some(p) = chain_by_last.get(&(seq - 1)).and_then(|&i| entries.get(i)) else {
            continue;
        };
        if p.kind == RecordKind::Close
            && !matches!(
                e.kind,
                RecordKind::Open | RecordKind::Recovered | RecordKind::Checkpoint
            )
        {
            problems.push(Problem::Inserted { line: e.line, seq });
            continue;
        }
        if e.prev != p.out && !edited.contains(&p.line) && !edited.contains(&e.line) {
            if p.kind == RecordKind::Checkpoint {
                problems.push(Problem::Checkpoint {
                    line: p.line,
                    seq: p.seq,
                    reason: format!(
                        "does not link to record {seq}: its `last_hash` is not the hash that record names as its `prev`"
                    ),
                });
            } else {
                problems.push(Problem::Edited {
                    line: p.line,
                    seq: p.seq,
                    how: EditKind::Rehashed,
                });
            }
        }
    }
}
