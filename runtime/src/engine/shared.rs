//! The engine's session steps on a shared [`StateStore`]: load the session's snapshot
//! into the shard, run the step, commit if nobody else did in between, else run it
//! again (at most [`MAX_ATTEMPTS`] times). Without a store every helper here runs the
//! step on the shard's own copy, as the engine always did.
//!
//! The shard lock is held across the store round trips, so the engine's own threads
//! queue per shard rather than lose compare-and-sets to each other; other engines
//! are what the version check is for.

use std::sync::atomic::Ordering;

use super::breaker::Event;
use super::call::{Call, CallRef, Internal, Reason, SessionId, Verdict};
use super::calls::Decided;
use super::state::{self, MAX_ATTEMPTS, SharedControls, StateStore};
use super::{EngineError, Inner, Session, Shard};

impl Inner {
    /// Replaces the shard's copy of a session with the store's; returns the version
    /// read (0: the store has no such session, and the shard no longer either).
    pub(crate) fn pull(
        &self,
        store: &dyn StateStore,
        shard: &mut Shard,
        id: SessionId,
    ) -> Result<u64, Internal> {
        let (stored, controls) = store.load(id.0)?;
        self.kill_all.store(controls.kill_all, Ordering::SeqCst);
        if let Some(t) = &controls.table
            && *t != shard.loaded.hash.to_string()
        {
            return Err(Internal::State(format!(
                "the replicas disagree on the table: the one in force (the last one a replica started on or reloaded) is {t}, this replica runs {}; reload this replica with that policy",
                shard.loaded.hash
            )));
        }
        let Some(stored) = stored else {
            shard.sessions.remove(&id.0);
            return Ok(0);
        };
        let session = state::decode(&stored.bytes, &shard.loaded.table)?;
        if let Some(ctl) = shard.loaded.controls.get(session.agent.index()) {
            let killed = controls.killed.contains(&session.agent_name);
            ctl.killed.store(killed, Ordering::SeqCst);
        }
        shard.sessions.insert(id.0, session);
        Ok(stored.version)
    }

    /// Commits the shard's copy of a session at `version`; `false`: lost to another
    /// engine's write.
    pub(crate) fn push(
        &self,
        store: &dyn StateStore,
        shard: &Shard,
        id: SessionId,
        version: u64,
    ) -> Result<bool, Internal> {
        let Some(session) = shard.sessions.get(&id.0) else {
            return Ok(true);
        };
        let bytes = state::encode(session, &shard.loaded.table)?;
        Ok(store.commit(id.0, version, &bytes)?)
    }

    /// Runs `step` on the session: on the shard's copy without a store, on the
    /// store's state with one (committed, or run again after a conflict).
    pub(crate) fn session_change<R>(
        &self,
        shard: &mut Shard,
        id: SessionId,
        mut step: impl FnMut(&mut Session) -> Result<R, EngineError>,
    ) -> Result<R, EngineError> {
        let Some(store) = &self.state else {
            let session = shard
                .sessions
                .get_mut(&id.0)
                .ok_or(EngineError::UnknownSession(id))?;
            return step(session);
        };
        for _ in 0..MAX_ATTEMPTS {
            let version = self.pull(&**store, shard, id)?;
            let session = shard
                .sessions
                .get_mut(&id.0)
                .ok_or(EngineError::UnknownSession(id))?;
            let out = step(session)?;
            if self.push(&**store, shard, id, version)? {
                return Ok(out);
            }
        }
        Err(contended(id).into())
    }

    /// Brings the shard's copy of a session up to the store's (no-op without a store).
    pub(crate) fn refresh_session(&self, shard: &mut Shard, id: SessionId) -> Result<(), Internal> {
        match &self.state {
            Some(store) => self.pull(&**store, shard, id).map(|_| ()),
            None => Ok(()),
        }
    }

    /// A decision on the store's state of the session, committed; breaker events are
    /// left in `Decided::breaker` for after the commit, so a decision run again after
    /// a conflict feeds the breakers once.
    pub(crate) fn decide_shared(
        &self,
        store: &dyn StateStore,
        shard: &mut Shard,
        id: SessionId,
        call: &Call<'_>,
        now: i64,
    ) -> Decided {
        for _ in 0..MAX_ATTEMPTS {
            let version = match self.pull(store, shard, id) {
                Ok(v) => v,
                Err(e) => return self.denied(shard, id, call, now, e),
            };
            let decided = self.decide_locked(shard, id, call, now, true);
            if version == 0 {
                // No such session: denied, and nothing to write.
                return decided;
            }
            let committed = self.push(store, shard, id, version);
            if !matches!(committed, Ok(true))
                && let Some(e) = decided.verdict.escalation
            {
                shard.pending.remove(&e);
            }
            match committed {
                Ok(true) => match &decided.escalation {
                    // Stored for every engine to list and resolve; not stored, not raised.
                    Some(e) => match super::shared_escalation::encode(e)
                        .and_then(|b| Ok(store.put_escalation(&e.id.to_string(), &b)?))
                    {
                        Ok(()) => return decided,
                        Err(err) => {
                            shard.pending.remove(&e.id);
                            return self.denied(shard, id, call, now, err);
                        }
                    },
                    None => return decided,
                },
                Ok(false) => continue,
                Err(e) => return self.denied(shard, id, call, now, e),
            }
        }
        self.denied(shard, id, call, now, contended(id))
    }

    /// A deny for a fault of the store, with its decision record.
    fn denied(
        &self,
        shard: &Shard,
        id: SessionId,
        call: &Call<'_>,
        now: i64,
        e: Internal,
    ) -> Decided {
        let verdict = Verdict::deny(Reason::Internal(e), shard.loaded.hash, None);
        let agent = shard
            .sessions
            .get(&id.0)
            .map(|s| s.agent_name.as_str())
            .unwrap_or("");
        let records = self.decision_records(&shard.loaded.table, id, agent, call, &verdict, now);
        Decided {
            verdict,
            records,
            escalation: None,
            breaker: None,
        }
    }

    /// Feeds a decision's breaker event once its state is committed, and appends the
    /// records of any transition.
    pub(crate) fn feed_deferred(
        &self,
        shard: &Shard,
        id: SessionId,
        decided: &mut Decided,
        now: i64,
    ) {
        let (Some((event, call)), Some(session)) =
            (decided.breaker.take(), shard.sessions.get(&id.0))
        else {
            return;
        };
        let loaded = &shard.loaded;
        let (Some(ctl), Some(agent)) = (
            loaded.controls.get(session.agent.index()),
            loaded.table.data().agents.get(session.agent.index()),
        ) else {
            return;
        };
        // A poisoned breaker lock leaves the event uncounted: the decision, already
        // committed to the store, stands.
        if let Ok(records) =
            self.feed_breaker(ctl, &agent.breakers, event, call, None, now, loaded.hash)
            && self.audit.is_some()
        {
            decided.records.extend(records);
        }
    }

    /// Takes the store's kill switch into this engine's flags (the background thread
    /// calls it, so status and metrics follow other engines' kills too).
    pub(crate) fn pull_controls(&self) -> Result<(), EngineError> {
        let Some(store) = &self.state else {
            return Ok(());
        };
        let SharedControls {
            kill_all, killed, ..
        } = store.controls().map_err(Internal::from)?;
        self.kill_all.store(kill_all, Ordering::SeqCst);
        for name in &killed {
            self.control(name)?;
        }
        let controls = self.controls.lock().map_err(|_| Internal::PoisonedLock)?;
        for ctl in controls.values() {
            ctl.killed
                .store(killed.contains(&ctl.name), Ordering::SeqCst);
        }
        Ok(())
    }

    /// Makes this engine's table the one in force in the store, once per start or
    /// swap (the timer retries while the store is down).
    pub(crate) fn announce_table(&self) {
        let Some(store) = &self.state else { return };
        if self.table_announced.load(Ordering::SeqCst) {
            return;
        }
        if store.set_table(&self.current_hash().to_string()).is_ok() {
            self.table_announced.store(true, Ordering::SeqCst);
        }
    }

    /// Opens a session in the store: a number no engine handed out, the state
    /// written as version 1.
    pub(crate) fn new_shared_session(&self, store: &dyn StateStore) -> Result<SessionId, Internal> {
        Ok(SessionId(store.next_session()?))
    }
}

fn contended(id: SessionId) -> Internal {
    Internal::State(format!(
        "session {id} was changed by other engines {MAX_ATTEMPTS} times in a row"
    ))
}

/// A breaker event and the call that caused it.
pub(crate) type Deferred = (Event, CallRef);
