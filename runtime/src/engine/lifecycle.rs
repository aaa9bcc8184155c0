//! Opening, closing and inspecting sessions, and starting tasks. Each step that changes
//! a session is audited (`session` records) before it is acknowledged.

use super::call::{CallRef, Internal, SessionId};
use super::escalation::Resolution;
use super::session::{Session, SessionState};
use super::{EngineError, Inner, SessionOptions, Shard};
use crate::audit::{Record, RecordKind};
use std::sync::atomic::Ordering;

impl Inner {
    pub(crate) fn open_session(
        &self,
        agent: &str,
        options: SessionOptions<'_>,
    ) -> Result<SessionId, EngineError> {
        let now = self.clock.now_ms();
        let id = match &self.state {
            None => SessionId(self.next_session.fetch_add(1, Ordering::SeqCst) + 1),
            Some(store) => self.new_shared_session(&**store)?,
        };
        let mut guard = self.lock_shard(id)?;
        let Shard {
            loaded, sessions, ..
        } = &mut *guard;
        let table = &*loaded.table;
        let agent_id = table
            .agent_id(agent)
            .ok_or_else(|| EngineError::UnknownAgent(agent.to_owned()))?;
        let name = options.name.map_or_else(|| id.to_string(), str::to_owned);
        let mut session = Session::new(name, agent_id, table.data());
        session.context = options.context.map(str::to_owned);
        let mut bound = Vec::new();
        for &(key, value) in options.bind {
            let k = table
                .key_id(key)
                .ok_or_else(|| EngineError::UnknownKey(key.to_owned()))?;
            let slot = session
                .bound
                .get_mut(k.index())
                .ok_or_else(|| EngineError::UnknownKey(key.to_owned()))?;
            *slot = Some(value.into());
            bound.push(format!("{key}={value}"));
        }
        let mut r = Record::new(RecordKind::Session, now);
        r.table = Some(loaded.hash);
        r.session = Some(session.name.clone());
        r.session_id = Some(id.0);
        r.agent = Some(agent.to_owned());
        r.context = session.context.clone();
        // The record names the bound values (a patient, a matter): it is about their data.
        r.tier = super::records::tier_name(
            table,
            super::records::keyed_tier(table, options.bind.iter().map(|(k, _)| *k)),
        );
        if !options.bind.is_empty() {
            let keys: serde_json::Map<String, serde_json::Value> = options
                .bind
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
                .collect();
            let mut labels = serde_json::Map::new();
            labels.insert("bound".into(), serde_json::Value::Object(keys));
            r.labels = Some(labels);
        }
        r.detail = Some(if bound.is_empty() {
            "opened".to_owned()
        } else {
            format!("opened, bound to {}", bound.join(", "))
        });
        sessions.insert(id.0, session);
        if let Some(store) = &self.state {
            let written = self.push(&**store, &guard, id, 0);
            if !matches!(written, Ok(true)) {
                guard.sessions.remove(&id.0);
                let e = written.err().unwrap_or_else(|| {
                    Internal::State(format!("session number {} is taken in the store", id.0))
                });
                return Err(e.into());
            }
        }
        let ack = match self.enqueue(r) {
            Ok(ack) => ack,
            Err(e) => {
                guard.sessions.remove(&id.0);
                return Err(e.into());
            }
        };
        drop(guard);
        if let Err(e) = self.wait(ack) {
            if let Ok(mut guard) = self.lock_shard(id) {
                guard.sessions.remove(&id.0);
            }
            return Err(e.into());
        }
        Ok(id)
    }

    pub(crate) fn close_session(&self, id: SessionId) -> Result<(), EngineError> {
        let pending: Vec<CallRef> = {
            let mut guard = self.lock_shard(id)?;
            self.refresh_session(&mut guard, id)?;
            let session = guard
                .sessions
                .get(&id.0)
                .ok_or(EngineError::UnknownSession(id))?;
            if session.closed {
                return Err(EngineError::SessionClosed(id));
            }
            guard
                .pending
                .keys()
                .filter(|c| c.session == id)
                .copied()
                .collect()
        };
        for call in pending {
            // Raced with another resolution: that one stands.
            let _ = self.resolve(call, Resolution::Reject, "session closed", None);
        }
        if let Some(store) = &self.state {
            // Those other engines hold: claimed here, applied there.
            for e in self.shared_escalations(&**store)? {
                if e.id.session == id {
                    let _ = self.resolve_shared(
                        &**store,
                        e.id,
                        Resolution::Reject,
                        "session closed",
                        None,
                        false,
                    );
                }
            }
        }
        self.session_step(id, "closed", |s| {
            s.closed = true;
        })
        .map(|_| ())
    }

    pub(crate) fn start_task(&self, id: SessionId) -> Result<u64, EngineError> {
        self.session_step(id, "", |s| {
            s.task += 1;
            s.usage.new_task();
        })
    }

    /// Applies a change to an open session and audits it; returns the task number.
    fn session_step(
        &self,
        id: SessionId,
        what: &str,
        // `Fn`: with a state store, a change that lost a compare-and-set runs again.
        change: impl Fn(&mut Session),
    ) -> Result<u64, EngineError> {
        let now = self.clock.now_ms();
        let mut guard = self.lock_shard(id)?;
        self.session_change(&mut guard, id, |session| {
            if session.closed {
                return Err(EngineError::SessionClosed(id));
            }
            change(session);
            Ok(())
        })?;
        let Shard {
            loaded, sessions, ..
        } = &mut *guard;
        let session = sessions
            .get_mut(&id.0)
            .ok_or(EngineError::UnknownSession(id))?;
        let mut r = Record::new(RecordKind::Session, now);
        r.table = Some(loaded.hash);
        r.session = Some(session.name.clone());
        r.session_id = Some(id.0);
        r.agent = Some(session.agent_name.clone());
        r.context = session.context.clone();
        r.tier = super::records::tier_name(&loaded.table, session.tier);
        r.detail = Some(if what.is_empty() {
            format!("task {} started", session.task)
        } else {
            what.to_owned()
        });
        let task = session.task;
        let ack = self.enqueue(r)?;
        drop(guard);
        self.wait(ack)?;
        Ok(task)
    }

    pub(crate) fn session_state(&self, id: SessionId) -> Result<SessionState, EngineError> {
        let now = self.clock.now_ms();
        let mut guard = self.lock_shard(id)?;
        self.refresh_session(&mut guard, id)?;
        let session = guard
            .sessions
            .get(&id.0)
            .ok_or(EngineError::UnknownSession(id))?;
        let pending = guard
            .pending
            .keys()
            .filter(|c| c.session == id)
            .copied()
            .collect();
        Ok(session.state(id, guard.loaded.table.data(), now, pending))
    }

    pub(crate) fn session_agent(&self, id: SessionId) -> Result<String, EngineError> {
        let mut guard = self.lock_shard(id)?;
        if !guard.sessions.contains_key(&id.0) {
            self.refresh_session(&mut guard, id)?;
        }
        guard
            .sessions
            .get(&id.0)
            .map(|s| s.agent_name.clone())
            .ok_or(EngineError::UnknownSession(id))
    }

    pub(crate) fn all_sessions(&self) -> Result<Vec<SessionState>, EngineError> {
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        for i in 0..self.shards.len() {
            // Session ids are spread over shards by `id % shards`: id `i` names shard `i`.
            let guard = self.lock_shard(SessionId(i as u64))?;
            for (&id, session) in &guard.sessions {
                let sid = SessionId(id);
                let pending = guard
                    .pending
                    .keys()
                    .filter(|c| c.session == sid)
                    .copied()
                    .collect();
                out.push(session.state(sid, guard.loaded.table.data(), now, pending));
            }
        }
        out.sort_by_key(|s| s.id);
        Ok(out)
    }
}
