//! What `decide` is asked: a request in interned ids, with the session view the engine
//! supplies. Plain `Copy` data of fixed size, so building and passing one allocates
//! nothing.

use crate::condition::{SLOTS, Slot};
use crate::ids::{AgentId, KeyId, ResourceId, SinkId, TierId, ToolId};

/// Isolation keys a table can declare.
pub const MAX_KEYS: usize = 8;
/// Limits an agent can declare; each has a usage counter in [`SessionView::usage`].
pub const MAX_LIMITS: usize = 8;
/// Text values not in the table's dictionary get ids from here up, so they equal no
/// constant (dictionary ids are below `2^32`).
pub const UNKNOWN_TEXT_BASE: i64 = 1 << 32;

/// An interned isolation-key value (a matter or patient id). The engine interns these
/// for the life of its sessions (see [`crate::KeyValueInterner`]); equal values must get
/// equal ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct KeyValue(pub u64);

/// A value for some of the table's isolation keys, by [`KeyId`].
///
/// ```
/// use agentpolicy_runtime::{KeyBindings, KeyId, KeyValue};
/// let mut keys = KeyBindings::default();
/// assert_eq!(keys.get(KeyId(1)), None);
/// keys.set(KeyId(1), KeyValue(7));
/// assert_eq!(keys.get(KeyId(1)), Some(KeyValue(7)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyBindings {
    values: [KeyValue; MAX_KEYS],
    present: u8,
}

impl KeyBindings {
    #[inline]
    pub fn get(&self, key: KeyId) -> Option<KeyValue> {
        let i = key.index();
        if i < MAX_KEYS && self.present & (1 << i) != 0 {
            self.values.get(i).copied()
        } else {
            None
        }
    }

    /// Sets a key's value; returns `false` (and changes nothing) for a key id at or past
    /// [`MAX_KEYS`].
    pub fn set(&mut self, key: KeyId, value: KeyValue) -> bool {
        let i = key.index();
        match self.values.get_mut(i) {
            Some(slot) => {
                *slot = value;
                self.present |= 1 << i;
                true
            }
            None => false,
        }
    }

    pub fn clear(&mut self, key: KeyId) {
        if key.index() < MAX_KEYS {
            self.present &= !(1 << key.index());
        }
    }

    /// The bound keys and their values, lowest key id first.
    pub fn iter(&self) -> impl Iterator<Item = (KeyId, KeyValue)> + '_ {
        (0..MAX_KEYS as u32).filter_map(|k| self.get(KeyId(k)).map(|v| (KeyId(k), v)))
    }
}

/// A read of one resource or a write to one sink, with the isolation-key values of the
/// data involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access<T> {
    pub target: T,
    pub keys: KeyBindings,
}

/// What the engine knows about the session the call runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionView {
    /// The global kill switch or an engine-wide breaker is on.
    pub engine_suspended: bool,
    /// This agent is suspended (kill switch or a tripped breaker).
    pub agent_suspended: bool,
    /// The session's tier; `None` while it is unlabelled (nothing read yet).
    pub tier: Option<TierId>,
    /// The isolation-key values the session is bound to.
    pub bound: KeyBindings,
    /// Usage counters of the agent's limits, by limit index: the call is denied when a
    /// counter has reached its limit.
    pub usage: [u64; MAX_LIMITS],
    /// The session has taken in untrusted content (read an `untrusted` resource or
    /// called a tool whose output is `untrusted`).
    pub tainted: bool,
}

/// One tool call to decide, in the ids of one table.
///
/// Usually built by name with [`crate::DecisionTable::request`]; an embedder that
/// interned names once can fill it in directly.
///
/// ```
/// use agentpolicy_runtime::{AgentId, Request, Slot, ToolId};
/// let mut request = Request::new(AgentId(0), ToolId(3));
/// request.set(Slot(0), 25_000_00);
/// request.set(Slot::CONFIDENCE, 600_000);
/// assert_eq!(request.value(Slot(0)), Some(25_000_00));
/// assert_eq!(request.value(Slot(1)), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub agent: AgentId,
    pub tool: ToolId,
    /// Argument values by parameter index, then the confidence (see [`Slot`]).
    pub values: [i64; SLOTS],
    /// Bit `i` is set when slot `i` carries a value.
    pub present: u32,
    /// The results of the table's text tests for each argument slot: bit `b` is set when
    /// some element passes the slot's `b`-th test, bit `32 + b` when every element does
    /// (a plain text is a list of one). Filled in by the request builder.
    pub text_bits: [u64; crate::MAX_PARAMS],
    /// Bit `i` is set when the caller says argument slot `i` came from untrusted content.
    pub untrusted: u32,
    /// The resource this call reads, if the caller says; otherwise every resource the
    /// tool declares counts as read, for the tier check.
    pub read: Option<Access<ResourceId>>,
    /// The sink this call writes, if the caller says; otherwise every sink the tool
    /// declares counts as written, for the tier check.
    pub write: Option<Access<SinkId>>,
    pub session: SessionView,
}

impl Request {
    /// A request with no arguments, no confidence, no resource and a fresh session.
    pub fn new(agent: AgentId, tool: ToolId) -> Request {
        Request {
            agent,
            tool,
            values: [0; SLOTS],
            present: 0,
            text_bits: [0; crate::MAX_PARAMS],
            untrusted: 0,
            read: None,
            write: None,
            session: SessionView::default(),
        }
    }

    /// Sets a slot's value and marks it present; ignores slots out of range.
    pub fn set(&mut self, slot: Slot, value: i64) {
        if let Some(v) = self.values.get_mut(usize::from(slot.0)) {
            *v = value;
            self.present |= slot.bit();
        }
    }

    /// Marks a slot as not carried.
    pub fn unset(&mut self, slot: Slot) {
        self.present &= !slot.bit();
    }

    /// A slot's value, if the request carries it.
    pub fn value(&self, slot: Slot) -> Option<i64> {
        if self.present & slot.bit() != 0 {
            self.values.get(usize::from(slot.0)).copied()
        } else {
            None
        }
    }
}
