//! Stores: a sink and a resource that are one thing (`resource R { from SINK }`), written
//! in one session and read back in another, of any agent. Which stores can carry data of
//! one isolation-key value to sessions of another is a fixed point over every agent's
//! sessions, found with the same induction and complete bounded model checking as the
//! other flow properties (`FlowProp::KeyedInto`). It must not report anything itself:
//! isolation reads the result (reading such a store back brings any value of the key).

use std::rc::Rc;

use super::super::Ctx;
use super::super::cells;
use super::{FlowProp, check_agent_with};
use agentpolicy::model::SinkId;

/// Per store sink and key: `Some(how)` when sessions holding data of a key value can
/// write to it, so a resource that reads it back (`from SINK`) may return data of any
/// value of that key; `how` says which agent and calls.
pub type Mixed = Vec<Vec<Option<String>>>;

/// Which stores may carry data of one key value to sessions of another: a fixed point,
/// since a session may take such data in from one store and write it to the next. For
/// each store sink and key, every agent's sessions are searched (complete BMC) for a
/// call that writes the sink while holding data of the key; an unknown answer counts as
/// such a call. Computed once per verification, over every agent's cells (a store joins
/// the sessions of all agents), on a solver of its own: the shared one answers the
/// other properties exactly as it would without stores, whichever agents are in scope.
pub fn stores(ctx: &Ctx<'_>) -> Rc<Mixed> {
    if let Some(m) = ctx.stores.borrow().as_ref() {
        return m.clone();
    }
    let model = ctx.model;
    let keys = ctx.data.keys.len();
    let mut mixed: Mixed = vec![vec![None; keys]; model.sinks.len()];
    let mut backing: Vec<SinkId> = model.resources.iter().filter_map(|r| r.store).collect();
    backing.sort_by_key(|s| s.index());
    backing.dedup();
    if !backing.is_empty() && keys > 0 {
        let cells = cells::prepare(ctx);
        loop {
            let mut changed = false;
            for agent in 0..model.agents.len() {
                let props: Vec<FlowProp> = backing
                    .iter()
                    .flat_map(|s| (0..keys).map(move |k| FlowProp::KeyedInto(*s, k)))
                    .filter(|p| matches!(p, FlowProp::KeyedInto(s, k) if mixed[s.index()][*k].is_none()))
                    .collect();
                if props.is_empty() {
                    continue;
                }
                let outcomes =
                    check_agent_with(ctx, &cells, agent, &props, &mixed, &ctx.stores_solver);
                for (prop, o) in props.iter().zip(outcomes) {
                    let FlowProp::KeyedInto(s, k) = prop else {
                        continue;
                    };
                    let name = &model.agents[agent].name;
                    let how = match o.verdict {
                        Ok(None) => continue,
                        Ok(Some(cex)) => {
                            let tools: Vec<String> =
                                cex.calls.iter().map(|c| format!("`{}`", c.tool)).collect();
                            format!(
                                "agent `{name}` writes it holding `{}` data (calls {})",
                                ctx.data.keys[*k],
                                tools.join(", then ")
                            )
                        }
                        Err(reason) => format!(
                            "agent `{name}` may write it holding `{}` data (not decided: {reason})",
                            ctx.data.keys[*k]
                        ),
                    };
                    mixed[s.index()][*k] = Some(how);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }
    let mixed = Rc::new(mixed);
    *ctx.stores.borrow_mut() = Some(mixed.clone());
    mixed
}
