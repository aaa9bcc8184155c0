//! `Session`: one agent's run in the engine, as a context manager. `decide` turns
//! Python arguments into the engine's `Call` (names as the HTTP service and trace lines
//! use them: `args`, `confidence`, `untrusted`, `read`, `write`, `reasoning`), releases
//! the GIL while the engine decides, and raises for calls that do not fit the policy
//! (unknown tool or parameter, wrong value) after the engine has denied and audited them.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use agentpolicy_runtime::engine::{Call, Labels, Reason, SessionId};
use agentpolicy_runtime::{ArgValue, RequestError};

use crate::convert::{self, OwnedArg};
use crate::engine::PyEngine;
use crate::errors::{invalid, raise, str_obj, unknown_name};
use crate::verdict::PyDecision;

/// A session of one agent. Open it with `Engine.session(...)`; `with` closes it.
#[pyclass(name = "Session", module = "agentpolicy", frozen)]
#[derive(Debug)]
pub struct PySession {
    engine: Py<PyEngine>,
    id: SessionId,
    name: String,
    agent: String,
}

impl PySession {
    pub fn new(engine: Py<PyEngine>, id: SessionId, name: String, agent: String) -> Self {
        PySession {
            engine,
            id,
            name,
            agent,
        }
    }
}

/// The data a call reads or writes, with its isolation-key values.
struct Target {
    name: String,
    keys: Vec<(String, String)>,
}

/// `"document"`, `("document", {"matter": "M-1"})` or `{"resource": "document", "keys":
/// {...}}` (`"sink"` for writes).
fn target(
    py: Python<'_>,
    argument: &str,
    field: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<Target> {
    let bad = || {
        invalid(
            py,
            argument,
            format!(
                "`{argument}`: expected a {field} name, a ({field}, {{key: value}}) tuple, or {{\"{field}\": name, \"keys\": {{key: value}}}}"
            ),
        )
    };
    let keys_of = |keys: Option<Bound<'_, PyAny>>| -> PyResult<Vec<(String, String)>> {
        let Some(keys) = keys else {
            return Ok(Vec::new());
        };
        if keys.is_none() {
            return Ok(Vec::new());
        }
        let dict = keys.cast::<PyDict>().map_err(|_| bad())?;
        dict.iter()
            .map(
                |(k, v)| match (k.extract::<String>(), v.extract::<String>()) {
                    (Ok(k), Ok(v)) => Ok((k, v)),
                    _ => Err(invalid(
                        py,
                        argument,
                        format!("`{argument}`: isolation keys and their values must be str"),
                    )),
                },
            )
            .collect()
    };
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Target {
            name: s.to_cow()?.into_owned(),
            keys: Vec::new(),
        });
    }
    if let Ok(t) = value.cast::<PyTuple>() {
        if t.len() != 2 {
            return Err(bad());
        }
        let name: String = t.get_item(0)?.extract().map_err(|_| bad())?;
        return Ok(Target {
            name,
            keys: keys_of(Some(t.get_item(1)?))?,
        });
    }
    if let Ok(d) = value.cast::<PyDict>() {
        let name = d
            .get_item(field)?
            .or(d.get_item("resource")?)
            .ok_or_else(bad)?
            .extract::<String>()
            .map_err(|_| bad())?;
        for key in d.keys() {
            let key: String = key.extract().map_err(|_| bad())?;
            if key != field && key != "resource" && key != "keys" {
                return Err(invalid(
                    py,
                    argument,
                    format!("`{argument}`: unknown field `{key}` (expected `{field}` and `keys`)"),
                ));
            }
        }
        return Ok(Target {
            name,
            keys: keys_of(d.get_item("keys")?)?,
        });
    }
    Err(bad())
}

fn pairs(keys: &[(String, String)]) -> Vec<(&str, &str)> {
    keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[pymethods]
impl PySession {
    /// Decides a call of `tool` by this session's agent.
    ///
    /// `args` maps parameter names to values (money as `Decimal`, `int` dollars or
    /// `"$25,000"`; numbers as `int`, `Decimal`, `float` or `"85%"`; durations as
    /// `timedelta`, `int` ms or `"15m"`; texts as `str`; lists as lists of `str`).
    /// `confidence` is the agent's confidence (`0.92` or `"92%"`); `untrusted` names
    /// the arguments copied out of untrusted content; `read` / `write` name the
    /// resource / sink and its isolation-key values (`("matter_documents", {"matter":
    /// "M-1"})`); `reasoning` is kept in the audit record only.
    ///
    /// Returns a `Decision`. Raises `InvalidArgument` (a `ValueError`) for a value the
    /// parameter cannot take or a parameter the tool does not have, `UnknownName` for a
    /// tool the policy does not declare, `SessionError` for a closed session; the
    /// engine has denied and audited the call before the last three are raised.
    #[pyo3(signature = (tool, args=None, *, confidence=None, untrusted=None, read=None, write=None, reasoning=None))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn decide(
        &self,
        py: Python<'_>,
        tool: &str,
        args: Option<&Bound<'_, PyDict>>,
        confidence: Option<&Bound<'_, PyAny>>,
        untrusted: Option<&Bound<'_, PyAny>>,
        read: Option<&Bound<'_, PyAny>>,
        write: Option<&Bound<'_, PyAny>>,
        reasoning: Option<String>,
    ) -> PyResult<PyDecision> {
        let engine_py = self.engine.get();
        let engine = engine_py.live(py)?;
        let table = engine.table().map_err(|e| engine_py.error(py, &e))?;
        let tool_spec = table
            .tool_id(tool)
            .and_then(|t| table.data().tools.get(t.index()));

        let mut owned: Vec<(String, OwnedArg)> = Vec::new();
        if let Some(args) = args {
            owned.reserve(args.len());
            for (k, v) in args.iter() {
                let name: String = k.extract().map_err(|_| {
                    invalid(py, "args", "`args`: keys must be parameter names (str)")
                })?;
                let param = tool_spec.and_then(|t| t.params.iter().find(|p| p.name == name));
                let value = match param {
                    None => OwnedArg::Undeclared,
                    Some(p) => convert::arg(&v, p.ty).map_err(|r| {
                        invalid(
                            py,
                            &name,
                            format!(
                                "argument `{name}` of tool `{tool}` is {}: {}",
                                p.ty.keyword(),
                                r.0
                            ),
                        )
                    })?,
                };
                owned.push((name, value));
            }
        }
        let confidence = confidence
            .filter(|c| !c.is_none())
            .map(|c| {
                convert::millionths(c)
                    .map_err(|r| invalid(py, "confidence", format!("`confidence`: {}", r.0)))
            })
            .transpose()?;
        let untrusted: Vec<String> = match untrusted {
            None => Vec::new(),
            Some(u) if u.is_none() => Vec::new(),
            Some(u) if u.is_instance_of::<PyString>() => vec![u.extract()?],
            Some(u) => u.extract().map_err(|_| {
                invalid(
                    py,
                    "untrusted",
                    "`untrusted`: expected a list of argument names (str)",
                )
            })?,
        };
        let read = read
            .filter(|r| !r.is_none())
            .map(|r| target(py, "read", "resource", r))
            .transpose()?;
        let write = write
            .filter(|w| !w.is_none())
            .map(|w| target(py, "write", "sink", w))
            .transpose()?;

        let lists: Vec<Vec<&str>> = owned
            .iter()
            .map(|(_, v)| match v {
                OwnedArg::TextList(items) => items.iter().map(String::as_str).collect(),
                _ => Vec::new(),
            })
            .collect();
        let arg_values: Vec<(&str, ArgValue<'_>)> = owned
            .iter()
            .zip(&lists)
            .map(|((name, v), list)| (name.as_str(), v.as_arg(list)))
            .collect();
        let untrusted_names: Vec<&str> = untrusted.iter().map(String::as_str).collect();
        let read_keys = read.as_ref().map(|r| pairs(&r.keys)).unwrap_or_default();
        let write_keys = write.as_ref().map(|w| pairs(&w.keys)).unwrap_or_default();
        let mut call = Call::new(tool)
            .args(&arg_values)
            .untrusted(&untrusted_names);
        call.confidence = confidence;
        call.read = read.as_ref().map(|r| Labels {
            target: &r.name,
            keys: &read_keys,
        });
        call.write = write.as_ref().map(|w| Labels {
            target: &w.name,
            keys: &write_keys,
        });
        call.reasoning = reasoning.as_deref();

        let id = self.id;
        let engine_ref: &agentpolicy_runtime::Engine = &engine;
        let verdict = py.detach(|| engine_ref.decide(id, &call));
        drop(engine);

        let decision = PyDecision {
            verdict,
            table: std::sync::Arc::clone(&table),
            tool: tool.to_owned(),
            agent: self.agent.clone(),
        };
        match &decision.verdict.reason {
            Reason::Policy if tool_spec.is_none() => {
                let tools: Vec<&str> = table.data().tools.iter().map(|t| t.name.as_str()).collect();
                Err(unknown_name(py, "tool", tool, &tools))
            }
            Reason::Request(e) => {
                let argument = match e {
                    RequestError::UnknownParam { param, .. }
                    | RequestError::WrongType { param, .. }
                    | RequestError::UnboundSet { param, .. }
                    | RequestError::ArgumentTooLarge { param, .. } => param.clone(),
                    RequestError::UnknownResource(_) => "read".to_string(),
                    RequestError::UnknownSink(_) => "write".to_string(),
                    RequestError::UnknownKey(_) => "read".to_string(),
                    _ => "args".to_string(),
                };
                let mut message = format!("the call of `{tool}` was denied: {e}");
                if let RequestError::UnknownParam { .. } = e
                    && let Some(spec) = tool_spec
                {
                    let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
                    message.push_str(&format!(
                        "; its parameters: {}",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            crate::errors::quoted_list(&names)
                        }
                    ));
                }
                let decision_obj = Py::new(py, decision)?.into_any();
                Err(raise(
                    py,
                    "InvalidArgument",
                    message,
                    &[
                        ("argument", str_obj(py, &argument)),
                        ("decision", decision_obj),
                    ],
                ))
            }
            Reason::Session(e) => Err(raise(py, "SessionError", e.clone(), &[])),
            _ => Ok(decision),
        }
    }

    /// Reports the result of a call this session ran (its `Decision`): see
    /// `Engine.report`.
    #[pyo3(signature = (call, *, ok=true, tokens=0, latency_ms=0))]
    fn report(
        &self,
        py: Python<'_>,
        call: &Bound<'_, PyAny>,
        ok: bool,
        tokens: u64,
        latency_ms: u64,
    ) -> PyResult<Option<u64>> {
        let engine = self.engine.bind(py);
        engine
            .call_method(
                "report",
                (call,),
                Some(&{
                    let kw = PyDict::new(py);
                    kw.set_item("ok", ok)?;
                    kw.set_item("tokens", tokens)?;
                    kw.set_item("latency_ms", latency_ms)?;
                    kw
                }),
            )?
            .extract()
    }

    /// Records what a human did for the same task as a decided call; see
    /// `Engine.record_human`.
    #[pyo3(signature = (call, action, *, by))]
    fn record_human(
        &self,
        py: Python<'_>,
        call: &Bound<'_, PyAny>,
        action: &str,
        by: &str,
    ) -> PyResult<Option<u64>> {
        let kw = PyDict::new(py);
        kw.set_item("by", by)?;
        self.engine
            .bind(py)
            .call_method("record_human", (call, action), Some(&kw))?
            .extract()
    }

    /// Starts the session's next task (per-task limits start from zero); returns the
    /// new task number.
    fn new_task(&self, py: Python<'_>) -> PyResult<u64> {
        let engine_py = self.engine.get();
        let engine = engine_py.live(py)?;
        let id = self.id;
        py.detach(|| engine.start_task(id))
            .map_err(|e| engine_py.error(py, &e))
    }

    /// Closes the session; its pending escalations are rejected.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let engine_py = self.engine.get();
        let engine = engine_py.live(py)?;
        let id = self.id;
        py.detach(|| engine.close_session(id))
            .map_err(|e| engine_py.error(py, &e))
    }

    /// The session's state: `{"id", "name", "agent", "task", "calls", "tier",
    /// "tainted", "bound", "limits", "pending", "closed", "broken", "context"}`.
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let engine_py = self.engine.get();
        let engine = engine_py.live(py)?;
        let s = engine
            .session(self.id)
            .map_err(|e| engine_py.error(py, &e))?;
        let d = PyDict::new(py);
        d.set_item("id", s.id.to_string())?;
        d.set_item("name", &s.name)?;
        d.set_item("agent", &s.agent)?;
        d.set_item("task", s.task)?;
        d.set_item("calls", s.calls)?;
        d.set_item("tier", &s.tier)?;
        d.set_item("tainted", s.tainted)?;
        let bound = PyDict::new(py);
        for (k, v) in &s.bound {
            bound.set_item(k, v)?;
        }
        d.set_item("bound", bound)?;
        let limits = PyList::empty(py);
        for l in &s.limits {
            let item = PyDict::new(py);
            item.set_item("limit", l.limit.to_string())?;
            item.set_item("used", l.used)?;
            limits.append(item)?;
        }
        d.set_item("limits", limits)?;
        let pending: Vec<String> = s.pending.iter().map(ToString::to_string).collect();
        d.set_item("pending", pending)?;
        d.set_item("closed", s.closed)?;
        d.set_item("broken", &s.broken)?;
        d.set_item("context", &s.context)?;
        Ok(d)
    }

    /// Whether the session has taken in untrusted content (never cleared).
    #[getter]
    fn tainted(&self, py: Python<'_>) -> PyResult<bool> {
        let engine_py = self.engine.get();
        let engine = engine_py.live(py)?;
        Ok(engine
            .session(self.id)
            .map_err(|e| engine_py.error(py, &e))?
            .tainted)
    }

    /// The session's id (`"s3"`).
    #[getter]
    fn id(&self) -> String {
        self.id.to_string()
    }

    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    #[getter]
    fn agent(&self) -> &str {
        &self.agent
    }

    /// The engine this session belongs to.
    #[getter]
    fn engine(&self, py: Python<'_>) -> Py<PyEngine> {
        self.engine.clone_ref(py)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the session unless it is closed already (or the engine is).
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        let engine_py = self.engine.get();
        if let Ok(engine) = engine_py.live(py) {
            let id = self.id;
            match py.detach(|| engine.close_session(id)) {
                Ok(()) | Err(agentpolicy_runtime::engine::EngineError::SessionClosed(_)) => {}
                Err(e) => return Err(engine_py.error(py, &e)),
            }
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<Session {} ({}) of {}>", self.name, self.id, self.agent)
    }
}
