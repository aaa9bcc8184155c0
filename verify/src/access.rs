//! Finding, for one (agent, tool) cell, a read and write the runtime's flow check lets
//! through in a fresh session: the access a per-cell counterexample is shown with. The
//! runtime itself is asked (its `decide` stops at the flow stage or passes it), so the
//! answer is exact without a formula.

use agentpolicy_runtime::{self as rt, KeyValueInterner, Stage, TableData};

use super::counterexample::{Access, Session};

/// The value a counterexample uses for an isolation key when only one value is needed.
pub fn first_value(key: &str) -> String {
    format!("{key}-1")
}

/// The read and write to show with a call, or `None` when every access is stopped by
/// the flow check (the tool can never be used by this agent).
pub fn passing(
    table: &rt::DecisionTable,
    agent: usize,
    tool: usize,
) -> Option<(Option<Access>, Option<Access>)> {
    let data: &TableData = table.data();
    let t = data.tools.get(tool)?;
    let agent_name = &data.agents.get(agent)?.name;
    let named = |name: &str, keyed: &[rt::KeyId]| Access {
        target: name.to_string(),
        keys: keyed
            .iter()
            .filter_map(|k| data.keys.get(k.index()))
            .map(|k| (k.clone(), first_value(k)))
            .collect(),
    };
    // Keyed data named first: that is what an engine that keeps matters apart sends.
    let mut reads: Vec<Option<Access>> = t
        .reads
        .iter()
        .filter_map(|r| data.resources.get(r.index()))
        .map(|r| Some(named(&r.name, &r.keyed)))
        .collect();
    reads.sort_by_key(|a| a.as_ref().map_or(0, |a| usize::from(a.keys.is_empty())));
    reads.push(None);
    let mut writes: Vec<Option<Access>> = t
        .writes
        .iter()
        .filter_map(|s| data.sinks.get(s.index()))
        .map(|s| Some(named(&s.name, &s.keyed)))
        .collect();
    writes.sort_by_key(|a| a.as_ref().map_or(0, |a| usize::from(a.keys.is_empty())));
    writes.push(None);
    for read in &reads {
        for write in &writes {
            let call = super::Call {
                agent: agent_name.clone(),
                tool: t.name.clone(),
                args: Vec::new(),
                confidence: None,
                read: read.clone(),
                write: write.clone(),
                untrusted: Vec::new(),
                sets: Vec::new(),
                session: Session::default(),
                outcome: rt::Outcome::Deny,
                rule: None,
            };
            let mut keys = KeyValueInterner::default();
            let Ok(request) = call.to_request(table, &mut keys) else {
                continue;
            };
            if rt::decide(table, &request).stage() != Stage::Flow {
                return Some((read.clone(), write.clone()));
            }
        }
    }
    None
}
