//! Several replicas' logs read as one: [`check_distinct`] refuses the same log given
//! twice and two logs that carry the same replica id (two chains cannot both be that
//! replica's), and [`merge_by_time`] interleaves their records by time.
//!
//! Each log stays its own hash chain and is verified on its own; merging only orders
//! what was read. The order is stable: time, then replica id, then the log's position
//! in the list, then the record's position in its log. Times come from each replica's
//! clock, so records of different replicas closer together than the clocks' skew may
//! appear in either order; within one log the order is always the file's.

use std::fmt;
use std::path::PathBuf;

use super::record::Record;

/// One log to merge, as far as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    /// How messages name the log: its path as given.
    pub name: String,
    /// What identifies the file: its canonical path.
    pub file: PathBuf,
    /// The replica ids its records carry, in order of first appearance.
    pub replicas: Vec<String>,
}

/// Why logs cannot be read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeError {
    /// The same file was given twice (perhaps under two names).
    SameLog { first: String, again: String },
    /// Two logs carry records of the same replica.
    SameReplica {
        replica: String,
        first: String,
        second: String,
    },
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeError::SameLog { first, again } if first == again => write!(
                f,
                "the log `{first}` is given twice; give each replica's log once"
            ),
            MergeError::SameLog { first, again } => write!(
                f,
                "`{first}` and `{again}` are the same log file; give each replica's log once"
            ),
            MergeError::SameReplica {
                replica,
                first,
                second,
            } => write!(
                f,
                "`{first}` and `{second}` both hold records of replica `{replica}`: each replica keeps one log, its own chain; check that no two replicas were started with the same --replica-id, or verify the logs one at a time"
            ),
        }
    }
}

impl std::error::Error for MergeError {}

/// Refuses a file given twice and a replica id found in two logs.
///
/// ```
/// use agentpolicy_runtime::audit::{LogSource, MergeError, check_distinct};
/// let log = |name: &str, replica: &str| LogSource {
///     name: name.into(), file: name.into(), replicas: vec![replica.into()],
/// };
/// assert!(check_distinct(&[log("a.jsonl", "a"), log("b.jsonl", "b")]).is_ok());
/// let err = check_distinct(&[log("a.jsonl", "a"), log("b.jsonl", "a")]).unwrap_err();
/// assert!(matches!(err, MergeError::SameReplica { .. }));
/// ```
pub fn check_distinct(sources: &[LogSource]) -> Result<(), MergeError> {
    for (i, s) in sources.iter().enumerate() {
        for earlier in sources.iter().take(i) {
            if earlier.file == s.file {
                return Err(MergeError::SameLog {
                    first: earlier.name.clone(),
                    again: s.name.clone(),
                });
            }
            if let Some(replica) = s.replicas.iter().find(|r| earlier.replicas.contains(r)) {
                return Err(MergeError::SameReplica {
                    replica: replica.clone(),
                    first: earlier.name.clone(),
                    second: s.name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// A record in the merged order, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The index of its log in the list given to [`merge_by_time`].
    pub log: usize,
    /// The record's replica id, or, for a record without one (the log writer's `open`
    /// and `close`), its log's.
    pub replica: Option<String>,
    pub record: Record,
}

/// Interleaves logs' records by time. Each entry is a log's replica id (used for its
/// records that carry none; `None` for a log written without one) and its records in
/// file order.
///
/// ```
/// use agentpolicy_runtime::audit::{Record, RecordKind, merge_by_time};
/// let at = |t: i64| Record::new(RecordKind::Decision, t);
/// let merged = merge_by_time(vec![
///     (Some("b".into()), vec![at(1), at(5)]),
///     (Some("a".into()), vec![at(3), at(5)]),
/// ]);
/// let order: Vec<(i64, &str)> =
///     merged.iter().map(|m| (m.record.time_ms, m.replica.as_deref().unwrap_or(""))).collect();
/// assert_eq!(order, [(1, "b"), (3, "a"), (5, "a"), (5, "b")]);
/// ```
pub fn merge_by_time(logs: Vec<(Option<String>, Vec<Record>)>) -> Vec<Merged> {
    let mut all: Vec<(usize, usize, Merged)> = Vec::new();
    for (log, (default, records)) in logs.into_iter().enumerate() {
        for (position, record) in records.into_iter().enumerate() {
            let replica = record.replica.clone().or_else(|| default.clone());
            all.push((
                log,
                position,
                Merged {
                    log,
                    replica,
                    record,
                },
            ));
        }
    }
    all.sort_by(|(la, pa, a), (lb, pb, b)| {
        a.record
            .time_ms
            .cmp(&b.record.time_ms)
            .then_with(|| a.replica.cmp(&b.replica))
            .then(la.cmp(lb))
            .then(pa.cmp(pb))
    });
    all.into_iter().map(|(_, _, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::RecordKind;

    fn rec(t: i64, seq: u64, replica: Option<&str>) -> Record {
        let mut r = Record::new(RecordKind::Decision, t);
        r.seq = seq;
        r.replica = replica.map(String::from);
        r
    }

    fn source(name: &str, file: &str, replicas: &[&str]) -> LogSource {
        LogSource {
            name: name.into(),
            file: file.into(),
            replicas: replicas.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn merged_order_is_time_then_replica_then_log_then_position() {
        let a = vec![
            rec(10, 1, None),
            rec(10, 2, Some("a")),
            rec(20, 3, Some("a")),
            rec(20, 4, Some("a")),
        ];
        let b = vec![
            rec(5, 1, Some("b")),
            rec(20, 2, Some("b")),
            rec(15, 3, Some("b")),
        ];
        let merged = merge_by_time(vec![(Some("b".into()), b), (Some("a".into()), a)]);
        let order: Vec<(i64, String, usize, u64)> = merged
            .iter()
            .map(|m| {
                (
                    m.record.time_ms,
                    m.replica.clone().unwrap_or_default(),
                    m.log,
                    m.record.seq,
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                (5, "b".into(), 0, 1),
                // The writer's record without an id takes its log's.
                (10, "a".into(), 1, 1),
                (10, "a".into(), 1, 2),
                // A clock stepping back within one log: time decides across the merge.
                (15, "b".into(), 0, 3),
                // Equal times: replica `a` before `b`, and within `a` the file's order.
                (20, "a".into(), 1, 3),
                (20, "a".into(), 1, 4),
                (20, "b".into(), 0, 2),
            ]
        );
    }

    #[test]
    fn logs_without_ids_are_ordered_by_their_place_in_the_list() {
        let merged = merge_by_time(vec![
            (None, vec![rec(7, 1, None), rec(8, 2, None)]),
            (None, vec![rec(7, 1, None)]),
        ]);
        let order: Vec<(usize, u64)> = merged.iter().map(|m| (m.log, m.record.seq)).collect();
        assert_eq!(order, [(0, 1), (1, 1), (0, 2)]);
        assert!(merged.iter().all(|m| m.replica.is_none()));
    }

    #[test]
    fn the_same_file_twice_is_refused() {
        let err = check_distinct(&[
            source("a.jsonl", "/x/a.jsonl", &["a"]),
            source("./a.jsonl", "/x/a.jsonl", &["a"]),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            MergeError::SameLog {
                first: "a.jsonl".into(),
                again: "./a.jsonl".into()
            }
        );
        assert!(err.to_string().contains("are the same log file"), "{err}");
        let err = check_distinct(&[
            source("a.jsonl", "/x/a.jsonl", &[]),
            source("a.jsonl", "/x/a.jsonl", &[]),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the log `a.jsonl` is given twice; give each replica's log once"
        );
    }

    #[test]
    fn one_replica_in_two_logs_is_refused() {
        let err = check_distinct(&[
            source("a.jsonl", "/x/a", &["a"]),
            source("b.jsonl", "/x/b", &["b"]),
            source("c.jsonl", "/x/c", &["c", "b"]),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            MergeError::SameReplica {
                replica: "b".into(),
                first: "b.jsonl".into(),
                second: "c.jsonl".into()
            }
        );
        assert!(err.to_string().contains("--replica-id"), "{err}");
        // Logs without ids do not clash.
        assert!(check_distinct(&[source("a", "/x/a", &[]), source("b", "/x/b", &[])]).is_ok());
    }
}
