//! Building audit records from what the engine knows: arguments rendered as text and
//! redacted per the config, labels, the decision explained. Allocation is fine here: it
//! runs only when an audit log is configured.

use serde_json::{Map, Value, json};

use super::call::{Call, Labels, Reason, Verdict};
use super::config::{Redact, Redaction};
use crate::audit::{Record, RecordKind};
use crate::builder::ArgValue;
use crate::decision_table::DecisionTable;
use crate::hash::ContentHash;
use crate::ids::TierId;
use crate::values;

/// An argument value as text: money `$12.50`, numbers `0.85`, percentages `85%`,
/// durations `1500ms`, booleans and texts as they are.
pub(crate) fn render(value: &ArgValue<'_>) -> Value {
    match *value {
        ArgValue::Money(cents) => Value::String(values::money(cents)),
        ArgValue::Number(m) => Value::String(values::decimal(m)),
        ArgValue::Percent(m) => Value::String(values::percent(m)),
        ArgValue::Duration(ms) => Value::String(values::duration(ms)),
        ArgValue::Bool(b) => Value::Bool(b),
        ArgValue::Text(t) => Value::String(t.to_owned()),
        ArgValue::TextList(items) => Value::Array(
            items
                .iter()
                .map(|t| Value::String((*t).to_owned()))
                .collect(),
        ),
    }
}

/// The longest reasoning snapshot a decision record keeps, in bytes; a longer one is cut
/// at a character boundary and marked `[... N bytes cut]`.
pub const MAX_REASONING_BYTES: usize = 4096;

/// The call's reasoning snapshot as recorded: redacted like an argument named
/// `reasoning` (mask, hash or omit), then cut to [`MAX_REASONING_BYTES`].
pub(crate) fn reasoning(redaction: &Redaction, call: &Call<'_>) -> Option<String> {
    let text = call.reasoning?;
    match redaction.how(call.tool, "reasoning") {
        Some(Redact::Omit) => None,
        Some(Redact::Mask) => Some("[redacted]".into()),
        Some(Redact::Hash) => Some(ContentHash::of(text.as_bytes()).to_string()),
        None if text.len() <= MAX_REASONING_BYTES => Some(text.to_owned()),
        None => {
            let mut end = MAX_REASONING_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let kept = text.get(..end).unwrap_or_default();
            Some(format!("{kept}[... {} bytes cut]", text.len() - end))
        }
    }
}

/// The longest text argument (or list element) an audit record keeps whole, in bytes.
/// A longer one is kept as its first bytes (cut at a character boundary), how much was
/// cut, its length and its SHA-256: `"<prefix>[... 3000 bytes cut; 4024 bytes,
/// sha256:…]"`, so a record stays small whatever the agent passed and whoever holds the
/// original can still match it. Redaction applies first: a masked, hashed or omitted
/// argument is never kept even in part.
pub const MAX_AUDIT_ARG_BYTES: usize = 1024;

/// The most elements of a list argument an audit record keeps; the rest are replaced by
/// one element `"[... N more elements cut; M elements, sha256:…]"` (the hash of the
/// whole list as compact JSON).
pub const MAX_AUDIT_LIST_ITEMS: usize = 64;

/// A text as an audit record keeps it: whole up to [`MAX_AUDIT_ARG_BYTES`], else bounded.
fn bounded_text(text: &str) -> Value {
    if text.len() <= MAX_AUDIT_ARG_BYTES {
        return Value::String(text.to_owned());
    }
    let mut end = MAX_AUDIT_ARG_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let kept = text.get(..end).unwrap_or_default();
    Value::String(format!(
        "{kept}[... {} bytes cut; {} bytes, {}]",
        text.len() - end,
        text.len(),
        ContentHash::of(text.as_bytes())
    ))
}

/// An argument as an audit record keeps it when no redaction rule names it: as
/// [`render`], with long texts and lists bounded.
fn bounded(value: &ArgValue<'_>) -> Value {
    match *value {
        ArgValue::Text(t) => bounded_text(t),
        ArgValue::TextList(items) => {
            let mut out: Vec<Value> = items
                .iter()
                .take(MAX_AUDIT_LIST_ITEMS)
                .map(|t| bounded_text(t))
                .collect();
            if items.len() > MAX_AUDIT_LIST_ITEMS {
                let whole = serde_json::to_string(items).unwrap_or_default();
                out.push(Value::String(format!(
                    "[... {} more elements cut; {} elements, {}]",
                    items.len() - MAX_AUDIT_LIST_ITEMS,
                    items.len(),
                    ContentHash::of(whole.as_bytes())
                )));
            }
            Value::Array(out)
        }
        _ => render(value),
    }
}

/// The call's arguments, redacted, long ones bounded.
pub(crate) fn args(redaction: &Redaction, call: &Call<'_>) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in call.args {
        match redaction.how(call.tool, name) {
            None => {
                out.insert((*name).to_owned(), bounded(value));
            }
            Some(Redact::Mask) => {
                out.insert((*name).to_owned(), Value::String("[redacted]".into()));
            }
            Some(Redact::Hash) => {
                let text = match render(value) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(
                    (*name).to_owned(),
                    Value::String(ContentHash::of(text.as_bytes()).to_string()),
                );
            }
            Some(Redact::Omit) => {}
        }
    }
    if let Some(c) = call.confidence {
        out.insert("confidence".into(), Value::String(values::decimal(c)));
    }
    out
}

fn labels_json(labels: &Labels<'_>, target_field: &str) -> Value {
    let keys: Map<String, Value> = labels
        .keys
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect();
    json!({ target_field: labels.target, "keys": keys })
}

pub(crate) fn labels(call: &Call<'_>) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    if let Some(read) = &call.read {
        out.insert("read".into(), labels_json(read, "resource"));
    }
    if let Some(write) = &call.write {
        out.insert("write".into(), labels_json(write, "sink"));
    }
    if !call.untrusted.is_empty() {
        out.insert(
            "untrusted_args".into(),
            Value::Array(
                call.untrusted
                    .iter()
                    .map(|a| Value::String((*a).to_owned()))
                    .collect(),
            ),
        );
    }
    (!out.is_empty()).then_some(out)
}

/// The `why` text of a verdict.
pub(crate) fn why(table: &DecisionTable, verdict: &Verdict) -> String {
    match &verdict.reason {
        Reason::Policy => verdict.decision.explain(table.data()).to_string(),
        Reason::Request(e) => format!("deny (request): {e}"),
        Reason::Session(e) => format!("deny (session): {e}"),
        Reason::Internal(e) => format!("deny (internal): {e}"),
    }
}

/// A tier id as the name records carry.
pub(crate) fn tier_name(table: &DecisionTable, tier: Option<TierId>) -> Option<String> {
    tier.and_then(|t| table.data().tiers.get(t.index()))
        .cloned()
}

/// The highest tier of the resources kept apart by any of the named isolation keys: a
/// record that names a key's value (a patient, a matter) is about that data.
pub(crate) fn keyed_tier<'k>(
    table: &DecisionTable,
    keys: impl IntoIterator<Item = &'k str>,
) -> Option<TierId> {
    let data = table.data();
    let ids: Vec<_> = keys.into_iter().filter_map(|k| table.key_id(k)).collect();
    data.resources
        .iter()
        .filter(|r| r.keyed.iter().any(|k| ids.contains(k)))
        .map(|r| r.tier)
        .max()
}

/// The tier a decision record is of: the session's tier (after the call, if it ran),
/// raised to the tier of what the call asked to read (the named resource, or every
/// resource the tool reads) and to the tier of data kept apart by the keys its write
/// names, so a denied read of restricted data is kept as long as the data itself.
pub(crate) fn call_tier(
    table: &DecisionTable,
    session_tier: Option<TierId>,
    call: &Call<'_>,
) -> Option<String> {
    let data = table.data();
    let raise = |tier: Option<TierId>, to: TierId| Some(tier.map_or(to, |t| t.max(to)));
    let mut tier = session_tier;
    if let Some(write) = &call.write
        && let Some(t) = keyed_tier(table, write.keys.iter().map(|(k, _)| *k))
    {
        tier = raise(tier, t);
    }
    match &call.read {
        Some(read) => {
            if let Some(r) = data.resources.iter().find(|r| r.name == read.target) {
                tier = raise(tier, r.tier);
            }
        }
        None => {
            let reads = data
                .tools
                .iter()
                .find(|t| t.name == call.tool)
                .map(|t| t.reads.as_slice())
                .unwrap_or_default();
            for r in reads.iter().filter_map(|r| data.resources.get(r.index())) {
                tier = raise(tier, r.tier);
            }
        }
    }
    tier_name(table, tier)
}

/// A decision record, with everything but the escalation.
pub(crate) struct DecisionParts<'a> {
    pub now: i64,
    pub session: &'a str,
    pub session_id: u64,
    pub agent: &'a str,
    pub call: &'a Call<'a>,
    pub verdict: &'a Verdict,
    /// The session was tainted when the call was decided.
    pub tainted: bool,
}

pub(crate) fn decision(
    table: &DecisionTable,
    redaction: &Redaction,
    p: &DecisionParts<'_>,
) -> Record {
    let v = p.verdict;
    let mut r = Record::new(RecordKind::Decision, p.now);
    r.table = Some(v.table);
    r.session = Some(p.session.to_owned());
    r.session_id = Some(p.session_id);
    r.agent = Some(p.agent.to_owned());
    r.tool = Some(p.call.tool.to_owned());
    r.call = v.call.map(|c| c.n);
    r.args = Some(args(redaction, p.call));
    r.labels = labels(p.call);
    if p.tainted {
        r.labels
            .get_or_insert_with(Map::new)
            .insert("tainted".into(), Value::Bool(true));
    }
    r.outcome = Some(v.decision.outcome);
    r.reported = Some(v.outcome);
    r.shadow = v.shadow;
    r.reason = Some(v.reason_code().to_owned());
    r.rule = v
        .decision
        .rule
        .filter(|_| v.reason == Reason::Policy)
        .and_then(|rule| table.rule(rule))
        .map(|rule| rule.id.clone());
    r.why = Some(why(table, v));
    r.reasoning = reasoning(redaction, p.call);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_exactly() {
        assert_eq!(render(&ArgValue::Money(2_500_050)), json!("$25,000.50"));
        assert_eq!(render(&ArgValue::Money(-5)), json!("-$0.05"));
        assert_eq!(render(&ArgValue::Number(850_000)), json!("0.85"));
        assert_eq!(render(&ArgValue::Number(3_000_000)), json!("3"));
        assert_eq!(render(&ArgValue::Percent(850_000)), json!("85%"));
        assert_eq!(render(&ArgValue::Duration(1_500)), json!("1500ms"));
        assert_eq!(render(&ArgValue::Bool(true)), json!(true));
    }

    #[test]
    fn redaction_masks_hashes_and_omits() {
        let redaction = Redaction::default()
            .rule(Some("send_email"), "body", Redact::Omit)
            .rule(None, "to", Redact::Hash)
            .rule(None, "amount", Redact::Mask);
        let a = [
            ("to", ArgValue::Text("ceo@acme.example")),
            ("body", ArgValue::Text("secret")),
            ("amount", ArgValue::Money(100)),
            ("subject", ArgValue::Text("hi")),
        ];
        let call = Call::new("send_email").args(&a);
        let out = args(&redaction, &call);
        assert_eq!(out.get("body"), None);
        assert_eq!(out.get("amount"), Some(&json!("[redacted]")));
        assert_eq!(
            out.get("to"),
            Some(&json!(ContentHash::of(b"ceo@acme.example").to_string()))
        );
        assert_eq!(out.get("subject"), Some(&json!("hi")));
    }
}
