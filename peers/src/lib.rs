//! agentpolicy's `decide` side by side with its peers, cedar-policy and regorus.
//!
//! This crate exists so that the peer engines stay out of the runtime's and the
//! compiler's builds: nothing else in the workspace depends on it. It owns the generated
//! benchmark policies ([`spec`]), their translation into each engine's language
//! ([`ours`], [`cedar`], [`rego`]) and one prepared [`Peers`] per policy that the
//! agreement test and the benchmark share. It is test and benchmark support, not a
//! library anyone embeds.

pub mod cedar;
pub mod ours;
pub mod rego;
pub mod spec;

use agentpolicy_runtime::{DecisionTable, Outcome, Request};

use crate::spec::{BenchRequest, PolicySpec, Shape};

/// One generated policy, loaded into all three engines.
#[derive(Debug)]
pub struct Peers {
    pub spec: PolicySpec,
    pub table: DecisionTable,
    pub cedar: cedar::CedarPolicy,
    pub rego: rego::RegoPolicy,
}

/// One call, prepared for each engine the way it would be handed to it.
#[derive(Debug, Clone)]
pub struct PreparedCall {
    /// The spec's agent index, for Cedar's per-agent slice.
    pub agent: usize,
    pub ours: Request,
    pub cedar: cedar_policy::Request,
    pub rego: regorus::Value,
}

/// The outcome each engine gives one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcomes {
    pub ours: Outcome,
    pub cedar: Outcome,
    pub cedar_sliced: Outcome,
    pub rego: Outcome,
}

impl Peers {
    /// Generates the policy of a shape and loads it into the three engines.
    pub fn new(shape: Shape) -> Result<Peers, String> {
        let spec = spec::generate(shape);
        let table = ours::compile(&spec).map_err(|e| format!("agentpolicy: {e}"))?;
        let cedar = cedar::translate(&spec).map_err(|e| format!("cedar: {e}"))?;
        let rego = rego::translate(&spec).map_err(|e| format!("rego: {e}"))?;
        Ok(Peers {
            spec,
            table,
            cedar,
            rego,
        })
    }

    pub fn prepare(&self, call: &spec::Call) -> Result<PreparedCall, String> {
        Ok(PreparedCall {
            agent: call.agent,
            ours: ours::request(&self.table, &self.spec, call)?,
            cedar: cedar::request(&self.spec, call)?,
            rego: rego::input(&self.spec, call)?,
        })
    }

    /// Decides a prepared call with every engine; a Rego evaluation error is an error
    /// here, not a Deny.
    pub fn outcomes(&mut self, call: &PreparedCall) -> Result<Outcomes, String> {
        Ok(Outcomes {
            ours: ours::outcome(&self.table, &call.ours),
            cedar: cedar::outcome(&self.cedar, &call.cedar),
            cedar_sliced: cedar::sliced_outcome(&self.cedar, call.agent, &call.cedar),
            rego: rego::checked_outcome(&mut self.rego, &call.rego)?,
        })
    }

    /// The fixed benchmark requests of this policy.
    pub fn requests(&self) -> Vec<BenchRequest> {
        self.spec.requests()
    }
}
