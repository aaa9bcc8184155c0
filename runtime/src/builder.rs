//! Building a [`Request`] by name: names are looked up once here, so `decide` sees only
//! ids. This is the edge where callers' strings meet the table, and every mistake is a
//! [`RequestError`] naming what was wrong; nothing here can produce an Allow by itself.

use std::fmt;

use crate::condition::{MAX_PARAMS, Slot};
use crate::decision_table::DecisionTable;
use crate::ids::{KeyId, ResourceId, SinkId};
use crate::limits::{RequestLimits, SizeUnit};
use crate::request::{Access, KeyBindings, KeyValue, Request, SessionView, UNKNOWN_TEXT_BASE};
use crate::table::ValueType;

/// An argument value as the caller has it; texts are interned by the builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgValue<'a> {
    /// Cents.
    Money(i64),
    /// Millionths.
    Number(i64),
    /// Millionths (`85%` is 850_000).
    Percent(i64),
    /// Milliseconds.
    Duration(i64),
    Bool(bool),
    Text(&'a str),
    /// A `list<text>` argument.
    TextList(&'a [&'a str]),
}

impl ArgValue<'_> {
    pub fn type_name(&self) -> &'static str {
        match self {
            ArgValue::Money(_) => "money",
            ArgValue::Number(_) => "number",
            ArgValue::Percent(_) => "percent",
            ArgValue::Duration(_) => "duration",
            ArgValue::Bool(_) => "bool",
            ArgValue::Text(_) => "text",
            ArgValue::TextList(_) => "list of texts",
        }
    }
}

/// What was wrong with a request built by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    UnknownAgent(String),
    UnknownTool(String),
    UnknownParam {
        tool: String,
        param: String,
    },
    WrongType {
        tool: String,
        param: String,
        expected: ValueType,
        given: &'static str,
    },
    UnknownResource(String),
    UnknownSink(String),
    UnknownKey(String),
    /// More distinct texts outside the table's dictionary than a request has slots.
    TooManyTexts,
    /// A condition on the argument reads a `from deploy` set that was never bound: the
    /// call cannot be decided (fail closed).
    UnboundSet {
        param: String,
        set: String,
    },
    /// The argument is larger than the [`RequestLimits`] allow: refused before any test
    /// reads it.
    ArgumentTooLarge {
        param: String,
        size: usize,
        limit: usize,
        unit: SizeUnit,
    },
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::UnknownAgent(a) => {
                write!(f, "unknown agent `{a}`: the policy declares no such agent")
            }
            RequestError::UnknownTool(t) => {
                write!(f, "unknown tool `{t}`: the policy declares no such tool")
            }
            RequestError::UnknownParam { tool, param } => {
                write!(f, "tool `{tool}` has no parameter `{param}`")
            }
            RequestError::WrongType {
                tool,
                param,
                expected,
                given,
            } => write!(
                f,
                "argument `{param}` of tool `{tool}` is {}, but a {given} was given",
                expected.keyword()
            ),
            RequestError::UnknownResource(r) => write!(f, "unknown resource `{r}`"),
            RequestError::UnknownSink(s) => write!(f, "unknown sink `{s}`"),
            RequestError::UnknownKey(k) => write!(f, "unknown isolation key `{k}`"),
            RequestError::UnboundSet { param, set } => write!(
                f,
                "argument `{param}` is tested against set `{set}`, which is `from deploy` and was never bound (pass --sets FILE)"
            ),
            RequestError::ArgumentTooLarge {
                param,
                size,
                limit,
                unit,
            } => write!(
                f,
                "argument `{param}` is {size} {unit}, over the limit of {limit} {unit}; the call is refused without being tested (raise the argument limit, `--max-arg-bytes` / `--max-list-items`, if such arguments are expected)",
                unit = unit.keyword()
            ),
            RequestError::TooManyTexts => write!(
                f,
                "more than {MAX_PARAMS} distinct unknown texts in one request"
            ),
        }
    }
}

impl std::error::Error for RequestError {}

/// Builds a [`Request`] by name; see [`DecisionTable::request`].
#[derive(Debug, Clone)]
pub struct RequestBuilder<'a> {
    table: &'a DecisionTable,
    request: Request,
    /// Texts given that the table's dictionary lacks; the n-th distinct one gets id
    /// `UNKNOWN_TEXT_BASE + n`, so equal texts compare equal and none equals a constant.
    unknown_texts: [&'a str; MAX_PARAMS],
    unknown_count: usize,
    limits: RequestLimits,
}

impl DecisionTable {
    /// Starts a request of `agent` calling `tool`, by name.
    ///
    /// ```
    /// use agentpolicy_runtime::{DecisionTable, FORMAT_VERSION, RequestError, TableData};
    /// let table = DecisionTable::new(TableData {
    ///     format_version: FORMAT_VERSION,
    ///     ..TableData::default()
    /// })
    /// .unwrap();
    /// assert_eq!(
    ///     table.request("ghost", "wire_funds").unwrap_err(),
    ///     RequestError::UnknownAgent("ghost".into())
    /// );
    /// ```
    pub fn request<'a>(
        &'a self,
        agent: &str,
        tool: &str,
    ) -> Result<RequestBuilder<'a>, RequestError> {
        let agent_id = self
            .agent_id(agent)
            .ok_or_else(|| RequestError::UnknownAgent(agent.to_owned()))?;
        let tool_id = self
            .tool_id(tool)
            .ok_or_else(|| RequestError::UnknownTool(tool.to_owned()))?;
        Ok(RequestBuilder {
            table: self,
            request: Request::new(agent_id, tool_id),
            unknown_texts: [""; MAX_PARAMS],
            unknown_count: 0,
            limits: RequestLimits::default(),
        })
    }
}

impl<'a> RequestBuilder<'a> {
    /// A builder for ids already looked up (the engine's path).
    pub(crate) fn for_ids(
        table: &'a DecisionTable,
        agent: crate::ids::AgentId,
        tool: crate::ids::ToolId,
    ) -> RequestBuilder<'a> {
        RequestBuilder {
            table,
            request: Request::new(agent, tool),
            unknown_texts: [""; MAX_PARAMS],
            unknown_count: 0,
            limits: RequestLimits::default(),
        }
    }

    /// Sets the size limits arguments are checked against (default
    /// [`RequestLimits::default`]).
    pub fn limits(mut self, limits: RequestLimits) -> Self {
        self.limits = limits;
        self
    }

    pub(crate) fn set_limits(&mut self, limits: RequestLimits) {
        self.limits = limits;
    }

    /// Sets an argument, checking its name and type against the tool.
    pub fn arg(mut self, name: &str, value: ArgValue<'a>) -> Result<Self, RequestError> {
        self.set_arg(name, value)?;
        Ok(self)
    }

    /// [`RequestBuilder::arg`] in place: the engine's path, which avoids moving the
    /// builder through a `Result` at every step.
    pub(crate) fn set_arg(&mut self, name: &str, value: ArgValue<'a>) -> Result<(), RequestError> {
        let tool = self
            .table
            .data()
            .tools
            .get(self.request.tool.index())
            .ok_or_else(|| RequestError::UnknownTool(format!("#{}", self.request.tool.0)))?;
        let unknown_param = || RequestError::UnknownParam {
            tool: tool.name.clone(),
            param: name.to_owned(),
        };
        let index = tool.param(name).ok_or_else(unknown_param)?;
        let param = tool.params.get(index).ok_or_else(unknown_param)?;
        let slot = Slot::arg(index).ok_or_else(unknown_param)?;
        let encoded = match (param.ty, value) {
            (ValueType::Money, ArgValue::Money(v))
            | (ValueType::Duration, ArgValue::Duration(v))
            | (
                ValueType::Number | ValueType::Percent,
                ArgValue::Number(v) | ArgValue::Percent(v),
            ) => v,
            (ValueType::Bool, ArgValue::Bool(b)) => i64::from(b),
            (ValueType::Text, ArgValue::Text(text)) => {
                self.check_size(name, std::slice::from_ref(&text), false)?;
                self.set_text_bits(index, name, std::slice::from_ref(&text))?;
                self.intern_text(text)?
            }
            (ValueType::TextList, ArgValue::TextList(items)) => {
                self.check_size(name, items, true)?;
                self.set_text_bits(index, name, items)?;
                i64::try_from(items.len()).unwrap_or(i64::MAX)
            }
            (expected, given) => {
                return Err(RequestError::WrongType {
                    tool: tool.name.clone(),
                    param: name.to_owned(),
                    expected,
                    given: given.type_name(),
                });
            }
        };
        self.request.set(slot, encoded);
        Ok(())
    }

    fn check_size(&self, name: &str, items: &[&str], list: bool) -> Result<(), RequestError> {
        self.limits
            .check_arg(items, list)
            .map_err(|(size, limit, unit)| RequestError::ArgumentTooLarge {
                param: name.to_owned(),
                size,
                limit,
                unit,
            })
    }

    /// Runs the parameter's text tests over the elements: bit `b` when some element
    /// passes test `b`, bit `32 + b` when all do.
    fn set_text_bits(
        &mut self,
        index: usize,
        name: &str,
        items: &[&str],
    ) -> Result<(), RequestError> {
        let sets = &self.table.data().sets;
        let mut bits = 0u64;
        for (b, test) in self
            .table
            .text_tests(self.request.tool, index)
            .enumerate()
            .take(32)
        {
            let (mut any, mut all) = (false, true);
            for item in items {
                let holds = self
                    .table
                    .text_test_holds(self.request.tool, index, b, item);
                let passes = holds.ok_or_else(|| {
                    let set = match &test.kind {
                        crate::TextTestKind::InSet(s) => sets
                            .get(*s as usize)
                            .map_or_else(String::new, |s| s.name.clone()),
                        _ => String::new(),
                    };
                    RequestError::UnboundSet {
                        param: name.to_owned(),
                        set,
                    }
                })?;
                any |= passes;
                all &= passes;
            }
            bits |= (u64::from(any) << b) | (u64::from(all) << (32 + b));
        }
        if let Some(slot) = self.request.text_bits.get_mut(index) {
            *slot = bits;
        }
        Ok(())
    }

    /// Marks an argument as coming from untrusted content (an email body, a web page):
    /// conditions `ARG from untrusted` read this.
    pub fn untrusted(mut self, name: &str) -> Result<Self, RequestError> {
        self.set_untrusted(name)?;
        Ok(self)
    }

    pub(crate) fn set_untrusted(&mut self, name: &str) -> Result<(), RequestError> {
        let tool = self
            .table
            .data()
            .tools
            .get(self.request.tool.index())
            .ok_or_else(|| RequestError::UnknownTool(format!("#{}", self.request.tool.0)))?;
        let slot =
            tool.param(name)
                .and_then(Slot::arg)
                .ok_or_else(|| RequestError::UnknownParam {
                    tool: tool.name.clone(),
                    param: name.to_owned(),
                })?;
        self.request.untrusted |= slot.bit();
        Ok(())
    }

    /// The request as built so far, with the confidence and the accesses set directly.
    pub(crate) fn finish(
        &self,
        confidence: Option<i64>,
        read: Option<Access<ResourceId>>,
        write: Option<Access<SinkId>>,
    ) -> Request {
        let mut request = self.request;
        if let Some(c) = confidence {
            request.set(Slot::CONFIDENCE, c);
        }
        request.read = read;
        request.write = write;
        request
    }

    /// Sets the confidence the caller reports, in millionths (0.85 is 850_000).
    pub fn confidence(mut self, millionths: i64) -> Self {
        self.request.set(Slot::CONFIDENCE, millionths);
        self
    }

    /// Names the resource the call reads and the isolation-key values of the data.
    pub fn read(mut self, resource: &str, keys: &[(&str, KeyValue)]) -> Result<Self, RequestError> {
        let target: ResourceId = self
            .table
            .resource_id(resource)
            .ok_or_else(|| RequestError::UnknownResource(resource.to_owned()))?;
        let keys = self.keys(keys)?;
        self.request.read = Some(Access { target, keys });
        Ok(self)
    }

    /// Names the sink the call writes and the isolation-key values of the data.
    pub fn write(mut self, sink: &str, keys: &[(&str, KeyValue)]) -> Result<Self, RequestError> {
        let target: SinkId = self
            .table
            .sink_id(sink)
            .ok_or_else(|| RequestError::UnknownSink(sink.to_owned()))?;
        let keys = self.keys(keys)?;
        self.request.write = Some(Access { target, keys });
        Ok(self)
    }

    /// The session state the engine holds for this call.
    pub fn session(mut self, session: SessionView) -> Self {
        self.request.session = session;
        self
    }

    pub fn build(self) -> Request {
        self.request
    }

    fn keys(&self, keys: &[(&str, KeyValue)]) -> Result<KeyBindings, RequestError> {
        let mut out = KeyBindings::default();
        for &(name, value) in keys {
            let key: KeyId = self
                .table
                .key_id(name)
                .ok_or_else(|| RequestError::UnknownKey(name.to_owned()))?;
            if !out.set(key, value) {
                return Err(RequestError::UnknownKey(name.to_owned()));
            }
        }
        Ok(out)
    }

    fn intern_text(&mut self, text: &'a str) -> Result<i64, RequestError> {
        if let Some(id) = self.table.text_id(text) {
            return Ok(i64::from(id.0));
        }
        let known = self.unknown_texts.get(..self.unknown_count).unwrap_or(&[]);
        if let Some(n) = known.iter().position(|t| *t == text) {
            return Ok(UNKNOWN_TEXT_BASE + n as i64);
        }
        let slot = self
            .unknown_texts
            .get_mut(self.unknown_count)
            .ok_or(RequestError::TooManyTexts)?;
        *slot = text;
        self.unknown_count += 1;
        Ok(UNKNOWN_TEXT_BASE + (self.unknown_count as i64 - 1))
    }
}
