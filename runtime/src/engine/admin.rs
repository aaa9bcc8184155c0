//! Operator controls: the kill switch (API and kill file), mode overrides, breaker
//! resets and table swaps. Each takes effect before it is audited, so a failing audit
//! log can delay the record of a kill but never the kill itself.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::call::Internal;
use super::control::{KillOrder, parse_kill_file};
use super::{EngineError, Inner, Loaded};
use crate::audit::{Ack, Record, RecordKind};
use crate::decision_table::DecisionTable;
use crate::hash::ContentHash;
use crate::table::Mode;

/// The words of a breaker reset's `control` record, which a restart looks for.
pub(crate) const RESET_BY_HAND: &str = "reset by hand";

/// The `detail` of a kill switch's `control` record, for one agent or (`None`) all; a
/// restart compares records with it to restore the switch.
pub(crate) fn kill_detail(agent: Option<&str>, on: bool) -> String {
    match (agent, on) {
        (None, true) => "kill switch: every agent suspended".to_owned(),
        (None, false) => "kill switch lifted for the engine".to_owned(),
        (Some(a), true) => format!("kill switch: agent `{a}` suspended"),
        (Some(a), false) => format!("kill switch lifted for agent `{a}`"),
    }
}

/// The `detail` of a mode override's `control` record.
pub(crate) fn mode_detail(agent: &str, mode: Option<Mode>) -> String {
    match mode {
        Some(Mode::Shadow) => format!("agent `{agent}` set to shadow mode"),
        Some(Mode::Enforce) => format!("agent `{agent}` set to enforce mode"),
        None => format!("agent `{agent}` back to the table's mode"),
    }
}

/// Who is stopped now, and by what.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suspensions {
    /// The engine-wide kill switch (API or kill file).
    pub kill_all: bool,
    /// Agents suspended by the kill switch (API or kill file), by name.
    pub killed: Vec<String>,
    /// Agents with a tripped breaker, and the breaker as written.
    pub tripped: Vec<(String, String)>,
}

impl Inner {
    pub(crate) fn suspensions(&self) -> Result<Suspensions, Internal> {
        let controls = self.controls.lock().map_err(|_| Internal::PoisonedLock)?;
        let mut out = Suspensions {
            kill_all: self.kill_all.load(Ordering::SeqCst)
                || self.file_kill_all.load(Ordering::SeqCst),
            ..Suspensions::default()
        };
        for c in controls.values() {
            if c.killed() {
                out.killed.push(c.name.clone());
            }
            if c.tripped.load(Ordering::SeqCst) {
                let def = c
                    .breaker
                    .lock()
                    .map_err(|_| Internal::PoisonedLock)?
                    .trip
                    .map(|t| t.def.to_string())
                    .unwrap_or_default();
                out.tripped.push((c.name.clone(), def));
            }
        }
        out.killed.sort();
        out.tripped.sort();
        Ok(out)
    }

    fn control_record(&self, by: &str, agent: Option<&str>, detail: String) -> Record {
        let mut r = Record::new(RecordKind::Control, self.clock.now_ms());
        r.table = Some(self.current_hash());
        r.agent = agent.map(str::to_owned);
        r.by = Some(by.to_owned());
        r.detail = Some(detail);
        r
    }

    /// The control of an agent in the table in force.
    fn known_control(&self, agent: &str) -> Result<Arc<super::AgentControl>, EngineError> {
        let loaded = self.current()?;
        let id = loaded
            .table
            .agent_id(agent)
            .ok_or_else(|| EngineError::UnknownAgent(agent.to_owned()))?;
        loaded
            .controls
            .get(id.index())
            .cloned()
            .ok_or_else(|| EngineError::UnknownAgent(agent.to_owned()))
    }

    pub(crate) fn set_kill_all(&self, on: bool, by: &str) -> Result<Option<Ack>, EngineError> {
        // With a shared store the switch is the store's: every engine reads it on its
        // next decision. A store that cannot take it is an error, not a silent local kill.
        if let Some(store) = &self.state {
            store.set_kill(None, on).map_err(Internal::from)?;
        }
        self.kill_all.store(on, Ordering::SeqCst);
        Ok(self.append(self.control_record(by, None, kill_detail(None, on)))?)
    }

    pub(crate) fn set_kill_agent(
        &self,
        agent: &str,
        on: bool,
        by: &str,
    ) -> Result<Option<Ack>, EngineError> {
        let ctl = self.known_control(agent)?;
        if let Some(store) = &self.state {
            store.set_kill(Some(agent), on).map_err(Internal::from)?;
        }
        ctl.killed.store(on, Ordering::SeqCst);
        let detail = kill_detail(Some(agent), on);
        Ok(self.append(self.control_record(by, Some(agent), detail))?)
    }

    pub(crate) fn set_mode(
        &self,
        agent: &str,
        mode: Option<Mode>,
        by: &str,
    ) -> Result<Option<Ack>, EngineError> {
        let ctl = self.known_control(agent)?;
        ctl.set_mode(mode);
        let detail = mode_detail(agent, mode);
        Ok(self.append(self.control_record(by, Some(agent), detail))?)
    }

    pub(crate) fn reset_breaker(&self, agent: &str, by: &str) -> Result<Option<Ack>, EngineError> {
        let ctl = self.known_control(agent)?;
        let ended = ctl
            .breaker
            .lock()
            .map_err(|_| Internal::PoisonedLock)?
            .reset();
        let detail = match &ended {
            Some(trip) => {
                self.trip_flags(&ctl, trip, false);
                format!(
                    "breaker `{}` of agent `{agent}` {RESET_BY_HAND}; suspension lifted",
                    trip.def
                )
            }
            None => format!("breakers of agent `{agent}` {RESET_BY_HAND} (none was tripped)"),
        };
        Ok(self.append(self.control_record(by, Some(agent), detail))?)
    }

    pub(crate) fn record_refusal(
        &self,
        who: &str,
        what: &str,
        why: &str,
    ) -> Result<Option<Ack>, EngineError> {
        let mut r = Record::new(RecordKind::Refusal, self.clock.now_ms());
        r.table = Some(self.current_hash());
        r.by = Some(who.to_owned());
        r.detail = Some(format!("refused {what}: {why}"));
        Ok(self.append(r)?)
    }

    pub(crate) fn swap_table(
        &self,
        table: DecisionTable,
        by: &str,
    ) -> Result<ContentHash, EngineError> {
        let old_hash;
        let new_hash = table.source_hash();
        let sets = table.deploy_sets_summary();
        {
            let mut current = self.current.write().map_err(|_| Internal::PoisonedLock)?;
            let controls = table
                .data()
                .agents
                .iter()
                .map(|a| self.control(&a.name))
                .collect::<Result<Vec<_>, _>>()?;
            old_hash = current.hash;
            let generation = current.generation + 1;
            *current = Arc::new(Loaded {
                table: Arc::new(table),
                hash: new_hash,
                controls,
                generation,
            });
            self.generation.store(generation, Ordering::Release);
        }
        let mut r = self.control_record(
            by,
            None,
            format!("table swapped: {old_hash} replaced by {new_hash}{sets}"),
        );
        r.table = Some(new_hash);
        self.append(r)?;
        self.table_announced.store(false, Ordering::SeqCst);
        self.announce_table();
        Ok(old_hash)
    }

    /// Applies the kill file as it is now; `true` when a suspension changed.
    pub(crate) fn poll_kill_file(&self) -> Result<bool, EngineError> {
        let Some(kill_file) = &self.kill_file else {
            return Ok(false);
        };
        let (order, present) = match std::fs::read_to_string(&kill_file.path) {
            Ok(text) => (parse_kill_file(&text), true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (KillOrder::default(), false),
            // A kill file that exists but cannot be read still means stop.
            Err(_) => (
                KillOrder {
                    all: true,
                    agents: Vec::new(),
                },
                true,
            ),
        };
        let mut changed = self.file_kill_all.swap(order.all, Ordering::SeqCst) != order.all;
        for name in &order.agents {
            self.control(name)?;
        }
        let controls: Vec<_> = self
            .controls
            .lock()
            .map_err(|_| Internal::PoisonedLock)?
            .values()
            .cloned()
            .collect();
        for ctl in controls {
            let want = order.agents.contains(&ctl.name);
            changed |= ctl.file_killed.swap(want, Ordering::SeqCst) != want;
        }
        if changed {
            let path = kill_file.path.display();
            let detail = match (present, order.all) {
                (false, _) => format!("kill file `{path}` removed: its suspensions lifted"),
                (true, true) => format!("kill file `{path}`: every agent suspended"),
                (true, false) => format!(
                    "kill file `{path}`: agents suspended: {}",
                    order.agents.join(", ")
                ),
            };
            self.append(self.control_record("kill-file", None, detail))?;
        }
        Ok(changed)
    }
}
