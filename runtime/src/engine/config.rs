//! [`EngineConfig`]: everything an embedder chooses about an engine, as plain data.
//! The policy (the table) says what is allowed; this says how the engine runs.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::clock::{Clock, SystemClock};
use super::escalation::Escalation;
use crate::audit::AuditLog;

/// How one argument is written to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redact {
    /// Written as `"[redacted]"`.
    Mask,
    /// Written as the SHA-256 of its value's text, so equal values can be matched
    /// without being shown. Low-entropy values (a yes/no, a small amount) can be
    /// guessed from their hash: mask those instead.
    Hash,
    /// Left out of the record.
    Omit,
}

/// A redaction rule: an argument name, for one tool or (`tool: None`) for every tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactRule {
    pub tool: Option<String>,
    pub arg: String,
    pub how: Redact,
}

/// Per-argument redaction of audit records. The first rule that matches an argument
/// decides; arguments no rule matches are written as given.
///
/// ```
/// use agentpolicy_runtime::engine::{Redact, Redaction};
/// let r = Redaction::default()
///     .rule(Some("send_email"), "body", Redact::Omit)
///     .rule(None, "ssn", Redact::Mask);
/// assert_eq!(r.how("send_email", "body"), Some(Redact::Omit));
/// assert_eq!(r.how("lookup", "ssn"), Some(Redact::Mask));
/// assert_eq!(r.how("lookup", "name"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redaction {
    pub rules: Vec<RedactRule>,
}

impl Redaction {
    pub fn rule(mut self, tool: Option<&str>, arg: &str, how: Redact) -> Redaction {
        self.rules.push(RedactRule {
            tool: tool.map(str::to_owned),
            arg: arg.to_owned(),
            how,
        });
        self
    }

    /// How an argument of a tool is redacted, if it is.
    pub fn how(&self, tool: &str, arg: &str) -> Option<Redact> {
        self.rules
            .iter()
            .find(|r| r.arg == arg && r.tool.as_deref().is_none_or(|t| t == tool))
            .map(|r| r.how)
    }
}

/// How tripped circuit breakers recover, and how much evidence an error rate needs.
///
/// ```
/// use agentpolicy_runtime::engine::BreakerSettings;
/// let b = BreakerSettings::default();
/// assert_eq!((b.min_results, b.cooldown), (10, None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// An error-rate breaker is only judged once its window holds this many reported
    /// results, so one early error is not a 100% error rate.
    pub min_results: u32,
    /// `None`: a tripped breaker stays open until [`super::Engine::reset_breaker`].
    /// `Some(d)`: after `d` it is half-open: one probe call of the agent may run; a
    /// good reported result closes the breaker, an error opens it for another `d`.
    pub cooldown: Option<Duration>,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            min_results: 10,
            cooldown: None,
        }
    }
}

/// A file an operator creates to stop agents without code, and how often it is read.
///
/// While the file exists, each of its lines names an agent to suspend; an empty file,
/// or a line `*` or `all`, suspends everything. `#` starts a comment. Removing the file
/// lifts what it imposed (suspensions made through the API stay). A background thread
/// reads it every `poll_interval` (default 1 s, far inside the 60 s an operator is
/// promised); [`super::Engine::poll_kill_file`] reads it at once.
///
/// ```
/// use std::time::Duration;
/// use agentpolicy_runtime::engine::KillFile;
/// let k = KillFile::new("/run/agentpolicy/STOP");
/// assert_eq!(k.poll_interval, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillFile {
    pub path: PathBuf,
    pub poll_interval: Duration,
}

impl KillFile {
    pub fn new(path: impl Into<PathBuf>) -> KillFile {
        KillFile {
            path: path.into(),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Told about escalations as they are raised and resolved, e.g. to page the route's
/// `notify` target. Called outside the engine's locks; must not block for long.
pub trait Notify: Send + Sync + fmt::Debug {
    fn escalated(&self, escalation: &Escalation);
    fn resolved(&self, escalation: &Escalation, outcome: crate::Outcome) {
        let _ = (escalation, outcome);
    }
}

/// How an [`super::Engine`] runs.
///
/// ```
/// use agentpolicy_runtime::engine::EngineConfig;
/// let config = EngineConfig::default();
/// assert!(config.audit.is_none());
/// assert_eq!(config.shards, 64);
/// ```
pub struct EngineConfig {
    pub clock: Arc<dyn Clock>,
    /// Sessions are split over this many independently locked shards (at least 1).
    pub shards: usize,
    /// The audit log; `None` records nothing (decisions still name the table hash).
    pub audit: Option<AuditLog>,
    pub redaction: Redaction,
    pub breakers: BreakerSettings,
    pub kill_file: Option<KillFile>,
    pub notify: Option<Arc<dyn Notify>>,
    /// How often the background thread expires escalations and, with a buffered audit
    /// log, fsyncs. The thread runs only with a kill file or this set.
    pub housekeeping: Option<Duration>,
    /// Records an earlier engine wrote to the audit log, oldest first: the new engine
    /// rebuilds its sessions, pending escalations, kill switches and breakers from them
    /// before it starts (see [`super::Restored`]). Empty: start with nothing.
    pub restore: Vec<crate::audit::Record>,
    /// Size limits on a call's arguments: a larger one is denied with reason `request`
    /// (and audited) before any test reads it.
    pub limits: crate::RequestLimits,
    /// A state store shared with other engines (see [`super::StateStore`]); `None`:
    /// the state lives in this engine only.
    pub state: Option<Arc<dyn super::StateStore>>,
    /// This engine's name among replicas sharing `state`: written into every record
    /// the engine appends to its audit log (`serve --replica-id`). `None`: no id.
    pub replica: Option<crate::audit::ReplicaId>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            clock: Arc::new(SystemClock),
            shards: 64,
            audit: None,
            redaction: Redaction::default(),
            breakers: BreakerSettings::default(),
            kill_file: None,
            notify: None,
            housekeeping: None,
            restore: Vec::new(),
            limits: crate::RequestLimits::default(),
            state: None,
            replica: None,
        }
    }
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("clock", &self.clock)
            .field("shards", &self.shards)
            .field("audit", &self.audit)
            .field("redaction", &self.redaction)
            .field("breakers", &self.breakers)
            .field("kill_file", &self.kill_file)
            .field("notify", &self.notify)
            .field("housekeeping", &self.housekeeping)
            .field("limits", &self.limits)
            .field("state", &self.state)
            .field("replica", &self.replica)
            .finish()
    }
}
