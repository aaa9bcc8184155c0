//! What the access-control matrix says, as plain data: computed from the verified
//! decision table (cells, rules, tools, agents), the model (purpose, credentials,
//! autonomy exemptions, which the table does not hold), the verifier's report and the
//! policy's source text. The renderers (`markdown`, `html`, `csv`) only lay it out, and
//! this struct serialized is the JSON format, so its field names are a stable schema
//! (`docs/matrix.md`); add fields, never rename them.
//!
//! Conditions are the rule's own source text (from its span), never a pretty-print of the
//! compiled condition: what the reviewer signs is what the author wrote.

mod compute;
pub mod csv;
pub mod html;
pub mod markdown;

pub use compute::{Inputs, compute, condition_text, duration};

use serde::Serialize;

/// The layouts of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Markdown, for a pull request or a wiki page.
    Markdown,
    /// One self-contained, printable HTML page (A4 landscape).
    Html,
    /// One row per (agent, tool), RFC 4180.
    Csv,
    /// One JSON document (schema [`SCHEMA`], `docs/matrix.md`).
    Json,
}

/// The matrix laid out in `format`.
pub fn render(matrix: &Matrix, format: Format) -> String {
    match format {
        Format::Markdown => markdown::render(matrix),
        Format::Html => html::render(matrix),
        Format::Csv => csv::render(matrix),
        Format::Json => {
            let mut json = serde_json::to_string_pretty(matrix).unwrap_or_default();
            json.push('\n');
            json
        }
    }
}

/// The schema name and version written in every JSON document.
pub const SCHEMA: &str = "agentpolicy-matrix/1";

#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub schema: &'static str,
    pub policy: Header,
    pub verification: Summary,
    /// Tier names, lowest first: the order the flow check and the tier ceilings compare.
    pub tiers: Vec<String>,
    /// The audit retention schedule (`retain audit ...`).
    pub retention: RetentionInfo,
    /// The policy's isolation keys.
    pub isolation_keys: Vec<String>,
    pub routes: Vec<RouteInfo>,
    /// The thresholds the conditions name, with their values.
    pub thresholds: Vec<ThresholdInfo>,
    /// The value sets the conditions name, with their members.
    pub sets: Vec<SetInfo>,
    pub tools: Vec<ToolInfo>,
    pub agents: Vec<AgentInfo>,
    /// One per (agent, tool), agent-major, in table order.
    pub cells: Vec<CellInfo>,
    /// Every verdict of the verifier, in its order.
    pub properties: Vec<PropertyInfo>,
    /// What the proofs assume about the world, each once, in the words `check` prints
    /// (docs/verification.md lists them): a reviewer signs the proofs under these.
    pub assumptions: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Header {
    pub name: String,
    pub version: Option<String>,
    /// The hash of the sources the engine writes in every audit record (`build` prints it).
    pub source_hash: String,
    /// The SHA-256 of the binary table `agentpolicy build -o` writes, for checking the
    /// deployed file (`sha256sum table.bin`).
    pub table_sha256: String,
    pub agentpolicy_version: String,
    /// Only when `--date` is given: outputs are otherwise deterministic.
    pub date: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `proved` (every property proved), `failed` (some counterexample) or `unknown`
    /// (none failed, but the solver could not decide some).
    pub status: &'static str,
    pub proved: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Hygiene findings (rules that never decide, tools that can never be used).
    pub warnings: usize,
}

/// The audit retention schedule: how long the engine's audit records must be kept
/// (a minimum; `agentpolicy audit compact` removes nothing earlier). A record is kept
/// for the longest period that applies to it; a record no clause applies to is kept
/// for ever.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionInfo {
    /// `retain audit PERIOD`: every record, e.g. `7y`; null when the policy sets none.
    pub default: Option<String>,
    /// `retain audit for TIER PERIOD`: records of data at `tier` or a higher tier, in
    /// source order.
    pub tiers: Vec<TierRetentionInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TierRetentionInfo {
    pub tier: String,
    /// `10y`, `90d`.
    pub period: String,
}

impl RetentionInfo {
    /// Whether the policy sets no retention at all (every record is kept for ever).
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.tiers.is_empty()
    }

    /// The schedule as rows for people: what records, how long at least, and the clause
    /// as the policy writes it.
    pub fn rows(&self) -> Vec<RetentionRow> {
        let mut rows = Vec::new();
        if let Some(period) = &self.default {
            rows.push(RetentionRow {
                records: "every record".to_string(),
                tier: None,
                period: period.clone(),
                clause: format!("retain audit {period}"),
            });
        }
        for t in &self.tiers {
            rows.push(RetentionRow {
                records: format!("records of data at tier {} or higher", t.tier),
                tier: Some(t.tier.clone()),
                period: t.period.clone(),
                clause: format!("retain audit for {} {}", t.tier, t.period),
            });
        }
        rows
    }

    /// One line: `retain audit 5y; retain audit for npi 7y`, or what no schedule means.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return NO_RETENTION.to_string();
        }
        self.rows()
            .iter()
            .map(|r| r.clause.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What a policy without `retain` means for its audit records.
pub const NO_RETENTION: &str =
    "no retention schedule: every audit record is kept for ever (compaction removes nothing)";

/// How a record is kept longest, said in every format that explains the schedule.
pub const RETENTION_READING: &str = "Each period is a minimum: a record is kept at least that long after its time, for the longest period that applies to it; a record no clause applies to is kept for ever. Years are calendar years.";

/// One clause of the retention schedule, for the renderers.
#[derive(Debug, Clone)]
pub struct RetentionRow {
    /// `every record`, `records of data at tier npi or higher`.
    pub records: String,
    /// The tier of a per-tier clause (`None` for the default).
    pub tier: Option<String>,
    pub period: String,
    /// As the policy writes it: `retain audit for npi 7y`.
    pub clause: String,
}

/// The tier order on one line, lowest first: `public < internal < confidential`.
pub fn tier_order(tiers: &[String]) -> String {
    tiers.join(" < ")
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteInfo {
    pub name: String,
    pub notify: Option<String>,
    /// `2h then deny`, or null when the route has no timeout.
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThresholdInfo {
    pub name: String,
    /// As the language writes it: `$5,000.00`, `0.85`, `2h`, `"text"`.
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SetInfo {
    pub name: String,
    /// Sorted; null for a set bound at deploy time (its members are not in the policy).
    pub members: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub name: String,
    /// Sorted keywords: `read`, `write`, `external`, `financial`, `irreversible`.
    pub effects: Vec<String>,
    pub irreversible: bool,
    /// The tool's output is untrusted content: a call taints the session.
    pub untrusted_output: bool,
    pub reads: Vec<DataInfo>,
    pub writes: Vec<DataInfo>,
}

/// A resource a tool reads (with its tier) or a sink it writes (with its clearance).
#[derive(Debug, Clone, Serialize)]
pub struct DataInfo {
    pub name: String,
    /// The resource's tier, or the sink's clearance.
    pub tier: String,
    pub keyed: Vec<String>,
    /// A resource whose data is untrusted: reading it taints the session. Always false
    /// for a sink.
    pub untrusted: bool,
}

impl DataInfo {
    /// `matter_documents (confidential, keyed by matter)`, `web_pages (public, untrusted)`.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.name, self.labels().join(", "))
    }

    /// The tier, then `keyed by ...` and `untrusted` when they apply.
    pub fn labels(&self) -> Vec<String> {
        let mut out = vec![self.tier.clone()];
        if !self.keyed.is_empty() {
            out.push(format!("keyed by {}", self.keyed.join(", ")));
        }
        if self.untrusted {
            out.push("untrusted".to_string());
        }
        out
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentInfo {
    pub name: String,
    pub owner: Option<String>,
    pub purpose: Option<String>,
    /// `enforce` or `shadow`.
    pub mode: &'static str,
    /// The lifecycle stage (`shadow`, `supervised to ROUTE`, `autonomous`), or null when
    /// the agent declares none.
    pub stage: Option<String>,
    /// Each `promote to ...` clause as written (one line).
    pub promotions: Vec<String>,
    /// The tier ceiling, or null for none.
    pub max_tier: Option<String>,
    /// The isolation keys of the data its granted tools read or write: a session of this
    /// agent is bound to one value of each.
    pub isolation_keys: Vec<String>,
    /// The tools its rules grant, in table order.
    pub granted: Vec<String>,
    /// `40 calls per task`.
    pub limits: Vec<String>,
    /// `error_rate > 25% over 10m then suspend agent`.
    pub breakers: Vec<String>,
    pub credentials: Vec<CredentialInfo>,
    pub autonomy: Vec<AutonomyInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CredentialInfo {
    pub name: String,
    /// `1h`, or null when it does not expire.
    pub expires: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AutonomyInfo {
    pub tool: String,
    /// The condition's source text.
    pub when: String,
    pub because: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CellInfo {
    pub agent: String,
    pub tool: String,
    pub granted: bool,
    /// The outcome summary, one line per rule in decide's order (deny, escalate, allow;
    /// source order within each), ending with `otherwise deny (no rule)` when no rule
    /// always matches. `["not granted"]` for a tool the agent is not granted.
    pub summary: Vec<String>,
    /// The rules of the cell, in decide's order.
    pub rules: Vec<CellRule>,
    /// `proved`, `failed`, `unknown` or `warning` for the properties proved on this
    /// cell (irreversible => escalation, monotone thresholds, hygiene), the worst one;
    /// null when none applies.
    pub proofs: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CellRule {
    /// The table's rule id, `billing/escalate/send_invoice#1`.
    pub id: String,
    /// `allow`, `escalate` or `deny`.
    pub kind: &'static str,
    /// The route of an `escalate` rule.
    pub route: Option<String>,
    /// The condition's source text, or null for a rule without `when`.
    pub when: Option<String>,
    /// `path:line:column` of the rule.
    pub location: String,
    /// False when a rule before it in decide's order always matches, so it never decides.
    pub reachable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PropertyInfo {
    /// `isolation`, `no write-down`, `tier ceiling`, `irreversible => escalation`,
    /// `monotone thresholds`, `hygiene`, `assert`.
    pub property: &'static str,
    /// What it is about, as the verifier names it: `agent intake`, `billing calls
    /// send_invoice`, `rule intake/allow/open_matter#1`, an assert's text.
    pub subject: String,
    /// The agent the verdict is about, or null for a policy-wide one (asserts).
    pub agent: Option<String>,
    /// The tool, for a verdict about one (agent, tool) cell.
    pub tool: Option<String>,
    /// `proved`, `failed`, `unknown` or `warning`.
    pub verdict: &'static str,
    /// What the verdict assumes about the world, in the words `check` prints.
    pub assumptions: Vec<&'static str>,
    /// How a proof was reached (per cell, by induction, by bounded model checking).
    pub method: String,
    /// For `failed`: a one-line counterexample; for `unknown`: the solver's reason; for
    /// `warning`: the finding.
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_the_source_text_on_one_line() {
        assert_eq!(
            condition_text(
                "allow send_invoice when amount < partner_approval_amount",
                None
            )
            .as_deref(),
            Some("amount < partner_approval_amount")
        );
        assert_eq!(
            condition_text(
                "deny wire when amount > $5\n  // big\n  or   confidence < 0.5",
                None
            )
            .as_deref(),
            Some("amount > $5 or confidence < 0.5")
        );
        assert_eq!(
            condition_text(
                "autonomy send_invoice when amount < $100\n because \"why\"",
                Some("because")
            )
            .as_deref(),
            Some("amount < $100")
        );
        assert_eq!(condition_text("allow search", None), None);
    }

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(duration(3_600_000), "1h");
        assert_eq!(duration(5_400_000), "90m");
        assert_eq!(duration(500), "500ms");
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(7 * 86_400_000), "1w");
        assert_eq!(
            agentpolicy_runtime::values::group_thousands(400_000),
            "400,000"
        );
        assert_eq!(agentpolicy_runtime::values::percent(250_000), "25%");
    }
}
