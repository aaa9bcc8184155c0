//! Escalations across engines that share a [`StateStore`]: a pending escalation is
//! stored (so every engine lists it), resolved on any engine by an atomic claim in the
//! store, and applied by the engine that holds the call (the one whose agent waits on
//! it): that engine re-checks it against the session as stored, audits the resolution
//! once in its own log, answers its waiters and stores the outcome, which the claiming
//! engine returns to its caller. A timeout is a claim too, so only one engine times an
//! escalation out. Claims reach the holding engine by the store's events and, as a
//! fallback, on its housekeeping timer.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::call::{CallRef, Internal, SessionId};
use super::escalation::{Escalation, Resolution, Resolved};
use super::state::StateStore;
use super::{EngineError, Inner};
use crate::decision::Outcome;

/// How long a resolution made on one engine waits for the engine holding the call to
/// apply it before it answers that the claim is made but not yet applied.
const RESULT_WAIT: Duration = Duration::from_secs(5);

/// How often that wait asks the store.
const RESULT_POLL: Duration = Duration::from_millis(5);

/// A pending escalation as stored: what listing it shows.
#[derive(Debug, Serialize, Deserialize)]
struct StoredEscalation {
    session_id: u64,
    call: u64,
    session: String,
    agent: String,
    tool: String,
    rule: Option<String>,
    routes: Vec<String>,
    notify: Vec<String>,
    raised_ms: i64,
    deadline_ms: Option<i64>,
    timeout_outcome: String,
    table: String,
}

/// A claim: who resolves, and how.
#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    resolution: String,
    by: String,
    note: Option<String>,
}

/// What the engine holding the call decided.
#[derive(Debug, Serialize, Deserialize)]
struct Finished {
    outcome: String,
    resolution: String,
    why: String,
}

fn bad(what: &str, e: impl std::fmt::Display) -> Internal {
    Internal::State(format!("the stored {what} is not readable: {e}"))
}

fn outcome(keyword: &str) -> Result<Outcome, Internal> {
    match keyword {
        "allow" => Ok(Outcome::Allow),
        "deny" => Ok(Outcome::Deny),
        other => Err(bad("outcome", format!("`{other}` is not allow or deny"))),
    }
}

fn resolution(keyword: &str) -> Result<Resolution, Internal> {
    match keyword {
        "approve" => Ok(Resolution::Approve),
        "reject" => Ok(Resolution::Reject),
        "timeout" => Ok(Resolution::TimedOut),
        other => Err(bad("resolution", format!("`{other}` is not a resolution"))),
    }
}

pub(crate) fn encode(e: &Escalation) -> Result<Vec<u8>, Internal> {
    serde_json::to_vec(&StoredEscalation {
        session_id: e.id.session.0,
        call: e.id.n,
        session: e.session.clone(),
        agent: e.agent.clone(),
        tool: e.tool.clone(),
        rule: e.rule.clone(),
        routes: e.routes.clone(),
        notify: e.notify.clone(),
        raised_ms: e.raised_ms,
        deadline_ms: e.deadline_ms,
        timeout_outcome: e.timeout_outcome.keyword().to_owned(),
        table: e.table.to_string(),
    })
    .map_err(|e| Internal::State(format!("cannot encode the escalation: {e}")))
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Escalation, Internal> {
    let s: StoredEscalation = serde_json::from_slice(bytes).map_err(|e| bad("escalation", e))?;
    Ok(Escalation {
        id: CallRef {
            session: SessionId(s.session_id),
            n: s.call,
        },
        session: s.session,
        agent: s.agent,
        tool: s.tool,
        rule: s.rule,
        routes: s.routes,
        notify: s.notify,
        raised_ms: s.raised_ms,
        deadline_ms: s.deadline_ms,
        timeout_outcome: outcome(&s.timeout_outcome)?,
        table: s.table.parse().map_err(|e| bad("escalation's table", e))?,
    })
}

impl Inner {
    /// Every escalation pending on any engine, oldest first.
    pub(crate) fn shared_escalations(
        &self,
        store: &dyn StateStore,
    ) -> Result<Vec<Escalation>, EngineError> {
        let mut out = store
            .escalations()
            .map_err(Internal::from)?
            .iter()
            .map(|b| decode(b))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|e| (e.raised_ms, e.id));
        Ok(out)
    }

    /// Resolves an escalation through the store: claims it, then applies it when this
    /// engine holds the call, or (`wait`) waits for the engine that does.
    pub(crate) fn resolve_shared(
        &self,
        store: &dyn StateStore,
        id: CallRef,
        how: Resolution,
        by: &str,
        note: Option<&str>,
        wait: bool,
    ) -> Result<Option<Resolved>, EngineError> {
        let claim = serde_json::to_vec(&Claim {
            resolution: how.keyword().to_owned(),
            by: by.to_owned(),
            note: note.map(str::to_owned),
        })
        .map_err(|e| Internal::State(format!("cannot encode the claim: {e}")))?;
        let key = id.to_string();
        let Some(stored) = store
            .claim_escalation(&key, &claim)
            .map_err(Internal::from)?
        else {
            return Err(EngineError::NoSuchEscalation(id));
        };
        if self.holds(id)? {
            return self.apply_claimed(store, id, how, by, note).map(Some);
        }
        if !wait {
            return Ok(None);
        }
        let escalation = decode(&stored)?;
        let deadline = Instant::now() + RESULT_WAIT;
        loop {
            if let Some(bytes) = store.escalation_result(&key).map_err(Internal::from)? {
                let f: Finished =
                    serde_json::from_slice(&bytes).map_err(|e| bad("resolution", e))?;
                let outcome = outcome(&f.outcome)?;
                if let Some(notify) = &self.notify {
                    notify.resolved(&escalation, outcome);
                }
                return Ok(Some(Resolved {
                    escalation,
                    resolution: resolution(&f.resolution)?,
                    outcome,
                    why: f.why,
                    audit: None,
                }));
            }
            if Instant::now() >= deadline {
                return Err(Internal::State(format!(
                    "escalation {id} is claimed ({}), but the replica that holds its call has not applied it within {} s; it applies the claim when it next reads the store",
                    how.keyword(),
                    RESULT_WAIT.as_secs()
                ))
                .into());
            }
            std::thread::sleep(RESULT_POLL);
        }
    }

    /// Whether this engine holds the call of escalation `id` (its agent waits here).
    fn holds(&self, id: CallRef) -> Result<bool, Internal> {
        Ok(self.lock_shard(id.session)?.pending.contains_key(&id))
    }

    /// Applies a claim on a call this engine holds, and stores the outcome. When the
    /// resolution cannot be audited the escalation stays pending here and the claim
    /// stays in the store: the next pass applies it.
    fn apply_claimed(
        &self,
        store: &dyn StateStore,
        id: CallRef,
        how: Resolution,
        by: &str,
        note: Option<&str>,
    ) -> Result<Resolved, EngineError> {
        let resolved = self.apply(id, how, by, note)?;
        let finished = serde_json::to_vec(&Finished {
            outcome: resolved.outcome.keyword().to_owned(),
            resolution: how.keyword().to_owned(),
            why: resolved.why.clone(),
        })
        .map_err(|e| Internal::State(format!("cannot encode the resolution: {e}")))?;
        // Applied and audited here; a store that fails now leaves the claiming engine
        // to answer that the claim is not applied yet (the log has the outcome).
        let _ = store.finish_escalation(&id.to_string(), &finished);
        Ok(resolved)
    }

    /// Applies the claims other engines (or this one's timer) made on calls this engine
    /// holds (`only`: just that one, as an event names it).
    pub(crate) fn apply_claims(&self, only: Option<CallRef>) -> Vec<Resolved> {
        let Some(store) = &self.state else {
            return Vec::new();
        };
        let mut held = Vec::new();
        for shard in &*self.shards {
            if let Ok(shard) = shard.0.lock() {
                held.extend(
                    shard
                        .pending
                        .keys()
                        .filter(|id| only.is_none_or(|o| o == **id))
                        .copied(),
                );
            }
        }
        if held.is_empty() {
            return Vec::new();
        }
        let keys: Vec<String> = held.iter().map(ToString::to_string).collect();
        let Ok(claims) = store.claims(&keys) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (id, claim) in held.into_iter().zip(claims) {
            let Some(bytes) = claim else { continue };
            let Ok(c) = serde_json::from_slice::<Claim>(&bytes) else {
                continue;
            };
            let Ok(how) = resolution(&c.resolution) else {
                continue;
            };
            if let Ok(r) = self.apply_claimed(&**store, id, how, &c.by, c.note.as_deref()) {
                out.push(r);
            }
        }
        out
    }

    /// Times out, through the store, every stored escalation past its deadline: each
    /// is claimed once, by whichever engine gets there first, and applied by the engine
    /// holding its call.
    pub(crate) fn expire_shared(&self, store: &dyn StateStore) -> Vec<Resolved> {
        let now = self.clock.now_ms();
        let Ok(all) = self.shared_escalations(store) else {
            return Vec::new();
        };
        all.into_iter()
            .filter(|e| e.deadline_ms.is_some_and(|d| d <= now))
            .filter_map(|e| {
                self.resolve_shared(store, e.id, Resolution::TimedOut, "timeout", None, false)
                    .ok()
                    .flatten()
            })
            .collect()
    }
}
