//! [`DecisionTable`]: a [`TableData`] that passed validation, with name lookups for
//! building requests. The only way to get one is [`DecisionTable::new`] or a loader, both
//! of which validate, so `decide` can rely on every id being in range.

use std::collections::HashMap;

use serde::{Serialize, Serializer};

use crate::hash::ContentHash;
use crate::ids::{AgentId, KeyId, ResourceId, RouteId, RuleIndex, SinkId, TextId, ToolId};
use crate::table::{Rule, TableData};
use crate::validate::{InvalidTable, validate};

/// A validated decision table.
///
/// ```
/// use agentpolicy_runtime::{DecisionTable, FORMAT_VERSION, TableData};
/// let data = TableData { format_version: FORMAT_VERSION, ..TableData::default() };
/// let table = DecisionTable::new(data).unwrap();
/// assert_eq!(table.agent_id("nobody"), None);
///
/// let bad = TableData { format_version: 0, ..TableData::default() };
/// assert!(DecisionTable::new(bad).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct DecisionTable {
    data: TableData,
    lookup: Lookup,
}

/// Name to id maps, built once per table; used by request builders, never by `decide`.
#[derive(Debug, Clone, Default)]
struct Lookup {
    agents: HashMap<String, AgentId>,
    tools: HashMap<String, ToolId>,
    keys: HashMap<String, KeyId>,
    resources: HashMap<String, ResourceId>,
    sinks: HashMap<String, SinkId>,
    routes: HashMap<String, RouteId>,
    texts: HashMap<String, TextId>,
}

fn index<'a, I: Copy>(
    names: impl Iterator<Item = &'a String>,
    id: impl Fn(u32) -> I,
) -> HashMap<String, I> {
    names
        .enumerate()
        .map(|(i, n)| (n.clone(), id(i as u32)))
        .collect()
}

impl DecisionTable {
    /// Validates the data and builds the name lookups.
    pub fn new(data: TableData) -> Result<DecisionTable, InvalidTable> {
        validate(&data)?;
        let lookup = Lookup {
            agents: index(data.agents.iter().map(|a| &a.name), AgentId),
            tools: index(data.tools.iter().map(|t| &t.name), ToolId),
            keys: index(data.keys.iter(), KeyId),
            resources: index(data.resources.iter().map(|r| &r.name), ResourceId),
            sinks: index(data.sinks.iter().map(|s| &s.name), SinkId),
            routes: index(data.routes.iter().map(|r| &r.name), RouteId),
            texts: index(data.texts.iter(), TextId),
        };
        Ok(DecisionTable { data, lookup })
    }

    pub fn data(&self) -> &TableData {
        &self.data
    }

    pub fn into_data(self) -> TableData {
        self.data
    }

    /// The content hash of the sources the table was compiled from.
    pub fn source_hash(&self) -> ContentHash {
        self.data.source_hash
    }

    pub fn rule(&self, rule: RuleIndex) -> Option<&Rule> {
        self.data.rules.get(rule.index())
    }

    pub fn agent_id(&self, name: &str) -> Option<AgentId> {
        self.lookup.agents.get(name).copied()
    }

    pub fn tool_id(&self, name: &str) -> Option<ToolId> {
        self.lookup.tools.get(name).copied()
    }

    pub fn key_id(&self, name: &str) -> Option<KeyId> {
        self.lookup.keys.get(name).copied()
    }

    pub fn resource_id(&self, name: &str) -> Option<ResourceId> {
        self.lookup.resources.get(name).copied()
    }

    pub fn sink_id(&self, name: &str) -> Option<SinkId> {
        self.lookup.sinks.get(name).copied()
    }

    pub fn route_id(&self, name: &str) -> Option<RouteId> {
        self.lookup.routes.get(name).copied()
    }

    /// The id of a text constant the policy compares against.
    pub fn text_id(&self, text: &str) -> Option<TextId> {
        self.lookup.texts.get(text).copied()
    }
}

impl PartialEq for DecisionTable {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data
    }
}

impl Eq for DecisionTable {}

impl Serialize for DecisionTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.data.serialize(serializer)
    }
}
