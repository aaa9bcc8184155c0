//! Small lookups shared by the features: where a symbol is declared, and how the model's
//! exact values read back as source text (`$10,000`, `0.85`, `15m`).

use agentpolicy::model::{Loc, Model, Value};

use crate::index::{Symbol, SymbolKind};
use crate::state::World;

/// The declaration that wins for `symbol`: the model's location for top-level names
/// (a user declaration over a library one), else the first declaring occurrence.
pub fn definition(world: &World<'_>, symbol: &Symbol) -> Option<Loc> {
    let model = &world.analysis.model;
    if let Some(loc) = model_loc(model, symbol) {
        return Some(loc);
    }
    if symbol.kind == SymbolKind::Module {
        let doc = world
            .state
            .stdlib_documents()
            .iter()
            .find(|d| d.module.as_deref() == Some(symbol.name.as_str()))?;
        return Some(Loc {
            file: doc.id,
            range: Default::default(),
        });
    }
    world.index.declarations(symbol).first().map(|o| Loc {
        file: o.file,
        range: o.range,
    })
}

fn model_loc(model: &Model, symbol: &Symbol) -> Option<Loc> {
    let name = symbol.name.as_str();
    match symbol.kind {
        SymbolKind::Tier => model.tiers.iter().find(|d| d.name == name).map(|d| d.loc),
        SymbolKind::Key => model.keys.iter().find(|d| d.name == name).map(|d| d.loc),
        SymbolKind::Resource => model
            .resources
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.loc),
        SymbolKind::Sink => model.sinks.iter().find(|d| d.name == name).map(|d| d.loc),
        SymbolKind::Tool => model.tools.iter().find(|d| d.name == name).map(|d| d.loc),
        SymbolKind::Threshold => model
            .thresholds
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.loc),
        SymbolKind::Route => model.routes.iter().find(|d| d.name == name).map(|d| d.loc),
        SymbolKind::Agent => model.agents.iter().find(|d| d.name == name).map(|d| d.loc),
        SymbolKind::Set => model.sets.iter().find(|d| d.name == name).map(|d| d.loc),
        SymbolKind::Policy
        | SymbolKind::Module
        | SymbolKind::Param
        | SymbolKind::Credential
        | SymbolKind::Confidence => None,
    }
}

/// Whether a standard-library module declares `symbol` (such names are not renamed).
pub fn declared_in_stdlib(world: &World<'_>, symbol: &Symbol) -> bool {
    let stdlib_ids: Vec<_> = world
        .state
        .stdlib_documents()
        .iter()
        .map(|d| d.id)
        .collect();
    world
        .index
        .declarations(symbol)
        .iter()
        .any(|o| stdlib_ids.contains(&o.file))
        || (symbol.kind == SymbolKind::Param
            && symbol.container.as_ref().is_some_and(|tool| {
                let tool = Symbol {
                    kind: SymbolKind::Tool,
                    name: tool.clone(),
                    container: None,
                };
                world
                    .index
                    .declarations(&tool)
                    .iter()
                    .any(|o| stdlib_ids.contains(&o.file))
            }))
}

/// A value as it would be written in a policy.
pub fn format_value(value: &Value) -> String {
    match value {
        Value::Money(cents) => format_money(*cents),
        Value::Number(millionths) => format_decimal(*millionths),
        Value::Duration(ms) => format_duration(*ms),
        Value::Text(t) => format!("{t:?}"),
        Value::Bool(b) => b.to_string(),
        Value::TextList(items) => format!("{items:?}"),
    }
}

pub fn format_money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    let dollars = group_thousands(cents / 100);
    match cents % 100 {
        0 => format!("{sign}${dollars}"),
        c => format!("{sign}${dollars}.{c:02}"),
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Millionths as a decimal: `850000` is `0.85`.
pub fn format_decimal(millionths: i64) -> String {
    let sign = if millionths < 0 { "-" } else { "" };
    let m = millionths.unsigned_abs();
    let whole = m / 1_000_000;
    let frac = m % 1_000_000;
    if frac == 0 {
        format!("{sign}{whole}")
    } else {
        let frac = format!("{frac:06}");
        format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
    }
}

/// Milliseconds in the largest unit that divides them: `900000` is `15m`.
pub fn format_duration(ms: i64) -> String {
    const UNITS: &[(i64, &str)] = &[
        (7 * 86_400_000, "w"),
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    if ms == 0 {
        return "0s".to_string();
    }
    for (size, unit) in UNITS {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_source() {
        assert_eq!(format_money(1_000_000), "$10,000");
        assert_eq!(format_money(10_050), "$100.50");
        assert_eq!(format_decimal(850_000), "0.85");
        assert_eq!(format_decimal(3_000_000), "3");
        assert_eq!(format_duration(900_000), "15m");
        assert_eq!(format_duration(14_400_000), "4h");
        assert_eq!(format_duration(1_500), "1500ms");
    }
}
