//! [`evidence`]: the decisions of a log, each joined with what followed it: the human's
//! action recorded for the same task (shadow comparison), the result the agent loop
//! reported, and how its escalation was resolved. `agentpolicy promote-check` and
//! `agentpolicy audit shadow-report` compute their figures from this. Reads only; like
//! [`super::query`] it skips lines that are not records, so check the log with
//! [`super::verify`] first.
//!
//! Records after a decision name it by session name and call number. A session name may
//! come back in a later run of the engine; a record then belongs to the latest decision
//! with that name and number before it.

use std::collections::HashMap;
use std::io::{self, BufRead};

use super::record::{HumanAction, RecordKind, decode};
use crate::decision::Outcome;

/// One decided call and what followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionEvidence {
    /// The decision record's sequence number.
    pub seq: u64,
    pub time_ms: i64,
    pub session: String,
    pub call: u64,
    pub agent: String,
    pub tool: String,
    /// The policy's outcome (in shadow mode, the would-be outcome).
    pub outcome: Outcome,
    /// Decided in shadow mode.
    pub shadow: bool,
    /// The session's triggering context, when it had one.
    pub context: Option<String>,
    /// The last `human` record for this call, and who recorded it.
    pub human: Option<(HumanAction, Option<String>)>,
    /// The last result reported for this call: `true` for ok, `false` for an error.
    pub result_ok: Option<bool>,
    /// How its escalation was resolved: `approve`, `reject` or `timeout`.
    pub resolution: Option<String>,
}

impl DecisionEvidence {
    /// The human's action agrees with the policy's outcome; `None` when no human action
    /// was recorded.
    pub fn human_agrees(&self) -> Option<bool> {
        self.human
            .as_ref()
            .map(|(a, _)| a.outcome() == self.outcome)
    }
}

/// Every decision of a log, in log order, and the lines skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    pub decisions: Vec<DecisionEvidence>,
    /// Lines that are not records.
    pub skipped_lines: u64,
    /// `human`, `result` or `resolution` records that name no earlier decision.
    pub unmatched: u64,
}

/// Reads a log and joins each decision with the records that follow it.
///
/// ```
/// use agentpolicy_runtime::audit::evidence;
/// let e = evidence(&b""[..]).unwrap();
/// assert!(e.decisions.is_empty());
/// ```
pub fn evidence<R: BufRead>(mut reader: R) -> io::Result<Evidence> {
    let mut out = Evidence::default();
    let mut by_call: HashMap<(String, u64), usize> = HashMap::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        let Ok(d) = decode(&buf) else {
            out.skipped_lines += 1;
            continue;
        };
        let r = d.record;
        let (Some(session), Some(call)) = (r.session.clone(), r.call) else {
            continue;
        };
        let key = (session, call);
        match r.kind {
            RecordKind::Decision => {
                let (Some(agent), Some(tool), Some(outcome)) = (r.agent, r.tool, r.outcome) else {
                    continue;
                };
                by_call.insert(key.clone(), out.decisions.len());
                out.decisions.push(DecisionEvidence {
                    seq: r.seq,
                    time_ms: r.time_ms,
                    session: key.0,
                    call,
                    agent,
                    tool,
                    outcome,
                    shadow: r.shadow,
                    context: r.context,
                    human: None,
                    result_ok: None,
                    resolution: None,
                });
            }
            RecordKind::Human | RecordKind::Result | RecordKind::Resolution => {
                let Some(target) = by_call.get(&key).and_then(|&i| out.decisions.get_mut(i)) else {
                    out.unmatched += 1;
                    continue;
                };
                match r.kind {
                    RecordKind::Human => {
                        if let Some(action) = r.human {
                            target.human = Some((action, r.by));
                        }
                    }
                    RecordKind::Result => target.result_ok = r.result.map(|res| res.ok),
                    _ => target.resolution = r.resolution,
                }
            }
            _ => {}
        }
    }
    Ok(out)
}
