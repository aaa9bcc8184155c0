//! Concrete counterexamples: requests a person can read (JSON with names, money in
//! dollars) and the runtime can replay ([`Call::to_request`]). Built from solver models by
//! the property modules; plain data here.

use agentpolicy_runtime::{
    self as rt, ArgValue, DecisionTable, KeyValueInterner, Outcome, Request, RequestError,
    SessionView, TierId,
};
use serde_json::{Map, Value, json};

/// An argument value, typed as the tool declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgVal {
    /// Cents.
    Money(i64),
    /// Millionths.
    Number(i64),
    /// Millionths.
    Percent(i64),
    /// Milliseconds.
    Duration(i64),
    Bool(bool),
    Text(String),
    TextList(Vec<String>),
}

impl ArgVal {
    pub fn to_json(&self) -> Value {
        match self {
            ArgVal::Money(c) => Value::String(money(*c)),
            ArgVal::Number(m) => millionths(*m),
            ArgVal::Percent(m) => Value::String(format!("{}%", decimal(m.saturating_mul(100)))),
            ArgVal::Duration(ms) => Value::String(format!("{ms}ms")),
            ArgVal::Bool(b) => Value::Bool(*b),
            ArgVal::Text(t) => Value::String(t.clone()),
            ArgVal::TextList(items) => {
                Value::Array(items.iter().cloned().map(Value::String).collect())
            }
        }
    }

    /// The value for the runtime; a list's elements are borrowed from `list`.
    fn runtime<'a>(&'a self, list: &'a [&'a str]) -> ArgValue<'a> {
        match self {
            ArgVal::Money(c) => ArgValue::Money(*c),
            ArgVal::Number(m) => ArgValue::Number(*m),
            ArgVal::Percent(m) => ArgValue::Percent(*m),
            ArgVal::Duration(ms) => ArgValue::Duration(*ms),
            ArgVal::Bool(b) => ArgValue::Bool(*b),
            ArgVal::Text(t) => ArgValue::Text(t),
            ArgVal::TextList(_) => ArgValue::TextList(list),
        }
    }

    fn items(&self) -> Vec<&str> {
        match self {
            ArgVal::TextList(items) => items.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

pub use agentpolicy_runtime::values::{decimal, money};

fn millionths(m: i64) -> Value {
    let text = decimal(m);
    serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text))
}

/// A read or write the request names, with the isolation-key values of the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub target: String,
    pub keys: Vec<(String, String)>,
}

/// The session state a call runs in, as the engine would hand it to `decide`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    pub tier: Option<String>,
    pub bound: Vec<(String, String)>,
    /// The session has taken in untrusted content.
    pub tainted: bool,
}

/// One tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub agent: String,
    pub tool: String,
    pub args: Vec<(String, ArgVal)>,
    /// Millionths.
    pub confidence: Option<i64>,
    pub read: Option<Access>,
    pub write: Option<Access>,
    /// Arguments the caller marks as coming from untrusted content.
    pub untrusted: Vec<String>,
    /// The members this call assumes for the policy's `from deploy` sets (proofs hold
    /// for any members; a counterexample needs some).
    pub sets: Vec<(String, Vec<String>)>,
    pub session: Session,
    /// What the runtime decides for this call.
    pub outcome: Outcome,
    /// The table rule that decided, if a rule did.
    pub rule: Option<String>,
}

impl Call {
    /// The request alone, in the format `agentpolicy decide` reads (docs/requests.md).
    pub fn request_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("agent".into(), json!(self.agent));
        m.insert("tool".into(), json!(self.tool));
        let args: Map<String, Value> = self
            .args
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        m.insert("args".into(), Value::Object(args));
        if let Some(c) = self.confidence {
            m.insert("confidence".into(), millionths(c));
        }
        let access = |a: &Access, field: &str| {
            let keys: Map<String, Value> =
                a.keys.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            json!({ field: a.target, "keys": keys })
        };
        if let Some(r) = &self.read {
            m.insert("read".into(), access(r, "resource"));
        }
        if let Some(w) = &self.write {
            m.insert("write".into(), access(w, "sink"));
        }
        if !self.untrusted.is_empty() {
            m.insert("untrusted".into(), json!(self.untrusted));
        }
        if self.session != Session::default() {
            let bound: Map<String, Value> = self
                .session
                .bound
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let mut session = Map::new();
            if let Some(tier) = &self.session.tier {
                session.insert("tier".into(), json!(tier));
            }
            session.insert("bound".into(), Value::Object(bound));
            if self.session.tainted {
                session.insert("tainted".into(), json!(true));
            }
            m.insert("session".into(), Value::Object(session));
        }
        Value::Object(m)
    }

    /// The table to decide this call with: `table` with the call's deploy-time sets
    /// bound, if it has any.
    pub fn table<'t>(
        &self,
        table: &'t DecisionTable,
    ) -> Result<std::borrow::Cow<'t, DecisionTable>, String> {
        if self.sets.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(table));
        }
        table
            .bind_sets(&self.sets_json().to_string())
            .map(|(bound, _)| std::borrow::Cow::Owned(bound))
            .map_err(|e| format!("the counterexample's sets cannot be bound: {e}"))
    }

    /// `{"SET": ["member", ...]}`, the format of `--sets FILE`.
    pub fn sets_json(&self) -> Value {
        Value::Object(
            self.sets
                .iter()
                .map(|(name, members)| (name.clone(), json!(members)))
                .collect(),
        )
    }

    /// The request with what the runtime decides for it.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("request".into(), self.request_json());
        if !self.sets.is_empty() {
            m.insert("sets".into(), self.sets_json());
        }
        m.insert("outcome".into(), json!(self.outcome.keyword()));
        if let Some(rule) = &self.rule {
            m.insert("rule".into(), json!(rule));
        }
        Value::Object(m)
    }

    /// The runtime request for this call, with key values interned by `keys` (pass the
    /// same interner for every call of one trace).
    pub fn to_request(
        &self,
        table: &DecisionTable,
        keys: &mut KeyValueInterner,
    ) -> Result<Request, RequestError> {
        let mut b = table.request(&self.agent, &self.tool)?;
        let lists: Vec<Vec<&str>> = self.args.iter().map(|(_, v)| v.items()).collect();
        for ((name, value), list) in self.args.iter().zip(&lists) {
            b = b.arg(name, value.runtime(list))?;
        }
        for name in &self.untrusted {
            b = b.untrusted(name)?;
        }
        if let Some(c) = self.confidence {
            b = b.confidence(c);
        }
        let intern = |pairs: &[(String, String)], keys: &mut KeyValueInterner| {
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), keys.intern(v)))
                .collect::<Vec<_>>()
        };
        if let Some(r) = &self.read {
            let pairs = intern(&r.keys, keys);
            let refs: Vec<(&str, rt::KeyValue)> =
                pairs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            b = b.read(&r.target, &refs)?;
        }
        if let Some(w) = &self.write {
            let pairs = intern(&w.keys, keys);
            let refs: Vec<(&str, rt::KeyValue)> =
                pairs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            b = b.write(&w.target, &refs)?;
        }
        let mut session = SessionView {
            tainted: self.session.tainted,
            ..SessionView::default()
        };
        if let Some(tier) = &self.session.tier {
            let id = table
                .data()
                .tiers
                .iter()
                .position(|t| t == tier)
                .ok_or_else(|| RequestError::UnknownKey(tier.clone()))?;
            session.tier = Some(TierId(id as u32));
        }
        for (k, v) in &self.session.bound {
            let key = table
                .key_id(k)
                .ok_or_else(|| RequestError::UnknownKey(k.clone()))?;
            session.bound.set(key, keys.intern(v));
        }
        Ok(b.session(session).build())
    }
}

/// A concrete witness that a property fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counterexample {
    /// The calls, in order: one for a property of single decisions, the shortest trace
    /// of a session for flow properties (every call but the last is one the runtime
    /// lets through, and the last is the one that breaks the property).
    pub calls: Vec<Call>,
    /// For monotonicity: the safer request that gets a stricter outcome.
    pub safer: Option<Call>,
    /// One sentence: what goes wrong in the last call.
    pub explanation: String,
}

impl Counterexample {
    /// `{"request", "outcome", "rule"}` for one call, or `{"trace": [...]}` for a
    /// session, plus `safer` (monotonicity) and the explanation. Every `request` is in
    /// the format `agentpolicy decide` reads.
    pub fn to_json(&self) -> Value {
        let mut m = match (self.calls.as_slice(), self.calls.first()) {
            ([_], Some(call)) => match call.to_json() {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            _ => {
                let mut m = Map::new();
                m.insert(
                    "trace".into(),
                    Value::Array(self.calls.iter().map(Call::to_json).collect()),
                );
                m
            }
        };
        if let Some(s) = &self.safer {
            m.insert("safer".into(), s.to_json());
        }
        m.insert("explanation".into(), json!(self.explanation));
        Value::Object(m)
    }

    pub fn last(&self) -> Option<&Call> {
        self.calls.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_decimals_are_exact() {
        assert_eq!(money(1_000_001), "$10,000.01");
        assert_eq!(money(-5), "-$0.05");
        assert_eq!(money(10_000_000_000), "$100,000,000.00");
        assert_eq!(decimal(850_000), "0.85");
        assert_eq!(decimal(-1_500_000), "-1.5");
        assert_eq!(decimal(2_000_000), "2");
    }
}
