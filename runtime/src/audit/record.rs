//! One audit record and its line form. A record is a JSON object on one line; its last
//! field is `hash`, the SHA-256 of the line's bytes without that field (the body, which
//! ends `}` where the line ends `,"hash":"sha256:…"}`). The body holds `prev`, the hash
//! of the record before it, so the records form a chain from [`GENESIS`].
//!
//! Hashing the exact bytes written, not a re-serialisation, means verification never
//! depends on how a JSON library orders or spaces fields.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::decision::Outcome;
use crate::hash::ContentHash;

/// The `prev` of the first record of a log.
pub const GENESIS: ContentHash = ContentHash([0; 32]);

/// What a record is about.
///
/// ```
/// use agentpolicy_runtime::audit::RecordKind;
/// assert_eq!(RecordKind::Decision.keyword(), "decision");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A writer opened the log.
    Open,
    /// A writer closed the log cleanly; a log whose last record is not `close` was cut
    /// short, or its writer is running or crashed.
    Close,
    /// On opening, the writer removed a torn tail (an unacknowledged, partly written
    /// record) left by a crash; `detail` says how many bytes and their hash.
    Recovered,
    /// A session was opened or closed, or started a new task.
    Session,
    /// A tool call was decided.
    Decision,
    /// The agent loop reported the result of a call.
    Result,
    /// A pending escalation was approved, rejected or timed out.
    Resolution,
    /// A circuit breaker tripped, went half-open or closed.
    Breaker,
    /// An operator action: kill switch, resume, breaker reset, table swap.
    Control,
    /// What a human did for the same task as a decided call (shadow comparison):
    /// `human` holds the action, `session` and `call` name the decision.
    Human,
    /// `agentpolicy audit compact` removed a run of records past retention; the record
    /// stands in for them and says what was removed and why (see [`super::Checkpoint`]).
    Checkpoint,
    /// A caller was refused before reaching the engine (a network service's missing or
    /// bad credentials, a role or scope that does not allow the action): `by` names the
    /// caller as far as known, `detail` what was asked and why it was refused.
    Refusal,
}

impl RecordKind {
    pub fn keyword(self) -> &'static str {
        match self {
            RecordKind::Open => "open",
            RecordKind::Close => "close",
            RecordKind::Recovered => "recovered",
            RecordKind::Session => "session",
            RecordKind::Decision => "decision",
            RecordKind::Result => "result",
            RecordKind::Resolution => "resolution",
            RecordKind::Breaker => "breaker",
            RecordKind::Control => "control",
            RecordKind::Human => "human",
            RecordKind::Checkpoint => "checkpoint",
            RecordKind::Refusal => "refusal",
        }
    }
}

/// The escalation a decision raised: where it went and what happens if nobody answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationInfo {
    /// `SESSION:CALL`, the id to resolve it by.
    pub id: String,
    pub routes: Vec<String>,
    pub notify: Vec<String>,
    /// When it times out, in ms since the epoch; `None` when no route has a timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<i64>,
    pub timeout_outcome: Outcome,
}

/// What a human did for the same task as a call the policy decided, recorded by the
/// platform in shadow comparison: acted as the policy would `allow`, refused (`deny`),
/// or asked someone else (`escalate`). It agrees with the decision when it equals the
/// policy's outcome.
///
/// ```
/// use agentpolicy_runtime::Outcome;
/// use agentpolicy_runtime::audit::HumanAction;
/// assert_eq!(HumanAction::Deny.outcome(), Outcome::Deny);
/// assert_eq!(HumanAction::parse("escalate"), Some(HumanAction::Escalate));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HumanAction {
    /// The human made the call (or one with the same effect).
    Allow,
    /// The human did not make it.
    Deny,
    /// The human asked someone else first.
    Escalate,
}

impl HumanAction {
    /// The outcome this action corresponds to.
    pub fn outcome(self) -> Outcome {
        match self {
            HumanAction::Allow => Outcome::Allow,
            HumanAction::Deny => Outcome::Deny,
            HumanAction::Escalate => Outcome::Escalate,
        }
    }

    pub fn keyword(self) -> &'static str {
        match self {
            HumanAction::Allow => "allow",
            HumanAction::Deny => "deny",
            HumanAction::Escalate => "escalate",
        }
    }

    /// `allow`, `deny` or `escalate`.
    pub fn parse(text: &str) -> Option<HumanAction> {
        match text {
            "allow" => Some(HumanAction::Allow),
            "deny" => Some(HumanAction::Deny),
            "escalate" => Some(HumanAction::Escalate),
            _ => None,
        }
    }
}

/// What the agent loop reported about a call it made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedResult {
    pub ok: bool,
    pub tokens: u64,
    pub latency_ms: u64,
}

/// One audit record. Optional fields are left out of the line when empty.
///
/// ```
/// use agentpolicy_runtime::audit::{Record, RecordKind};
/// let r = Record::new(RecordKind::Control, 1_000);
/// assert_eq!(r.time, "1970-01-01T00:00:01.000Z");
/// assert_eq!(r.kind, RecordKind::Control);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 1 for a log's first record, then one more for each record.
    pub seq: u64,
    pub time_ms: i64,
    /// `time_ms` as RFC 3339 UTC, for people.
    pub time: String,
    /// The hash of the record before this one ([`GENESIS`] for the first).
    pub prev: ContentHash,
    pub kind: RecordKind,
    /// The replica that wrote the record, when the engine runs as one of several
    /// (`serve --replica-id`, [`super::ReplicaId`]); part of the hashed line. Logs
    /// written without one, and the `open`, `recovered` and `close` records the log
    /// writer adds itself, have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// The content hash of the decision table in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<ContentHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The engine's number of that session (`s12` is 12): unique within a log, where
    /// `session` is a name the caller may choose. A restarted engine rebuilds sessions
    /// by it ([`crate::engine::Engine::new`] with `EngineConfig::restore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The call's number within its session (1, 2, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<u64>,
    /// The call's arguments, after redaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Map<String, Value>>,
    /// Resource and sink labels of the call (`read`, `write`: target and key values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Map<String, Value>>,
    /// The policy's outcome (in shadow mode, the would-be outcome).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// What the caller was told to do; differs from `outcome` only in shadow mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Outcome>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub shadow: bool,
    /// The reason code: `rule`, `no_rule`, `flow`, `limit`, `suspended`, `not_granted`,
    /// `request`, `session`, `internal`, `fault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The id of the deciding rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The decision explained in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<EscalationInfo>,
    /// `approve`, `reject` or `timeout`, for resolution records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Who resolved an escalation or took an operator action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ReportedResult>,
    /// Free text for sessions, breakers, operator actions and recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Who or what started the session's run (`user:alice@firm`,
    /// `schedule:nightly-billing`), on the session's records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The agent framework's reasoning for a call, redacted and cut to
    /// [`crate::engine::MAX_REASONING_BYTES`], on decision records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// What the human did, on `human` records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human: Option<HumanAction>,
    /// The tier of the data the record is about: for a decision, the session's tier
    /// after the call, raised to the tier of what the call asked to read and of the data
    /// kept apart by the keys its write names; for results, resolutions and sessions,
    /// the session's tier (for a session opened bound to key values, the highest tier
    /// those keys keep apart). Retention reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// For checkpoint records: what compaction removed, and its signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<super::Checkpoint>,
    /// The record's own hash; not part of the hashed body, written last.
    #[serde(default, skip_serializing)]
    pub hash: ContentHash,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Record {
    /// An empty record of a kind at a time; the writer sets `seq`, `prev` and `hash`.
    pub fn new(kind: RecordKind, time_ms: i64) -> Record {
        Record {
            seq: 0,
            time_ms,
            time: super::time::format_time(time_ms),
            prev: GENESIS,
            kind,
            replica: None,
            table: None,
            session: None,
            session_id: None,
            agent: None,
            tool: None,
            call: None,
            args: None,
            labels: None,
            outcome: None,
            reported: None,
            shadow: false,
            reason: None,
            rule: None,
            why: None,
            escalation: None,
            resolution: None,
            by: None,
            result: None,
            detail: None,
            context: None,
            reasoning: None,
            human: None,
            tier: None,
            checkpoint: None,
            hash: ContentHash::default(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Record {
        self.detail = Some(detail.into());
        self
    }
}

/// `,"hash":"sha256:` + 64 hex digits + `"}`.
const SUFFIX_LEN: usize = 16 + 64 + 2;
const SUFFIX_START: &[u8] = b",\"hash\":\"sha256:";

/// The line of a record (with `seq` and `prev` set), ending in `\n`, and its hash.
pub(crate) fn encode(record: &Record) -> Result<(Vec<u8>, ContentHash), serde_json::Error> {
    let mut line = serde_json::to_vec(record)?;
    let hash = ContentHash::of(&line);
    line.pop();
    line.extend_from_slice(SUFFIX_START);
    line.extend_from_slice(hash.to_hex().as_bytes());
    line.extend_from_slice(b"\"}\n");
    Ok((line, hash))
}

/// A line read back: the record, the hash the line claims and the hash its body has.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub record: Record,
    pub stored: ContentHash,
    pub computed: ContentHash,
}

/// Decodes one line (without its `\n`); `Err` says why it is not a record.
pub(crate) fn decode(line: &[u8]) -> Result<Decoded, String> {
    let n = line.len();
    let Some(suffix) = n.checked_sub(SUFFIX_LEN).and_then(|at| line.get(at..)) else {
        return Err("too short to be a record".into());
    };
    if !suffix.starts_with(SUFFIX_START) || !suffix.ends_with(b"\"}") {
        return Err("does not end with the record's `hash` field".into());
    }
    let hex = suffix
        .get(SUFFIX_START.len()..SUFFIX_START.len() + 64)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("the `hash` field is not text")?;
    let stored: ContentHash = hex
        .parse()
        .map_err(|_| "the `hash` field is not a SHA-256 hash".to_string())?;
    let mut body = line.get(..n - SUFFIX_LEN).unwrap_or_default().to_vec();
    body.push(b'}');
    let computed = ContentHash::of(&body);
    let mut record: Record =
        serde_json::from_slice(line).map_err(|e| format!("not a valid record: {e}"))?;
    record.hash = stored;
    Ok(Decoded {
        record,
        stored,
        computed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_decodes_to_the_record_and_its_hash() {
        let mut r = Record::new(RecordKind::Decision, 5);
        r.seq = 7;
        r.agent = Some("intake".into());
        r.outcome = Some(Outcome::Deny);
        let (line, hash) = encode(&r).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let text = std::str::from_utf8(&line).unwrap();
        assert!(
            text.ends_with(&format!(",\"hash\":\"{hash}\"}}\n")),
            "{text}"
        );
        let d = decode(&line[..line.len() - 1]).unwrap();
        assert_eq!(d.stored, hash);
        assert_eq!(d.computed, hash);
        assert_eq!(d.record.agent.as_deref(), Some("intake"));
        assert_eq!(d.record.hash, hash);
    }

    #[test]
    fn an_edited_body_no_longer_matches_its_hash() {
        let r = Record::new(RecordKind::Control, 5);
        let (line, _) = encode(&r).unwrap();
        let text = String::from_utf8(line)
            .unwrap()
            .replace("control", "session");
        let d = decode(text.trim_end().as_bytes()).unwrap();
        assert_ne!(d.stored, d.computed);
    }

    #[test]
    fn the_replica_id_is_in_the_hashed_line_and_optional() {
        let mut r = Record::new(RecordKind::Decision, 5);
        let (old, _) = encode(&r).unwrap();
        let old = String::from_utf8(old).unwrap();
        assert!(!old.contains("replica"), "{old}");
        let d = decode(old.trim_end().as_bytes()).unwrap();
        assert_eq!(d.record.replica, None);
        assert_eq!(d.stored, d.computed);
        r.replica = Some("api-1".into());
        let (line, _) = encode(&r).unwrap();
        let text = String::from_utf8(line).unwrap();
        assert!(
            text.contains(r#""kind":"decision","replica":"api-1""#),
            "{text}"
        );
        let d = decode(text.trim_end().as_bytes()).unwrap();
        assert_eq!(d.record.replica.as_deref(), Some("api-1"));
        assert_eq!(d.stored, d.computed);
        let edited = text.replace("api-1", "api-2");
        let d = decode(edited.trim_end().as_bytes()).unwrap();
        assert_ne!(d.stored, d.computed, "an edited replica id breaks the hash");
    }

    #[test]
    fn junk_is_not_a_record() {
        assert!(decode(b"{}").is_err());
        assert!(decode(&[b'x'; 200]).is_err());
    }
}
