//! Operator controls of one agent, shared by every table generation that names it:
//! the kill switch (set through the API or by the kill file), a mode override and its
//! circuit breakers. Flags are atomics, read on every decision without a lock, so a
//! kill takes effect on the very next decision of any thread.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::breaker::BreakerState;
use crate::table::Mode;

#[derive(Debug)]
pub(crate) struct AgentControl {
    pub name: String,
    /// Suspended through [`super::Engine::kill_agent`].
    pub killed: AtomicBool,
    /// Suspended by the kill file.
    pub file_killed: AtomicBool,
    /// A breaker is open or half-open; the breaker mutex says which.
    pub tripped: AtomicBool,
    /// 0: the table's mode; 1: shadow; 2: enforce.
    mode: AtomicU8,
    pub breaker: Mutex<BreakerState>,
}

impl AgentControl {
    pub(crate) fn new(name: &str) -> AgentControl {
        AgentControl {
            name: name.to_owned(),
            killed: AtomicBool::new(false),
            file_killed: AtomicBool::new(false),
            tripped: AtomicBool::new(false),
            mode: AtomicU8::new(0),
            breaker: Mutex::new(BreakerState::default()),
        }
    }

    pub(crate) fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst) || self.file_killed.load(Ordering::SeqCst)
    }

    /// The mode in force: the override, else the table's.
    pub(crate) fn mode(&self, table_mode: Mode) -> Mode {
        match self.mode.load(Ordering::SeqCst) {
            1 => Mode::Shadow,
            2 => Mode::Enforce,
            _ => table_mode,
        }
    }

    pub(crate) fn set_mode(&self, mode: Option<Mode>) {
        let v = match mode {
            None => 0,
            Some(Mode::Shadow) => 1,
            Some(Mode::Enforce) => 2,
        };
        self.mode.store(v, Ordering::SeqCst);
    }
}

/// What a kill file orders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KillOrder {
    pub all: bool,
    pub agents: Vec<String>,
}

/// Reads a kill file's text: an empty file, `*` or `all` suspends everything; other
/// lines name agents; `#` starts a comment.
pub(crate) fn parse_kill_file(text: &str) -> KillOrder {
    let mut order = KillOrder::default();
    let mut any = false;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        any = true;
        let name = line.strip_prefix("agent ").map_or(line, str::trim);
        if name == "*" || name == "all" {
            order.all = true;
        } else if !order.agents.iter().any(|a| a == name) {
            order.agents.push(name.to_owned());
        }
    }
    if !any {
        order.all = true;
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_file_forms() {
        assert!(parse_kill_file("").all);
        assert!(parse_kill_file("# only a comment\n").all);
        assert!(parse_kill_file("all").all);
        let o = parse_kill_file("intake\nagent billing # runaway\nintake\n");
        assert!(!o.all);
        assert_eq!(o.agents, ["intake", "billing"]);
    }

    #[test]
    fn mode_override() {
        let c = AgentControl::new("a");
        assert_eq!(c.mode(Mode::Enforce), Mode::Enforce);
        c.set_mode(Some(Mode::Shadow));
        assert_eq!(c.mode(Mode::Enforce), Mode::Shadow);
        c.set_mode(None);
        assert_eq!(c.mode(Mode::Shadow), Mode::Shadow);
    }
}
