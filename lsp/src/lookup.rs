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

pub use agentpolicy_runtime::values::{
    decimal as format_decimal, duration as format_duration, money_as_written as format_money,
};

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
