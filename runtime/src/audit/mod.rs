//! The audit trail: an append-only, hash-chained log of JSON lines that the engine
//! writes ([`AuditLog`]) and that [`verify`] and [`query`] read.
//!
//! Every record holds its sequence number, time, the table hash, session, agent, tool,
//! arguments (after redaction), outcome, deciding rule and reported result, as fits its
//! [`RecordKind`], plus `prev`, the hash of the record before it, and its own `hash`.
//! See `docs/audit-log.md` for the format and the durability trade-off.

mod checkpoint;
mod compact;
mod evidence;
mod merge;
mod query;
mod record;
mod replica;
mod time;
mod verify;
mod writer;

pub use checkpoint::{
    ArchiveMatch, Checkpoint, PublicKey, SignatureCheck, SigningKey, check_signature,
    match_archive, signed_message,
};
pub use compact::{CompactConfig, CompactError, Compaction, RemovedRun, compact};
pub use evidence::{DecisionEvidence, Evidence, evidence};
pub use merge::{LogSource, MergeError, Merged, check_distinct, merge_by_time};
pub use query::{Filter, QueryResult, query, read_records};
pub use record::{EscalationInfo, GENESIS, HumanAction, Record, RecordKind, ReportedResult};
pub use replica::{MAX_REPLICA_ID, ReplicaId, ReplicaIdError};
pub use time::{format_time, minus_years, parse_time};
pub use verify::{
    Anchor, CheckpointSummary, EditKind, Problem, TornTail, VerifyOptions, VerifyReport, verify,
    verify_log, verify_with,
};
pub use writer::{Ack, AuditError, AuditLog, Durability, FLUSH_BUCKETS_US, FlushStats, LogSink};
