//! The embedded decision engine: the decision-table format, [`decide`], and the
//! [`Engine`] with its audit log.
//!
//! This crate must never link a parser, a solver or salsa: agent platforms embed it. The
//! compiler builds a [`TableData`] from a policy; [`DecisionTable::new`] (or a loader)
//! validates it; [`decide`] answers one [`Request`] with a [`Decision`].
//!
//! # The table
//!
//! Names are interned to dense ids ([`AgentId`], [`ToolId`], ...). There is one [`Cell`]
//! per (agent, tool) pair, holding whether the tool is granted and the rules that apply,
//! pre-sorted into deny, escalate and allow lists in source order (`*` rules included in
//! every granted cell). Each entry is a rule index and a compiled [`Condition`]: postfix
//! bytecode over a 64-bit boolean stack, comparing `i64` slot values (arguments by
//! parameter index, then the confidence) with constants or with each other. Values are
//! exact integers: money in cents, numbers and percentages in millionths, durations in
//! milliseconds, booleans 0 / 1, texts as ids into the table's text dictionary (a text
//! not in it gets an id of [`UNKNOWN_TEXT_BASE`] or above, which equals no constant).
//!
//! The table carries its [`FORMAT_VERSION`] and the [`source_hash`] of the sources it
//! was compiled from, which the engine writes into every audit record. It is written as
//! compact binary ([`DecisionTable::to_bytes`]: magic, version, hash, payload length and
//! checksum, postcard payload) or as JSON ([`DecisionTable::to_json`]); loading checks
//! all of these and validates every id and condition, or refuses with a [`LoadError`].
//!
//! # Deciding
//!
//! [`decide`] follows a fixed order: suspended, then not granted, then the flow check,
//! then limits, then rules (deny over escalate over allow), then deny for lack of a rule.
//! A condition reading a value the request does not carry is *unknown*: found with one
//! AND of the condition's reads mask against the request's presence mask, it matches for
//! deny and escalate rules and not for allow rules. `decide` allocates nothing, hashes
//! nothing and compares no strings; any malformed input decides Deny, never Allow.
//!
//! # The engine and the audit log
//!
//! [`Engine`] wraps `decide` for an agent platform: sessions with flow labels, limits,
//! circuit breakers, the kill switch (API and kill file), shadow mode, escalations and
//! hot table swaps, for many threads at once ([`engine`], `docs/engine.md`). It writes
//! an append-only, hash-chained [`audit`] log that [`audit::verify`] checks and
//! [`audit::query`] filters (`docs/audit-log.md`). Every fault in the engine is a Deny
//! with reason `internal`.

pub mod audit;
mod builder;
mod cell_index;
mod condition;
mod decide;
mod decision;
mod decision_table;
mod encoding;
pub mod engine;
mod flow;
mod glob;
mod hash;
mod ids;
mod interner;
mod limits;
mod request;
mod retention;
mod table;
mod validate;
pub mod values;
pub mod wire;

/// The decision-table format this runtime reads and writes.
pub const FORMAT_VERSION: u32 = 3;

pub use builder::{ArgValue, RequestBuilder, RequestError};
pub use condition::{CmpOp, Condition, MAX_PARAMS, MAX_STACK, Op, ProgramError, SLOTS, Slot};
pub use decide::decide;
pub use decision::{Decision, Explanation, MAX_ROUTES, Outcome, Routes, Stage, Why};
pub use decision_table::DecisionTable;
pub use encoding::{LoadError, MAGIC};
pub use engine::{Call, CallResult, Engine, EngineConfig, SessionOptions, Verdict};
pub use glob::{Glob, GlobError, GlobToken, glob_match, glob_tokens};
pub use hash::{ContentHash, ParseHashError, policy_relative_paths, source_hash};
pub use ids::{
    AgentId, FileIndex, KeyId, ResourceId, RouteId, RuleIndex, SinkId, TextId, TierId, ToolId,
};
pub use interner::KeyValueInterner;
pub use limits::{
    DEFAULT_ARG_BYTES, DEFAULT_LIST_ITEMS, DEFAULT_REQUEST_BYTES, RequestLimits, SizeUnit,
};
pub use request::{
    Access, KeyBindings, KeyValue, MAX_KEYS, MAX_LIMITS, Request, SessionView, UNKNOWN_TEXT_BASE,
};
pub use retention::{
    AppliedRule, MAX_RETENTION_YEARS, Period, RecordTier, Retention, TierRetention,
};
pub use table::{
    Agent, Breaker, BreakerMetric, Cell, Effect, Entry, Limit, LimitUnit, LimitWindow, Mode, Param,
    PolicyInfo, Resource, Route, Rule, RuleKind, Sink, Span, SuspendScope, TableData, Target,
    TextTest, TextTestKind, TimeoutOutcome, Tool, ValueSet, ValueType,
};
pub use validate::InvalidTable;

/// The embedding guide (`docs/engine.md`): its Rust examples compile as doctests, so the
/// guide cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../docs/engine.md")]
pub struct EmbeddingGuide;
