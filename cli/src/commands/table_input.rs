//! TABLE_OR_POLICY arguments: a decision table from `agentpolicy build` (binary or
//! JSON), or a policy (a `.agentpolicy` file or a directory) compiled on the spot, so
//! examples can be replayed without a build step.

use std::path::Path;

use agentpolicy_runtime::DecisionTable;

use super::{EXIT_USAGE, load};

/// Binds the policy's `from deploy` sets from a JSON file (`{"SET": ["member", ...]}`),
/// when one is given.
pub fn with_sets(table: DecisionTable, sets: Option<&Path>) -> Result<DecisionTable, String> {
    let Some(path) = sets else {
        return Ok(table);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    table
        .bind_sets(&text)
        .map(|(bound, _)| bound)
        .map_err(|e| format!("`{}`: {e}", path.display()))
}

/// The table, or the exit code after the reason was printed.
pub fn load_table_or_policy(path: &Path) -> Result<DecisionTable, u8> {
    let is_policy =
        path.is_dir() || path.extension().and_then(|e| e.to_str()) == Some("agentpolicy");
    if !is_policy {
        let bytes = std::fs::read(path).map_err(|e| {
            eprintln!("error: cannot read `{}`: {e}", path.display());
            EXIT_USAGE
        })?;
        return agentpolicy_runtime::wire::load_table(&bytes).map_err(|e| {
            eprintln!("error: `{}`: {e}", path.display());
            EXIT_USAGE
        });
    }
    load::load_and_build(path, "").map(|(_, table)| table)
}
