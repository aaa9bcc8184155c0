//! The only module that runs Z3: building a solver with the configured budget, and
//! turning its three-valued answer into [`Check`]. Everything else in `verify` builds
//! formulas and reads models; nothing outside `verify` sees a Z3 type.
//!
//! A timeout or resource limit is [`Check::Unknown`] with Z3's reason, never a pass.

use z3::{Params, SatResult, Solver};

/// How much each solver call may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    /// Wall-clock limit per solver call, in milliseconds.
    pub timeout_ms: Option<u32>,
    /// Z3's deterministic resource limit per solver call (`rlimit`); unlike a timeout,
    /// it gives the same answer on every machine, which is what tests want.
    pub rlimit: Option<u32>,
}

/// The answer to one satisfiability question.
#[derive(Debug)]
pub enum Check {
    /// A model: the formula can be satisfied, which for a property is a counterexample.
    Sat(z3::Model),
    /// No model exists: the property holds.
    Unsat,
    /// Z3 could not decide (timeout, resource limit, incompleteness).
    Unknown(String),
}

/// A fresh solver with the budget applied, for quantifier-free linear integer
/// arithmetic.
pub fn solver(budget: Budget) -> Solver {
    solver_for(budget, false)
}

/// A fresh solver with the budget applied; `strings` when formulas test texts with
/// strings and regular expressions (sets, globs, lists).
pub fn solver_for(budget: Budget, strings: bool) -> Solver {
    // Without texts every formula is quantifier-free linear integer arithmetic, and the
    // solver for that logic answers the many small queries several times faster than
    // the default one. With them, the logic must include strings: the QF_LIA solver
    // would treat string atoms as uninterpreted and give strings no concrete values.
    let logic = if strings { "QF_SLIA" } else { "QF_LIA" };
    let solver = Solver::new_for_logic(logic).unwrap_or_default();
    let mut params = Params::new();
    if let Some(ms) = budget.timeout_ms {
        params.set_u32("timeout", ms.max(1));
    }
    if let Some(limit) = budget.rlimit {
        params.set_u32("rlimit", limit.max(1));
    }
    solver.set_params(&params);
    solver
}

/// Checks the solver's assertions together with `assumptions`.
pub fn check(solver: &Solver, assumptions: &[z3::ast::Bool]) -> Check {
    let result = if assumptions.is_empty() {
        solver.check()
    } else {
        solver.check_assumptions(assumptions)
    };
    match result {
        SatResult::Unsat => Check::Unsat,
        SatResult::Sat => match solver.get_model() {
            Some(model) => Check::Sat(model),
            None => Check::Unknown("the solver reported a model but returned none".into()),
        },
        SatResult::Unknown => {
            let reason = solver
                .get_reason_unknown()
                .unwrap_or_else(|| "no reason given".into());
            Check::Unknown(format!(
                "the solver gave up ({reason}): the time or resource limit per query was probably reached"
            ))
        }
    }
}

/// A model of the solver's assertions that keeps as many of `preferences` as it can,
/// or `fallback` (a model found without them) when the solver cannot say.
///
/// Each preference is tied to a fresh selector and the selectors are the assumptions;
/// when they cannot all hold, one preference of the unsatisfiable core is dropped and the
/// rest are asked again, so a counterexample that needs, say, an untrusted argument still
/// has its required arguments present and its other arguments trusted. At most one check
/// per preference. Call inside a `push`/`pop` scope: it asserts one implication per
/// preference.
pub fn model_preferring(
    solver: &Solver,
    preferences: &[z3::ast::Bool],
    fallback: z3::Model,
) -> z3::Model {
    let selectors: Vec<z3::ast::Bool> = preferences
        .iter()
        .enumerate()
        .map(|(i, pref)| {
            let selector = z3::ast::Bool::new_const(format!("prefer!{i}"));
            solver.assert(selector.implies(pref));
            selector
        })
        .collect();
    let mut kept: Vec<usize> = (0..selectors.len()).collect();
    loop {
        let assumptions: Vec<z3::ast::Bool> = kept.iter().map(|&i| selectors[i].clone()).collect();
        match check(solver, &assumptions) {
            Check::Sat(model) => return model,
            Check::Unknown(_) => return fallback,
            Check::Unsat => {
                let core = solver.get_unsat_core();
                let Some(position) = kept
                    .iter()
                    .position(|&i| core.iter().any(|c| *c == selectors[i]))
                else {
                    // An empty core: the assertions alone are unsatisfiable under this
                    // scope, which the caller's first check ruled out; keep its model.
                    return fallback;
                };
                kept.remove(position);
            }
        }
    }
}
