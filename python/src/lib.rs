//! The extension module `agentpolicy._agentpolicy`: the compiler and the runtime engine
//! for Python agent frameworks, in process. It owns the mapping between Python values and
//! the engine's (names, exact values, decisions, escalations) and nothing of the policy
//! semantics: every decision is the runtime's `Engine::decide`, every table the
//! compiler's `agentpolicy::compile`. No solver is linked (proofs stay in the CLI).
//!
//! The Python package `agentpolicy` (`python/agentpolicy/`) re-exports these classes and
//! adds `guard` and the exception classes, which this module raises by name
//! ([`errors`]). The GIL is released while the engine works (`Python::detach`).

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod convert;
mod engine;
mod errors;
mod policy;
mod session;
mod verdict;

use pyo3::prelude::*;

/// The module object: `agentpolicy._agentpolicy`.
#[pymodule]
#[pyo3(name = "_agentpolicy")]
fn agentpolicy_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::PyEngine>()?;
    m.add_class::<engine::PyManualClock>()?;
    m.add_class::<session::PySession>()?;
    m.add_class::<verdict::PyDecision>()?;
    m.add_class::<verdict::PyEscalation>()?;
    m.add_class::<verdict::PyResolution>()?;
    m.add_function(wrap_pyfunction!(policy::compile_policy, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
