//! A session: one agent's run, with its flow label (tier and bound isolation-key values),
//! its usage counters and its task number. The engine owns sessions inside its shards;
//! [`SessionState`] is the inspectable copy it hands out.
//!
//! Key values are kept as text and compared here, outside `decide`: a call's key value
//! becomes `KeyValue(0)` when it equals the session's bound value (or is the first) and
//! `KeyValue(1)` otherwise, which is all `decide` needs to tell "same" from "other".

use crate::builder::RequestError;
use crate::decision_table::DecisionTable;
use crate::ids::{AgentId, KeyId, TierId};
use crate::request::{KeyBindings, KeyValue, MAX_KEYS, Request};
use crate::table::{Limit, TableData};

use super::call::Labels;
use super::usage::Usage;

/// A session as the engine keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub name: String,
    pub agent: AgentId,
    pub agent_name: String,
    pub tier: Option<TierId>,
    /// The session has taken in untrusted content; never cleared.
    pub tainted: bool,
    /// The bound value of each isolation key, by [`KeyId`].
    pub bound: [Option<Box<str>>; MAX_KEYS],
    pub task: u64,
    /// Calls decided so far; the next call is number `calls + 1`.
    pub calls: u64,
    pub usage: Usage,
    pub closed: bool,
    /// Why the session can no longer be used (its state does not fit the table).
    pub broken: Option<String>,
    /// Who or what started the run ([`super::SessionOptions::context`]).
    pub context: Option<String>,
}

/// A session's state, for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    pub id: super::SessionId,
    pub name: String,
    pub agent: String,
    /// The task number, from 1; [`super::Engine::start_task`] moves to the next.
    pub task: u64,
    pub calls: u64,
    /// The session's tier; `None` until it reads something.
    pub tier: Option<String>,
    /// The session has read an `untrusted` resource or called a tool whose output is
    /// `untrusted`.
    pub tainted: bool,
    /// Bound isolation keys and their values (`("matter", "M-1")`).
    pub bound: Vec<(String, String)>,
    pub limits: Vec<LimitUsage>,
    /// Calls of this session waiting for a human.
    pub pending: Vec<super::CallRef>,
    pub closed: bool,
    pub broken: Option<String>,
    /// Who or what started the run, as given when the session was opened.
    pub context: Option<String>,
}

/// One of the agent's limits and how much of it the session has used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitUsage {
    pub limit: Limit,
    pub used: u64,
}

impl Session {
    pub(crate) fn new(name: String, agent: AgentId, data: &TableData) -> Session {
        let spec = data.agents.get(agent.index());
        Session {
            name,
            agent,
            agent_name: spec.map(|a| a.name.clone()).unwrap_or_default(),
            tier: None,
            tainted: false,
            bound: Default::default(),
            task: 1,
            calls: 0,
            usage: Usage::for_limits(spec.map_or(&[][..], |a| &a.limits)),
            closed: false,
            broken: None,
            context: None,
        }
    }

    /// The bound keys as `decide` sees them: every bound key has value 0.
    pub(crate) fn bindings(&self) -> KeyBindings {
        let mut keys = KeyBindings::default();
        for (i, value) in self.bound.iter().enumerate() {
            if value.is_some() {
                keys.set(KeyId(i as u32), KeyValue(0));
            }
        }
        keys
    }

    fn bound_value(&self, key: KeyId) -> Option<&str> {
        self.bound.get(key.index()).and_then(|v| v.as_deref())
    }

    pub(crate) fn state(
        &self,
        id: super::SessionId,
        data: &TableData,
        now: i64,
        pending: Vec<super::CallRef>,
    ) -> SessionState {
        let mut usage = self.usage.clone();
        let limits = data
            .agents
            .get(self.agent.index())
            .map(|a| a.limits.as_slice())
            .unwrap_or_default();
        SessionState {
            id,
            name: self.name.clone(),
            agent: self.agent_name.clone(),
            task: self.task,
            calls: self.calls,
            tier: self.tier.and_then(|t| data.tiers.get(t.index())).cloned(),
            tainted: self.tainted,
            bound: self
                .bound
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let value = v.as_deref()?;
                    Some((data.keys.get(i)?.clone(), value.to_owned()))
                })
                .collect(),
            limits: limits
                .iter()
                .map(|l| LimitUsage {
                    limit: *l,
                    used: usage.used(l, now),
                })
                .collect(),
            pending,
            closed: self.closed,
            broken: self.broken.clone(),
            context: self.context.clone(),
        }
    }

    /// Carries the session over to a new table, by name: agent, tier and keys. Fails
    /// when one of them is gone; the session is then unusable (every call denied).
    pub(crate) fn remap(&mut self, old: &TableData, new: &DecisionTable) -> Result<(), String> {
        let data = new.data();
        self.agent = new
            .agent_id(&self.agent_name)
            .ok_or_else(|| format!("agent `{}` is not in the new table", self.agent_name))?;
        if let Some(tier) = self.tier {
            let name = old
                .tiers
                .get(tier.index())
                .ok_or("the session's tier is unknown")?;
            let rank = data
                .tiers
                .iter()
                .position(|t| t == name)
                .ok_or_else(|| format!("tier `{name}` is not in the new table"))?;
            self.tier = Some(TierId(rank as u32));
        }
        let mut bound: [Option<Box<str>>; MAX_KEYS] = Default::default();
        for (i, value) in self.bound.iter_mut().enumerate() {
            let Some(value) = value.take() else { continue };
            let name = old.keys.get(i).ok_or("the session's key is unknown")?;
            let key = new
                .key_id(name)
                .ok_or_else(|| format!("isolation key `{name}` is not in the new table"))?;
            if let Some(slot) = bound.get_mut(key.index()) {
                *slot = Some(value);
            }
        }
        self.bound = bound;
        let limits = data
            .agents
            .get(self.agent.index())
            .map(|a| a.limits.as_slice())
            .unwrap_or_default();
        self.usage.adapt(limits);
        Ok(())
    }

    /// Raises the label for a call that runs: tier to the max of what it reads, the
    /// resource's keys bound to the call's values where still unbound, and the session
    /// tainted when the tool's output or the data read is untrusted.
    pub(crate) fn absorb_read(
        &mut self,
        table: &DecisionTable,
        request: &Request,
        read: Option<Labels<'_>>,
    ) {
        let data = table.data();
        let untrusted_resource =
            |r: crate::ResourceId| data.untrusted_resources.binary_search(&r).is_ok();
        self.tainted |= data.untrusted_tools.binary_search(&request.tool).is_ok()
            || match &request.read {
                Some(access) => untrusted_resource(access.target),
                None => data
                    .tools
                    .get(request.tool.index())
                    .is_some_and(|t| t.reads.iter().any(|r| untrusted_resource(*r))),
            };
        let raise = |tier: &mut Option<TierId>, to: TierId| {
            *tier = Some(tier.map_or(to, |t| t.max(to)));
        };
        match (&request.read, read) {
            (Some(access), Some(labels)) => {
                let Some(resource) = data.resources.get(access.target.index()) else {
                    return;
                };
                raise(&mut self.tier, resource.tier);
                for &(name, value) in labels.keys {
                    let Some(key) = table.key_id(name).filter(|k| resource.keyed.contains(k))
                    else {
                        continue;
                    };
                    if let Some(slot) = self.bound.get_mut(key.index())
                        && slot.is_none()
                    {
                        *slot = Some(value.into());
                    }
                }
            }
            _ => {
                let reads = data
                    .tools
                    .get(request.tool.index())
                    .map(|t| t.reads.as_slice())
                    .unwrap_or_default();
                for resource in reads {
                    if let Some(r) = data.resources.get(resource.index()) {
                        raise(&mut self.tier, r.tier);
                    }
                }
            }
        }
    }
}

/// Key values of a read or write, as ids relative to the session: see the module docs.
/// `also_bound` is what the same call's read binds, for its write.
pub(crate) fn key_values(
    table: &DecisionTable,
    session: &Session,
    labels: &Labels<'_>,
    also_bound: Option<&Labels<'_>>,
) -> Result<KeyBindings, RequestError> {
    let mut out = KeyBindings::default();
    for &(name, value) in labels.keys {
        let key = table
            .key_id(name)
            .ok_or_else(|| RequestError::UnknownKey(name.to_owned()))?;
        let bound = session.bound_value(key).or_else(|| {
            also_bound.and_then(|read| {
                read.keys
                    .iter()
                    .find(|(k, _)| table.key_id(k) == Some(key))
                    .map(|(_, v)| *v)
            })
        });
        let id = KeyValue(u64::from(bound.is_some_and(|b| b != value)));
        if !out.set(key, id) {
            return Err(RequestError::UnknownKey(name.to_owned()));
        }
    }
    Ok(out)
}
