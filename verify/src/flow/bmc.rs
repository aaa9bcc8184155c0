//! Bounded model checking of an agent's sessions from a fresh session: the unrolling to
//! the highest completeness threshold of the properties induction left open, one query
//! per property for a bad call within its bound, then the shortest trace depth by depth,
//! made canonical so that it does not depend on the solver's history.
//!
//! It must not try invariants (`induction.rs` does).

use std::rc::Rc;

use z3::ast::{Bool, Int};

use super::{AgentFlows, Cv, FlowOutcome, FlowProp, ToolStep, trace};
use crate::Method;
use crate::solver::{self, Check};

/// Decides each of `props` whose outcome is still `None`, each up to its own threshold.
pub(super) fn check(
    flows: &AgentFlows<'_, '_>,
    props: &[FlowProp],
    outcomes: &mut [Option<FlowOutcome>],
    solver: &Rc<z3::Solver>,
) {
    let ctx = flows.ctx;
    // Bounded model checking from a fresh session, shortest trace first, each property
    // up to its own completeness threshold.
    let depth = props
        .iter()
        .zip(outcomes.iter())
        .filter(|(_, o)| o.is_none())
        .map(|(p, _)| p.threshold(ctx))
        .max()
        .unwrap_or(0);
    let bmc = solver.clone();
    bmc.push();
    // The unrolling: `alive[d]` says the first `d` calls all went through, so "a bad call
    // after d calls" is `alive[d] and bad(s_d, c_d)`, whatever comes after.
    let mut states = vec![flows.state("s0")];
    let mut calls: Vec<Cv> = Vec::new();
    let mut steps_at: Vec<Vec<ToolStep>> = Vec::new();
    let mut alive = vec![Bool::from_bool(true)];
    bmc.assert(flows.init(&states[0]));
    bmc.assert(flows.state_domain(&states[0]));
    for d in 0..=depth {
        let c = flows.call(&format!("c{d}"));
        bmc.assert(flows.call_domain(&c));
        steps_at.push(flows.steps(&states[d], &c));
        calls.push(c);
        if d < depth {
            let next = flows.state(&format!("s{}", d + 1));
            let live = Bool::new_const(format!("alive{}", d + 1));
            bmc.assert(flows.state_domain(&next));
            bmc.assert(live.implies(&alive[d]));
            bmc.assert(live.implies(flows.transition(&steps_at[d], &calls[d], &next)));
            states.push(next);
            alive.push(live);
        }
    }
    let bad_at = |prop: FlowProp, d: usize| {
        Bool::and(&[
            alive[d].clone(),
            flows.bad(prop, &steps_at[d], &states[d], &calls[d]),
        ])
    };
    for (i, prop) in props.iter().enumerate() {
        if outcomes[i].is_some() {
            continue;
        }
        let limit = prop.threshold(ctx);
        // One query for "a bad call within the bound"; only when there is one, the
        // shortest is searched for depth by depth.
        bmc.push();
        bmc.assert(Bool::or(
            &(0..=limit).map(|d| bad_at(*prop, d)).collect::<Vec<_>>(),
        ));
        let any = solver::check(&bmc, &[]);
        bmc.pop(1);
        outcomes[i] = Some(match any {
            Check::Unsat => FlowOutcome {
                verdict: Ok(None),
                method: Method::Bmc {
                    depth: limit,
                    complete: true,
                },
            },
            Check::Unknown(reason) => FlowOutcome {
                verdict: Err(reason),
                method: Method::Bmc {
                    depth: limit,
                    complete: false,
                },
            },
            Check::Sat(_) => {
                let mut found = FlowOutcome {
                    verdict: Err("no shortest trace found within the bound".into()),
                    method: Method::Bmc {
                        depth: limit,
                        complete: false,
                    },
                };
                for d in 0..=limit {
                    bmc.push();
                    bmc.assert(bad_at(*prop, d));
                    let check = solver::check(&bmc, &[]);
                    bmc.pop(1);
                    let method = Method::Bmc {
                        depth: d,
                        complete: false,
                    };
                    match check {
                        Check::Unsat => continue,
                        Check::Unknown(reason) => {
                            found = FlowOutcome {
                                verdict: Err(reason),
                                method,
                            };
                        }
                        Check::Sat(model) => {
                            let model = canonical(flows, &bmc, &bad_at(*prop, d), &calls[..=d])
                                .unwrap_or(model);
                            found = FlowOutcome {
                                verdict: trace::trace(
                                    flows,
                                    &model,
                                    &states[..=d],
                                    &calls[..=d],
                                    *prop,
                                )
                                .map(Some),
                                method,
                            };
                        }
                    }
                    break;
                }
                found
            }
        });
    }
    bmc.pop(1);
}

/// The same shortest trace whatever the solver's history: each call in turn takes the
/// lowest tool, then the lowest read and write choice, that still breaks the property.
/// The solver may answer a satisfiable query with any model, and which one depends on
/// what it was asked before; a run over one agent and a run over all must agree.
fn canonical(
    flows: &AgentFlows<'_, '_>,
    bmc: &z3::Solver,
    bad: &Bool,
    calls: &[Cv],
) -> Option<z3::Model> {
    let mut tools: Vec<i64> = flows.usable.iter().map(|(t, _)| *t as i64).collect();
    tools.sort_unstable();
    let resources = flows.ctx.data.resources.len() as i64;
    let sinks = flows.ctx.data.sinks.len() as i64;
    bmc.push();
    bmc.assert(bad);
    let mut last = None;
    for c in calls {
        let choices: [(&Int, Vec<i64>); 3] = [
            (&c.tool, tools.clone()),
            (&c.rsel, (-1..resources).collect()),
            (&c.wsel, (-1..sinks).collect()),
        ];
        for (var, values) in choices {
            for v in values {
                let fixed = var.eq(Int::from_i64(v));
                if let Check::Sat(m) = solver::check(bmc, std::slice::from_ref(&fixed)) {
                    bmc.assert(&fixed);
                    last = Some(m);
                    break;
                }
            }
        }
    }
    bmc.pop(1);
    last
}
