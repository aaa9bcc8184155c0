//! The matrix as CSV (RFC 4180): a header row, then one row per (agent, tool) in table
//! order, CRLF line ends, a field quoted when it holds a comma, a quote, CR or LF, with
//! quotes doubled. The columns are documented in `docs/matrix.md`; add columns at the
//! end, never reorder them.

use super::Matrix;

/// The header row, in column order.
pub const COLUMNS: &[&str] = &[
    "policy",
    "policy_version",
    "agent",
    "tool",
    "granted",
    "outcome",
    "rules",
    "effects",
    "irreversible",
    "reads",
    "writes",
    "agent_mode",
    "agent_max_tier",
    "cell_proofs",
    "untrusted_output",
    "tier_order",
    "retention",
    "assumptions",
    "asserts",
];

pub fn render(matrix: &Matrix) -> String {
    let mut out = String::new();
    // Policy-wide columns, the same on every row (as the policy's name is): a reviewer
    // who reads only the spreadsheet still sees what the proofs rest on.
    let tier_order = super::tier_order(&matrix.tiers);
    let retention = matrix.retention.summary();
    // Assumptions and asserts hold `;` and `,` themselves: one per line in the field.
    let assumptions = matrix.assumptions.join("\n");
    let asserts = matrix
        .properties
        .iter()
        .filter(|p| p.property == "assert")
        .map(|p| format!("{}: {}", p.subject, p.verdict))
        .collect::<Vec<_>>()
        .join("\n");
    row(&mut out, COLUMNS.iter().map(|c| c.to_string()));
    for cell in &matrix.cells {
        let tool = matrix.tools.iter().find(|t| t.name == cell.tool);
        let agent = matrix.agents.iter().find(|a| a.name == cell.agent);
        let describe = |list: Option<&Vec<super::DataInfo>>| {
            list.map(|l| {
                l.iter()
                    .map(|d| d.describe())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
        };
        row(
            &mut out,
            [
                matrix.policy.name.clone(),
                matrix.policy.version.clone().unwrap_or_default(),
                cell.agent.clone(),
                cell.tool.clone(),
                if cell.granted { "yes" } else { "no" }.to_string(),
                cell.summary.join("; "),
                cell.rules
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                tool.map(|t| t.effects.join(" ")).unwrap_or_default(),
                if tool.is_some_and(|t| t.irreversible) {
                    "yes"
                } else {
                    "no"
                }
                .to_string(),
                describe(tool.map(|t| &t.reads)),
                describe(tool.map(|t| &t.writes)),
                agent.map(|a| a.mode.to_string()).unwrap_or_default(),
                agent.and_then(|a| a.max_tier.clone()).unwrap_or_default(),
                cell.proofs.unwrap_or("").to_string(),
                if tool.is_some_and(|t| t.untrusted_output) {
                    "yes"
                } else {
                    "no"
                }
                .to_string(),
                tier_order.clone(),
                retention.clone(),
                assumptions.clone(),
                asserts.clone(),
            ]
            .into_iter(),
        );
    }
    out
}

fn row(out: &mut String, fields: impl Iterator<Item = String>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(&field));
    }
    out.push_str("\r\n");
}

/// A field as RFC 4180 writes it.
pub fn quote(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a, b"), "\"a, b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
    }
}
