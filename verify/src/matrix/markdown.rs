//! The matrix as Markdown (GitHub-flavoured tables): header, agents, the matrix with
//! tools as rows and agents as columns, routes, every proof verdict, and a sign-off
//! block. Free text (owners, purposes, justifications) is escaped so it reads as written
//! and never becomes markup or HTML; names and conditions are code spans.

use super::{CellInfo, CellRule, Matrix, NO_RETENTION, RETENTION_READING};

pub fn render(m: &Matrix) -> String {
    let mut out = String::new();
    let p = &m.policy;
    let version = p
        .version
        .as_deref()
        .map(|v| format!(" version {}", text(v)))
        .unwrap_or_default();
    out.push_str(&format!(
        "# Access-control matrix: {}{version}\n\n",
        code(&p.name)
    ));
    out.push_str("| | |\n|---|---|\n");
    out.push_str(&format!("| Policy | {} |\n", code(&p.name)));
    out.push_str(&format!(
        "| Version | {} |\n",
        p.version
            .as_deref()
            .map(text)
            .unwrap_or_else(|| "(none)".into())
    ));
    out.push_str(&format!("| Source hash | {} |\n", code(&p.source_hash)));
    out.push_str(&format!(
        "| Table SHA-256 (`build -o` output) | {} |\n",
        code(&p.table_sha256)
    ));
    out.push_str(&format!(
        "| agentpolicy | {} |\n",
        text(&p.agentpolicy_version)
    ));
    if let Some(date) = &p.date {
        out.push_str(&format!("| Date | {} |\n", text(date)));
    }
    let v = &m.verification;
    out.push_str(&format!(
        "| Verification | **{}**: {} proved, {} failed, {} unknown, {} warning(s) |\n\n",
        status_word(v.status),
        v.proved,
        v.failed,
        v.unknown,
        v.warnings
    ));
    out.push_str(
        "Computed from the decision table the runtime loads, after the verifier ran on it. \
A cell lists the rules that decide a call of the tool by the agent, in the order `decide` \
applies them: any matching `deny` wins, then every matching `escalate` (all its routes), \
then a matching `allow`; a call no rule matches is denied. Before any rule, every call \
passes the flow check (tiers and isolation keys) and the agent's limits. A condition that \
reads a value the call does not carry matches `deny` and `escalate` rules and not `allow` \
rules. Conditions are quoted from the policy source.\n\n",
    );

    let open: Vec<_> = m
        .properties
        .iter()
        .filter(|p| p.verdict == "failed" || p.verdict == "unknown")
        .collect();
    if !open.is_empty() {
        out.push_str("## Not proved\n\nDo not sign this matrix as proved:\n\n");
        for p in open {
            out.push_str(&format!(
                "- **{}** {} ({}): {}\n",
                status_word(p.verdict),
                text(p.property),
                text(&p.subject),
                p.detail.as_deref().map(text).unwrap_or_default()
            ));
        }
        out.push('\n');
    }
    out.push_str("## Agents\n\n");
    if m.agents.is_empty() {
        out.push_str("The policy declares no agent.\n\n");
    }
    for a in &m.agents {
        out.push_str(&format!("### {}\n\n| | |\n|---|---|\n", code(&a.name)));
        let opt = |v: &Option<String>| v.as_deref().map(text).unwrap_or_else(|| "(none)".into());
        out.push_str(&format!("| Owner | {} |\n", opt(&a.owner)));
        out.push_str(&format!("| Purpose | {} |\n", opt(&a.purpose)));
        out.push_str(&format!("| Mode | {} |\n", mode_text(a.mode)));
        out.push_str(&format!(
            "| Max tier | {} |\n",
            a.max_tier
                .as_deref()
                .map(code)
                .unwrap_or_else(|| "(no ceiling)".into())
        ));
        out.push_str(&format!(
            "| Isolation keys | {} |\n",
            list_or_none(a.isolation_keys.iter().map(|k| code(k)))
        ));
        out.push_str(&format!(
            "| Tools granted | {} |\n",
            list_or_none(a.granted.iter().map(|t| code(t)))
        ));
        out.push_str(&format!(
            "| Limits | {} |\n",
            list_or_none(a.limits.iter().map(|l| text(l)))
        ));
        out.push_str(&format!(
            "| Breakers | {} |\n",
            list_or_none(a.breakers.iter().map(|b| text(b)))
        ));
        out.push_str(&format!(
            "| Credentials | {} |\n",
            list_or_none(a.credentials.iter().map(|c| match &c.expires {
                Some(e) => format!("{} (expires after {})", code(&c.name), text(e)),
                None => format!("{} (never expires)", code(&c.name)),
            }))
        ));
        if let Some(stage) = &a.stage {
            out.push_str(&format!("| Stage | {} |\n", code(stage)));
        }
        if !a.promotions.is_empty() {
            out.push_str(&format!(
                "| Promotion criteria | {} |\n",
                a.promotions
                    .iter()
                    .map(|p| code(p))
                    .collect::<Vec<_>>()
                    .join("<br>")
            ));
        }
        out.push_str(&format!(
            "| Autonomy exemptions | {} |\n",
            list_or_none(a.autonomy.iter().map(|x| format!(
                "{} when {}, because \"{}\"",
                code(&x.tool),
                code(&x.when),
                text(&x.because)
            )))
        ));
        let proofs: Vec<String> = m
            .properties
            .iter()
            .filter(|p| p.agent.as_deref() == Some(a.name.as_str()) && p.tool.is_none())
            .map(|p| {
                let subject = if p.subject == format!("agent {}", a.name) {
                    String::new()
                } else {
                    format!(" ({})", text(&p.subject))
                };
                format!(
                    "{}{subject}: **{}**",
                    text(p.property),
                    status_word(p.verdict)
                )
            })
            .collect();
        out.push_str(&format!(
            "| Proofs | {} |\n\n",
            list_or_none(proofs.into_iter())
        ));
    }

    out.push_str("## Matrix\n\n| Tool | Effects | Reads | Writes |");
    for a in &m.agents {
        out.push_str(&format!(" {} |", code(&a.name)));
    }
    out.push_str("\n|---|---|---|---|");
    out.push_str(&"---|".repeat(m.agents.len()));
    out.push('\n');
    for tool in &m.tools {
        let effects = if tool.effects.is_empty() {
            "(none)".to_string()
        } else {
            tool.effects
                .iter()
                .map(|e| {
                    if e == "irreversible" {
                        "**irreversible**".to_string()
                    } else {
                        text(e)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let effects = if tool.untrusted_output {
            format!("{effects}; output **untrusted**")
        } else {
            effects
        };
        let data = |list: &[super::DataInfo]| {
            if list.is_empty() {
                "-".to_string()
            } else {
                list.iter()
                    .map(|d| {
                        let keyed = if d.keyed.is_empty() {
                            String::new()
                        } else {
                            let keys: Vec<String> = d.keyed.iter().map(|k| code(k)).collect();
                            format!(", keyed by {}", keys.join(", "))
                        };
                        let untrusted = if d.untrusted { ", **untrusted**" } else { "" };
                        format!("{} ({}{keyed}{untrusted})", code(&d.name), code(&d.tier))
                    })
                    .collect::<Vec<_>>()
                    .join("<br>")
            }
        };
        out.push_str(&format!(
            "| {} | {effects} | {} | {} |",
            code(&tool.name),
            data(&tool.reads),
            data(&tool.writes)
        ));
        for a in &m.agents {
            let cell = m
                .cells
                .iter()
                .find(|c| c.agent == a.name && c.tool == tool.name);
            out.push_str(&format!(
                " {} |",
                cell.map(cell_text).unwrap_or_else(|| "-".into())
            ));
        }
        out.push('\n');
    }
    out.push('\n');

    if !m.routes.is_empty() {
        out.push_str("## Escalation routes\n\n| Route | Notifies | Timeout |\n|---|---|---|\n");
        for r in &m.routes {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                code(&r.name),
                r.notify.as_deref().map(text).unwrap_or_else(|| "-".into()),
                r.timeout
                    .as_deref()
                    .map(text)
                    .unwrap_or_else(|| "(no timeout)".into())
            ));
        }
        out.push('\n');
    }

    if !m.thresholds.is_empty() {
        out.push_str("## Thresholds\n\n| Threshold | Value |\n|---|---|\n");
        for t in &m.thresholds {
            out.push_str(&format!("| {} | {} |\n", code(&t.name), code(&t.value)));
        }
        out.push('\n');
    }

    if !m.sets.is_empty() {
        out.push_str("## Value sets\n\n| Set | Members |\n|---|---|\n");
        for set in &m.sets {
            let members = match &set.members {
                Some(members) if members.is_empty() => "(empty)".to_string(),
                Some(members) => members
                    .iter()
                    .map(|v| code(v))
                    .collect::<Vec<_>>()
                    .join(", "),
                None => "(bound at deploy time)".to_string(),
            };
            out.push_str(&format!("| {} | {members} |\n", code(&set.name)));
        }
        out.push('\n');
    }

    out.push_str("## Tier order\n\n");
    if m.tiers.is_empty() {
        out.push_str("The policy declares no tier.\n\n");
    } else {
        out.push_str(&format!(
            "Lowest first: {}. {TIER_READING}\n\n",
            m.tiers
                .iter()
                .map(|t| code(t))
                .collect::<Vec<_>>()
                .join(" < ")
        ));
    }

    out.push_str("## Audit retention\n\n");
    if m.retention.is_empty() {
        out.push_str(&format!("{}.\n\n", capitalized(NO_RETENTION)));
    } else {
        out.push_str("| Records | Kept at least | Clause |\n|---|---|---|\n");
        for r in m.retention.rows() {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                match &r.tier {
                    Some(tier) => format!("records of data at tier {} or higher", code(tier)),
                    None => text(&r.records),
                },
                text(&r.period),
                code(&r.clause)
            ));
        }
        out.push_str(&format!("\n{RETENTION_READING}\n\n"));
    }

    out.push_str("## Proofs\n\n");
    if m.properties.is_empty() {
        out.push_str("No property applies (no agent is granted a tool, and no assert).\n\n");
    } else {
        out.push_str("| Property | Subject | Verdict | How, or why not |\n|---|---|---|---|\n");
        for p in &m.properties {
            let how = match &p.detail {
                Some(d) if p.verdict != "proved" => text(d),
                _ => text(&p.method),
            };
            out.push_str(&format!(
                "| {} | {} | **{}** | {how} |\n",
                text(p.property),
                text(&p.subject),
                status_word(p.verdict)
            ));
        }
        out.push('\n');
    }

    if !m.assumptions.is_empty() {
        out.push_str("## Assumptions the proofs rest on\n\n");
        for a in &m.assumptions {
            out.push_str(&format!("- {}\n", text(a)));
        }
        out.push('\n');
    }

    out.push_str("## Sign-off\n\n");
    out.push_str(&format!(
        "By signing, each reviewer approves this matrix for policy {}{version}, source hash {}.\n\n",
        code(&p.name),
        code(&p.source_hash)
    ));
    out.push_str("| Role | Name | Signature | Date |\n|---|---|---|---|\n");
    for role in SIGN_OFF_ROLES {
        out.push_str(&format!("| {role} | | | |\n"));
    }
    out
}

/// The roles of the sign-off block, in every format that has one.
pub const SIGN_OFF_ROLES: &[&str] = &[
    "Policy author",
    "Agent owner",
    "Compliance officer",
    "Security reviewer",
];

/// An agent's mode, with what shadow mode means for the people signing.
pub fn mode_text(mode: &str) -> String {
    match mode {
        "shadow" => "shadow: decided and logged, not enforced (the caller gets allow, with the would-be outcome)".to_string(),
        other => other.to_string(),
    }
}

/// What the tier order means for the agents' ceilings and the sinks' clearances.
pub const TIER_READING: &str = "An agent's max tier and a sink's clearance admit data of that tier and every lower one; a per-tier retention clause covers its tier and every higher one.";

/// `s` with its first letter upper-case.
pub fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `proved`, `FAILED`, `UNKNOWN`, `warning`: what is not a proof stands out.
pub fn status_word(verdict: &str) -> String {
    match verdict {
        "failed" => "FAILED".to_string(),
        "unknown" => "UNKNOWN".to_string(),
        other => other.to_string(),
    }
}

fn cell_text(cell: &CellInfo) -> String {
    if !cell.granted {
        return "not granted".to_string();
    }
    let mut lines: Vec<String> = cell.rules.iter().map(rule_line).collect();
    if cell.summary.last().map(String::as_str) == Some("otherwise deny (no rule)") {
        lines.push("otherwise deny (no rule)".to_string());
    }
    if let Some(proofs) = cell.proofs
        && proofs != "proved"
    {
        lines.push(format!("proofs: **{}**", status_word(proofs)));
    }
    lines.join("<br>")
}

fn rule_line(rule: &CellRule) -> String {
    let mut line = format!("**{}**", rule.kind);
    if let Some(route) = &rule.route {
        line.push_str(&format!(" to {}", code(route)));
    }
    if let Some(when) = &rule.when {
        line.push_str(&format!(" when {}", code(when)));
    }
    if !rule.reachable {
        line.push_str(" *(never decides: a rule above always matches)*");
    }
    line
}

fn list_or_none(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join("; ")
    }
}

/// Free text in a table cell: every character Markdown or HTML could read as markup is
/// backslash-escaped (CommonMark allows it before any ASCII punctuation), and line
/// breaks become spaces so the table row holds.
pub fn text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &ch) in chars.iter().enumerate() {
        let alnum = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|c| c.is_alphanumeric())
        };
        match ch {
            // An underscore inside a word is never emphasis (GFM), so `work_product`
            // stays readable in the raw text.
            '_' if alnum(i.checked_sub(1)) && alnum(Some(i + 1)) => out.push(ch),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '~' | '&' | '{'
            | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '\r' | '\n' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

/// A code span that holds `s` whatever backticks it contains; `|` escaped for tables.
pub fn code(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ").replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for ch in s.chars() {
        run = if ch == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::{code, text};

    #[test]
    fn free_text_never_becomes_markup() {
        assert_eq!(
            text("<script>a|b</script>"),
            "\\<script\\>a\\|b\\</script\\>"
        );
        assert_eq!(text("fees & *costs*"), "fees \\& \\*costs\\*");
        assert_eq!(text("work_product _x_"), "work_product \\_x\\_");
        assert_eq!(code("a < b"), "`a < b`");
        assert_eq!(code("x `y` z"), "``x `y` z``");
        assert_eq!(code("a | b"), "`a \\| b`");
    }
}
