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
    /// For `tool * MAX_PARAMS + param`: the indices of that parameter's text tests in
    /// `TableData::text_tests`, in bit order.
    text_tests: Vec<Vec<u32>>,
    /// For each of `TableData::text_tests`: its glob compiled (linear-time matching),
    /// when it is a `matches` test.
    globs: Vec<Option<crate::Glob>>,
    /// Per cell (in `TableData::cells` order): interval tables of its threshold rules.
    cells: Vec<crate::cell_index::CellIndex>,
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
            text_tests: text_test_index(&data),
            globs: compile_globs(&data)?,
            cells: crate::cell_index::build(&data),
        };
        Ok(DecisionTable { data, lookup })
    }

    pub fn data(&self) -> &TableData {
        &self.data
    }

    /// The interval tables of cell `i` (as [`TableData::cells`] orders them).
    #[inline]
    pub(crate) fn cell_index(&self, i: usize) -> Option<&crate::cell_index::CellIndex> {
        self.lookup.cells.get(i)
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

/// Every `matches` test's glob, compiled once here so no request pays for it.
fn compile_globs(data: &TableData) -> Result<Vec<Option<crate::Glob>>, InvalidTable> {
    data.text_tests
        .iter()
        .enumerate()
        .map(|(i, test)| match &test.kind {
            crate::TextTestKind::Matches(p) => {
                crate::Glob::new(p).map(Some).map_err(|e| InvalidTable {
                    reason: format!("text test #{i} has a malformed pattern: {e}"),
                })
            }
            _ => Ok(None),
        })
        .collect()
}

fn text_test_index(data: &TableData) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); data.tools.len() * crate::MAX_PARAMS];
    for (i, test) in data.text_tests.iter().enumerate() {
        if let Some(list) =
            out.get_mut(test.tool.index() * crate::MAX_PARAMS + usize::from(test.param))
        {
            list.push(i as u32);
        }
    }
    out
}

impl DecisionTable {
    /// The text tests of a tool parameter, in bit order.
    pub fn text_tests(&self, tool: ToolId, param: usize) -> impl Iterator<Item = &crate::TextTest> {
        let ids: &[u32] = if param < crate::MAX_PARAMS {
            self.lookup
                .text_tests
                .get(tool.index() * crate::MAX_PARAMS + param)
                .map_or(&[], Vec::as_slice)
        } else {
            &[]
        };
        ids.iter()
            .filter_map(|i| self.data.text_tests.get(*i as usize))
    }

    /// Whether `text` passes text test `test` of a tool parameter (as
    /// [`crate::TextTestKind::holds`], with globs matched by their compiled automaton);
    /// `None` when it reads a set that is not bound.
    pub(crate) fn text_test_holds(
        &self,
        tool: ToolId,
        param: usize,
        bit: usize,
        text: &str,
    ) -> Option<bool> {
        let index = *self
            .lookup
            .text_tests
            .get(tool.index() * crate::MAX_PARAMS + param)?
            .get(bit)? as usize;
        let test = self.data.text_tests.get(index)?;
        match (&test.kind, self.lookup.globs.get(index)) {
            (crate::TextTestKind::Matches(_), Some(Some(glob))) => Some(glob.matches(text)),
            (kind, _) => kind.holds(&self.data.sets, text),
        }
    }

    /// The deploy-time sets that are not bound yet.
    pub fn unbound_sets(&self) -> impl Iterator<Item = &str> {
        self.data
            .sets
            .iter()
            .filter(|s| !s.bound)
            .map(|s| s.name.as_str())
    }

    /// Binds deploy-time sets from a JSON object `{"SET": ["member", ...], ...}`,
    /// returning the table with their members and, for each set bound, its name and the
    /// SHA-256 of its sorted members (what the audit log records). Every key must name a
    /// `from deploy` set of the policy, and every member must be a string.
    pub fn bind_sets(
        &self,
        json: &str,
    ) -> Result<(DecisionTable, Vec<(String, ContentHash)>), String> {
        let parsed: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("the sets file is not JSON: {e}"))?;
        let object = parsed
            .as_object()
            .ok_or("the sets file must be a JSON object: {\"SET\": [\"member\", ...]}")?;
        let mut data = self.data.clone();
        let mut hashes = Vec::new();
        for (name, members) in object {
            let set = data
                .sets
                .iter_mut()
                .find(|s| &s.name == name)
                .ok_or_else(|| format!("the policy has no set `{name}`"))?;
            if !set.deploy {
                return Err(format!(
                    "set `{name}` is written in the policy, not `from deploy`; change it there"
                ));
            }
            let list = members
                .as_array()
                .ok_or_else(|| format!("set `{name}` must be a list of strings"))?;
            let mut texts: Vec<String> = list
                .iter()
                .map(|m| m.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("set `{name}` must hold strings only"))?;
            texts.sort();
            texts.dedup();
            hashes.push((name.clone(), set_hash(&texts)));
            set.members = texts;
            set.bound = true;
        }
        let table = DecisionTable::new(data).map_err(|e| e.to_string())?;
        Ok((table, hashes))
    }
}

impl DecisionTable {
    /// For audit records: each deploy-time set with its member count and hash, or that
    /// it is unbound; empty when the policy has none.
    pub fn deploy_sets_summary(&self) -> String {
        let parts: Vec<String> = self
            .data
            .sets
            .iter()
            .filter(|s| s.deploy)
            .map(|s| {
                if s.bound {
                    format!(
                        "`{}` ({} members, {})",
                        s.name,
                        s.members.len(),
                        set_hash(&s.members)
                    )
                } else {
                    format!("`{}` (unbound: calls that test it are denied)", s.name)
                }
            })
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("; deploy-time sets: {}", parts.join(", "))
        }
    }
}

/// The SHA-256 of a set's sorted members, each followed by a NUL byte.
pub fn set_hash(members: &[String]) -> ContentHash {
    let mut bytes = Vec::new();
    for m in members {
        bytes.extend_from_slice(m.as_bytes());
        bytes.push(0);
    }
    ContentHash::of(&bytes)
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
