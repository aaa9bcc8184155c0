//! Raising the package's exceptions from Rust. The classes are defined in Python
//! (`agentpolicy/errors.py`, so they can inherit `ValueError` and carry attributes);
//! this module builds instances of them by name. It decides nothing: callers choose the
//! class and word the message.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use agentpolicy_runtime::engine::EngineError;

/// An exception of class `name` from `agentpolicy.errors`, built with `message` and the
/// keyword attributes `attrs`. If the class cannot be found (a broken install), a
/// `RuntimeError` with the same message, so the caller still learns what went wrong.
pub fn raise(
    py: Python<'_>,
    name: &str,
    message: impl Into<String>,
    attrs: &[(&str, Py<PyAny>)],
) -> PyErr {
    let message = message.into();
    let built = (|| -> PyResult<PyErr> {
        let class = py.import("agentpolicy.errors")?.getattr(name)?;
        let kwargs = PyDict::new(py);
        for (k, v) in attrs {
            kwargs.set_item(k, v)?;
        }
        let args = PyTuple::new(py, [message.as_str()])?;
        let value = class.call(args, Some(&kwargs))?;
        Ok(PyErr::from_value(value))
    })();
    built.unwrap_or_else(|e| {
        PyRuntimeError::new_err(format!("{message} (and agentpolicy.errors failed: {e})"))
    })
}

/// A bad value for a named argument: `InvalidArgument`, a `ValueError`.
pub fn invalid(py: Python<'_>, argument: &str, message: impl Into<String>) -> PyErr {
    raise(
        py,
        "InvalidArgument",
        message,
        &[("argument", str_obj(py, argument))],
    )
}

/// A name the policy does not declare: `UnknownName`, a `ValueError`.
pub fn unknown_name(py: Python<'_>, kind: &str, name: &str, known: &[&str]) -> PyErr {
    let list = if known.is_empty() {
        "it declares none".to_string()
    } else {
        format!("it declares {}", quoted_list(known))
    };
    let message = format!("unknown {kind} `{name}`: the policy has no such {kind}; {list}");
    let attrs = [("kind", str_obj(py, kind)), ("name", str_obj(py, name))];
    raise(py, "UnknownName", message, &attrs)
}

/// An engine operation that failed, as the matching exception class.
pub fn engine_error(py: Python<'_>, e: &EngineError, agents: &[&str]) -> PyErr {
    match e {
        EngineError::UnknownAgent(a) => unknown_name(py, "agent", a, agents),
        EngineError::UnknownKey(k) => raise(
            py,
            "InvalidArgument",
            format!("unknown isolation key `{k}`: the policy declares no such key"),
            &[("argument", str_obj(py, "bind"))],
        ),
        EngineError::UnknownSession(_) | EngineError::SessionClosed(_) => {
            raise(py, "SessionError", e.to_string(), &[])
        }
        EngineError::UnknownCall(_) | EngineError::NoSuchEscalation(_) => {
            raise(py, "EscalationError", e.to_string(), &[])
        }
        EngineError::Internal(_) => raise(py, "EngineFault", e.to_string(), &[]),
    }
}

pub fn str_obj(py: Python<'_>, s: &str) -> Py<PyAny> {
    pyo3::types::PyString::new(py, s).into_any().unbind()
}

/// `` `a`, `b` and `c` `` (at most 12 names, then "and N more").
pub fn quoted_list(names: &[&str]) -> String {
    const SHOWN: usize = 12;
    let mut parts: Vec<String> = names.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
    if names.len() > SHOWN {
        parts.push(format!("{} more", names.len() - SHOWN));
    }
    match parts.len() {
        0 => String::new(),
        1 => parts.remove(0),
        n => {
            let last = parts.remove(n - 1);
            format!("{} and {last}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quoted_list;

    #[test]
    fn names_are_listed_in_prose() {
        assert_eq!(quoted_list(&[]), "");
        assert_eq!(quoted_list(&["a"]), "`a`");
        assert_eq!(quoted_list(&["a", "b", "c"]), "`a`, `b` and `c`");
        let many: Vec<String> = (0..14).map(|i| format!("t{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(quoted_list(&many).ends_with("`t11` and 2 more"));
    }
}
