//! Induction over one step of an agent's session: is a property's invariant (the label
//! dominates the ghost, in tiers or in key values) inductive, and does it exclude every
//! bad call? A property proved here needs no bounded model checking.
//!
//! It must not search for traces (`bmc.rs` does).

use std::rc::Rc;

use z3::ast::Bool;

use super::{AgentFlows, Cv, FlowOutcome, FlowProp, Invariant, SessionState, ToolStep};
use crate::Method;
use crate::solver::{self, Check};

/// The terms of the one-step query, which the caller holds until bounded model checking
/// is done, as it did before induction had a function of its own. Z3 recycles the ids of
/// freed terms and the models it answers with depend on them: freeing these earlier
/// changes which (equally short) trace is found. Fields are dropped in this order, the
/// reverse of how they were made, as locals would be.
pub(super) struct Step {
    _transition: Bool,
    _steps: Vec<ToolStep>,
    _s2: SessionState,
    _c: Cv,
    _s: SessionState,
}

/// Tries each of `props` by induction: `Some` for those proved, `None` for the rest.
pub(super) fn prove(
    flows: &AgentFlows<'_, '_>,
    props: &[FlowProp],
    solver: &Rc<z3::Solver>,
) -> (Vec<Option<FlowOutcome>>, Step) {
    let mut outcomes: Vec<Option<FlowOutcome>> = props.iter().map(|_| None).collect();

    // Induction: is the property's invariant inductive, and does it exclude every bad
    // call?
    let s = flows.state("s");
    let c = flows.call("c");
    let s2 = flows.state("s'");
    let steps = flows.steps(&s, &c);
    let sv = solver.clone();
    sv.push();
    sv.assert(flows.state_domain(&s));
    sv.assert(flows.call_domain(&c));
    let transition = flows.transition(&steps, &c, &s2);
    let inductive = |inv: Invariant| -> bool {
        let (now, next) = match inv {
            Invariant::Tier => (flows.tier_invariant(&s), flows.tier_invariant(&s2)),
            Invariant::Keys => (flows.key_invariant(&s), flows.key_invariant(&s2)),
            Invariant::None => return false,
        };
        sv.push();
        sv.assert(&now);
        sv.assert(&transition);
        sv.assert(next.not());
        let holds = matches!(solver::check(&sv, &[]), Check::Unsat);
        sv.pop(1);
        holds
    };
    let wanted = |inv: Invariant| props.iter().any(|p| p.invariant() == inv);
    let tier_ok = wanted(Invariant::Tier) && inductive(Invariant::Tier);
    let keys_ok = wanted(Invariant::Keys) && inductive(Invariant::Keys);
    for (i, prop) in props.iter().enumerate() {
        let inv = match prop.invariant() {
            Invariant::Tier if tier_ok => flows.tier_invariant(&s),
            Invariant::Keys if keys_ok => flows.key_invariant(&s),
            _ => continue,
        };
        sv.push();
        sv.assert(&inv);
        sv.assert(flows.bad(*prop, &steps, &s, &c));
        if let Check::Unsat = solver::check(&sv, &[]) {
            outcomes[i] = Some(FlowOutcome {
                verdict: Ok(None),
                method: Method::Induction,
            });
        }
        sv.pop(1);
    }
    sv.pop(1);
    let step = Step {
        _transition: transition,
        _steps: steps,
        _s2: s2,
        _c: c,
        _s: s,
    };
    (outcomes, step)
}
