//! Step 3 of `decide`: the flow check. A call's reads raise the session's label (tier to
//! the max, isolation keys bound); its writes must not go below that label or across
//! keys, and a call of a tool that writes keyed data must name the write and its key
//! values. No allocation: labels are small `Copy` values.

use crate::decision::Why;
use crate::ids::{ResourceId, SinkId, TierId};
use crate::request::{Access, KeyBindings, Request};
use crate::table::{Agent, TableData, Tool};

/// The session's label as this call sees it: tier and bound key values.
#[derive(Clone, Copy)]
struct Label {
    tier: Option<TierId>,
    bound: KeyBindings,
}

/// `Err(why)` when the call's reads or writes break the flow rules.
#[inline]
pub(crate) fn check(
    t: &TableData,
    agent: &Agent,
    tool: &Tool,
    request: &Request,
) -> Result<(), Why> {
    let mut label = Label {
        tier: request.session.tier,
        bound: request.session.bound,
    };
    match &request.read {
        Some(access) => {
            if !tool.reads.contains(&access.target) {
                return Err(Why::ReadUndeclared {
                    resource: access.target,
                });
            }
            read(t, agent, access.target, Some(access), &mut label)?;
        }
        None => {
            for &resource in &tool.reads {
                read(t, agent, resource, None, &mut label)?;
            }
        }
    }
    match &request.write {
        Some(access) => {
            if !tool.writes.contains(&access.target) {
                return Err(Why::WriteUndeclared {
                    sink: access.target,
                });
            }
            write(t, access.target, Some(access), &label)?;
        }
        None => {
            for &sink in &tool.writes {
                write(t, sink, None, &label)?;
            }
        }
    }
    named_keyed_write(t, tool, request.write.as_ref().map(|a| a.target))
}

fn read(
    t: &TableData,
    agent: &Agent,
    id: ResourceId,
    access: Option<&Access<ResourceId>>,
    label: &mut Label,
) -> Result<(), Why> {
    let resource = t.resources.get(id.index()).ok_or(Why::Fault)?;
    if agent.max_tier.is_some_and(|max| resource.tier > max) {
        return Err(Why::ReadAboveMaxTier { resource: id });
    }
    if let Some(access) = access {
        for &key in &resource.keyed {
            let value = access
                .keys
                .get(key)
                .ok_or(Why::ReadKeyMissing { resource: id, key })?;
            match label.bound.get(key) {
                Some(bound) if bound != value => {
                    return Err(Why::ReadCrossesKey { resource: id, key });
                }
                Some(_) => {}
                None => {
                    if !label.bound.set(key, value) {
                        return Err(Why::Fault);
                    }
                }
            }
        }
    }
    label.tier = Some(label.tier.map_or(resource.tier, |t| t.max(resource.tier)));
    Ok(())
}

/// Fail closed: a call of a tool that writes keyed data must name one of its keyed sinks
/// (with its key values, checked in [`write`]); otherwise the write's key would be checked
/// by nobody (a request may name its read, or an unkeyed sink, and not the keyed write).
fn named_keyed_write(t: &TableData, tool: &Tool, named: Option<SinkId>) -> Result<(), Why> {
    let keyed = |id: SinkId| t.sinks.get(id.index()).map(|s| s.keyed.first().copied());
    if named.is_some_and(|id| keyed(id).flatten().is_some()) {
        return Ok(());
    }
    for &sink in &tool.writes {
        if let Some(key) = keyed(sink).ok_or(Why::Fault)? {
            return Err(Why::WriteKeyMissing { sink, key });
        }
    }
    Ok(())
}

fn write(
    t: &TableData,
    id: SinkId,
    access: Option<&Access<SinkId>>,
    label: &Label,
) -> Result<(), Why> {
    let sink = t.sinks.get(id.index()).ok_or(Why::Fault)?;
    if label.tier.is_some_and(|tier| tier > sink.clearance) {
        return Err(Why::WriteDown { sink: id });
    }
    if let Some(access) = access {
        for &key in &sink.keyed {
            let value = access
                .keys
                .get(key)
                .ok_or(Why::WriteKeyMissing { sink: id, key })?;
            if label.bound.get(key).is_some_and(|bound| bound != value) {
                return Err(Why::WriteCrossesKey { sink: id, key });
            }
        }
    }
    Ok(())
}
