//! The request JSON format (`docs/requests.md`), read by `agentpolicy decide` and by
//! every embedder that takes requests as JSON: names and values as a person writes them,
//! turned into a [`Request`] through the table's request builder. Every mistake is an
//! error that names the field.

use std::collections::BTreeMap;

use crate::values::{parse_decimal, parse_duration, parse_money};
use crate::{
    ArgValue, DecisionTable, KeyBindings, KeyValue, KeyValueInterner, MAX_LIMITS, Request,
    SessionView, TierId, ValueType,
};
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestJson {
    pub agent: String,
    pub tool: String,
    #[serde(default)]
    pub args: BTreeMap<String, Json>,
    #[serde(default)]
    pub confidence: Option<Json>,
    #[serde(default)]
    pub read: Option<ReadJson>,
    #[serde(default)]
    pub write: Option<WriteJson>,
    #[serde(default)]
    pub session: SessionJson,
    /// Arguments that came from untrusted content.
    #[serde(default)]
    pub untrusted: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadJson {
    pub resource: String,
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteJson {
    pub sink: String,
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionJson {
    #[serde(default)]
    pub engine_suspended: bool,
    #[serde(default)]
    pub agent_suspended: bool,
    /// The session's tier by name; absent while unlabelled.
    #[serde(default)]
    pub tier: Option<String>,
    /// Isolation-key values the session is bound to, by key name.
    #[serde(default)]
    pub bound: BTreeMap<String, String>,
    /// Usage counters of the agent's limits, in the order the policy declares them.
    #[serde(default)]
    pub usage: Vec<u64>,
    /// The session has taken in untrusted content.
    #[serde(default)]
    pub tainted: bool,
}

/// Parses request JSON text no longer than the default
/// [`RequestLimits::request_bytes`](crate::RequestLimits).
pub fn parse(text: &str) -> Result<RequestJson, String> {
    parse_limited(text, &crate::RequestLimits::default())
}

/// Parses request JSON text, refusing text longer than `limits.request_bytes` before
/// reading it.
pub fn parse_limited(text: &str, limits: &crate::RequestLimits) -> Result<RequestJson, String> {
    limits.check_request(text)?;
    serde_json::from_str(text).map_err(|e| format!("the request is not valid request JSON: {e}"))
}

/// Turns a parsed request into a runtime request for `table`, with the default
/// argument limits.
pub fn to_request(
    table: &DecisionTable,
    json: &RequestJson,
    values: &mut KeyValueInterner,
) -> Result<Request, String> {
    to_request_limited(table, json, values, &crate::RequestLimits::default())
}

/// [`to_request`] with the argument limits of `limits`: an argument over them is an
/// error naming it and the limit.
pub fn to_request_limited(
    table: &DecisionTable,
    json: &RequestJson,
    values: &mut KeyValueInterner,
    limits: &crate::RequestLimits,
) -> Result<Request, String> {
    let mut builder = table
        .request(&json.agent, &json.tool)
        .map_err(|e| e.to_string())?
        .limits(*limits);
    let tool = table
        .tool_id(&json.tool)
        .and_then(|t| table.data().tools.get(t.index()))
        .ok_or_else(|| format!("unknown tool `{}`", json.tool))?;
    let lists = text_lists(&json.args);
    for (name, value) in &json.args {
        let param = tool
            .params
            .iter()
            .find(|p| &p.name == name)
            .ok_or_else(|| format!("tool `{}` has no parameter `{name}`", tool.name))?;
        let arg = arg_or_list(param.ty, value, lists.get(name.as_str()))
            .map_err(|expected| format!("argument `{name}`: expected {expected}, found {value}"))?;
        builder = builder.arg(name, arg).map_err(|e| e.to_string())?;
    }
    for name in &json.untrusted {
        builder = builder
            .untrusted(name)
            .map_err(|e| format!("`untrusted`: {e}"))?;
    }
    if let Some(confidence) = &json.confidence {
        let c = number(confidence)
            .map_err(|expected| format!("`confidence`: expected {expected}, found {confidence}"))?;
        builder = builder.confidence(c);
    }
    if let Some(read) = &json.read {
        let keys = key_values(&read.keys, values);
        builder = builder
            .read(&read.resource, &borrowed(&keys))
            .map_err(|e| e.to_string())?;
    }
    if let Some(write) = &json.write {
        let keys = key_values(&write.keys, values);
        builder = builder
            .write(&write.sink, &borrowed(&keys))
            .map_err(|e| e.to_string())?;
    }
    builder = builder.session(session(table, &json.session, values)?);
    Ok(builder.build())
}

fn key_values(
    keys: &BTreeMap<String, String>,
    values: &mut KeyValueInterner,
) -> Vec<(String, KeyValue)> {
    keys.iter()
        .map(|(k, v)| (k.clone(), values.intern(v)))
        .collect()
}

fn borrowed(keys: &[(String, KeyValue)]) -> Vec<(&str, KeyValue)> {
    keys.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

fn session(
    table: &DecisionTable,
    json: &SessionJson,
    values: &mut KeyValueInterner,
) -> Result<SessionView, String> {
    let tier = match &json.tier {
        None => None,
        Some(name) => Some(
            table
                .data()
                .tiers
                .iter()
                .position(|t| t == name)
                .map(|i| TierId(i as u32))
                .ok_or_else(|| format!("`session.tier`: unknown tier `{name}`"))?,
        ),
    };
    let mut bound = KeyBindings::default();
    for (key, value) in &json.bound {
        let id = table
            .key_id(key)
            .ok_or_else(|| format!("`session.bound`: unknown isolation key `{key}`"))?;
        bound.set(id, values.intern(value));
    }
    if json.usage.len() > MAX_LIMITS {
        return Err(format!(
            "`session.usage`: {} counters given; an agent has at most {MAX_LIMITS} limits",
            json.usage.len()
        ));
    }
    let mut usage = [0u64; MAX_LIMITS];
    for (slot, used) in usage.iter_mut().zip(&json.usage) {
        *slot = *used;
    }
    Ok(SessionView {
        engine_suspended: json.engine_suspended,
        agent_suspended: json.agent_suspended,
        tier,
        bound,
        usage,
        tainted: json.tainted,
    })
}

/// The elements of every argument given as an array of strings, by argument name: the
/// storage `list<text>` values borrow from.
pub fn text_lists(args: &BTreeMap<String, Json>) -> BTreeMap<&str, Vec<&str>> {
    args.iter()
        .filter_map(|(name, value)| {
            let items: Option<Vec<&str>> = value.as_array()?.iter().map(Json::as_str).collect();
            Some((name.as_str(), items?))
        })
        .collect()
}

/// [`arg_value`], or for a `list<text>` parameter the list from [`text_lists`].
pub fn arg_or_list<'a>(
    ty: ValueType,
    value: &'a Json,
    list: Option<&'a Vec<&'a str>>,
) -> Result<ArgValue<'a>, &'static str> {
    match (ty, list) {
        (ValueType::TextList, Some(items)) => Ok(ArgValue::TextList(items)),
        _ => arg_value(ty, value),
    }
}

/// The value of an argument of type `ty`; `Err` says what was expected.
pub fn arg_value(ty: ValueType, value: &Json) -> Result<ArgValue<'_>, &'static str> {
    match ty {
        ValueType::Money => {
            const EXPECTED: &str = "money, like \"$25,000\" or \"-$0.01\", or a number of dollars";
            // As counterexamples and witnesses print it (`-$0.01`), or without the `$`.
            let text = match value {
                Json::String(s) if s.starts_with('$') || s.starts_with("-$") => s.clone(),
                Json::String(s) => format!("${s}"),
                Json::Number(n) => format!("${n}"),
                _ => return Err(EXPECTED),
            };
            parse_money(&text).map(ArgValue::Money).ok_or(EXPECTED)
        }
        ValueType::Number => number(value).map(ArgValue::Number),
        ValueType::Percent => number(value).map(ArgValue::Percent),
        ValueType::Duration => match value {
            Json::String(s) => parse_duration(s)
                .map(ArgValue::Duration)
                .ok_or("a duration, like \"15m\" or a number of milliseconds"),
            Json::Number(n) => n
                .as_i64()
                .map(ArgValue::Duration)
                .ok_or("a whole number of milliseconds"),
            _ => Err("a duration, like \"15m\" or a number of milliseconds"),
        },
        ValueType::Bool => value.as_bool().map(ArgValue::Bool).ok_or("true or false"),
        ValueType::Text => value.as_str().map(ArgValue::Text).ok_or("a string"),
        ValueType::TextList => Err("a list of strings, like [\"a@acme.example\"]"),
    }
}

/// A number or percentage in millionths: `0.85`, `"0.85"` and `"85%"` are 850_000.
pub fn number(value: &Json) -> Result<i64, &'static str> {
    const EXPECTED: &str = "a number like 0.85, or a percentage like \"85%\"";
    let text = match value {
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.trim().to_owned(),
        _ => return Err(EXPECTED),
    };
    let (body, scale) = match text.strip_suffix('%') {
        Some(p) => (p.trim().to_owned(), 4),
        None => (text, 6),
    };
    let (negative, digits) = match body.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, body.as_str()),
    };
    let magnitude = parse_decimal(digits, scale).ok_or(EXPECTED)?;
    Ok(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_percentages_are_millionths() {
        assert_eq!(number(&serde_json::json!(0.85)), Ok(850_000));
        assert_eq!(number(&serde_json::json!("85%")), Ok(850_000));
        assert_eq!(number(&serde_json::json!("-1.5")), Ok(-1_500_000));
        assert_eq!(number(&serde_json::json!(3)), Ok(3_000_000));
        assert!(number(&serde_json::json!("lots")).is_err());
        assert!(number(&serde_json::json!(0.0000001)).is_err());
    }

    #[test]
    fn money_in_either_form() {
        let money =
            |v: serde_json::Value| arg_value(ValueType::Money, &v).map(|a| format!("{a:?}"));
        assert_eq!(
            money(serde_json::json!("$25,000")),
            Ok("Money(2500000)".into())
        );
        assert_eq!(money(serde_json::json!(99.95)), Ok("Money(9995)".into()));
        assert_eq!(money(serde_json::json!("$-5")), Ok("Money(-500)".into()));
        // The form counterexamples and `diff` witnesses print.
        assert_eq!(money(serde_json::json!("-$0.01")), Ok("Money(-1)".into()));
        assert_eq!(money(serde_json::json!("-0.01")), Ok("Money(-1)".into()));
        assert_eq!(money(serde_json::json!(-0.01)), Ok("Money(-1)".into()));
        assert_eq!(
            money(serde_json::json!(crate::values::money(i64::MIN))),
            Ok(format!("Money({})", i64::MIN))
        );
        assert!(money(serde_json::json!("--5")).is_err());
        assert!(money(serde_json::json!(true)).is_err());
    }

    #[test]
    fn durations_booleans_and_texts() {
        assert_eq!(
            arg_value(ValueType::Duration, &serde_json::json!("15m")),
            Ok(ArgValue::Duration(900_000))
        );
        assert_eq!(
            arg_value(ValueType::Bool, &serde_json::json!(true)),
            Ok(ArgValue::Bool(true))
        );
        assert_eq!(
            arg_value(ValueType::Text, &serde_json::json!(5)),
            Err("a string")
        );
    }
}
