//! Resolved escalations for the long-poll wait: the engine tells [`Waiters`] about every
//! resolution (by a human, a timeout, or a session closing), which keeps its outcome
//! and wakes the requests waiting on it. A bounded number of resolutions is kept; the
//! oldest sessions' are forgotten first.

use std::collections::BTreeMap;
use std::sync::Mutex;

use agentpolicy_runtime::Outcome;
use agentpolicy_runtime::engine::{CallRef, Escalation, Notify};

/// How many resolutions are kept for waits that come late.
const KEPT: usize = 100_000;

/// How an escalation ended, as a wait reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub agent: String,
    pub routes: Vec<String>,
    pub outcome: Outcome,
    /// `approve`, `reject` or `timeout` when known (a resolution through this service,
    /// or a timeout); a session closing rejects without saying so here.
    pub resolution: Option<&'static str>,
    pub why: Option<String>,
}

#[derive(Debug, Default)]
pub struct Waiters {
    wake: tokio::sync::Notify,
    done: Mutex<BTreeMap<CallRef, Done>>,
}

impl Waiters {
    pub fn get(&self, id: CallRef) -> Option<Done> {
        self.done.lock().ok().and_then(|d| d.get(&id).cloned())
    }

    /// Adds what the caller learnt about a resolution (its kind and why).
    pub fn detail(&self, id: CallRef, resolution: &'static str, why: &str) {
        if let Ok(mut done) = self.done.lock()
            && let Some(d) = done.get_mut(&id)
        {
            d.resolution = Some(resolution);
            d.why = Some(why.to_owned());
        }
    }

    /// A future that completes on the next resolution (or shutdown).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    pub fn wake_all(&self) {
        self.wake.notify_waiters();
    }
}

impl Notify for Waiters {
    fn escalated(&self, _: &Escalation) {}

    fn resolved(&self, escalation: &Escalation, outcome: Outcome) {
        if let Ok(mut done) = self.done.lock() {
            while done.len() >= KEPT {
                done.pop_first();
            }
            done.insert(
                escalation.id,
                Done {
                    agent: escalation.agent.clone(),
                    routes: escalation.routes.clone(),
                    outcome,
                    resolution: None,
                    why: None,
                },
            );
        }
        self.wake.notify_waiters();
    }
}
