//! The matrix as one self-contained HTML page: inline CSS, no script, no external font,
//! image or link, printable on A4 landscape (table headers repeat on every page, rows
//! are never cut). Every text that comes from the policy goes through [`escape`].

use std::fmt::Write as _;

use super::markdown::{SIGN_OFF_ROLES, TIER_READING, capitalized, mode_text, status_word};
use super::{CellInfo, DataInfo, Matrix, NO_RETENTION, RETENTION_READING};

const STYLE: &str = r#"
:root { --ink:#1b2430; --muted:#5d6b7a; --line:#d5dbe3; --head:#eef2f6; --accent:#1f4e79;
  --allow:#1e7b3c; --allow-bg:#e7f4ec; --esc:#8a5a00; --esc-bg:#fdf3dc; --deny:#a12622;
  --deny-bg:#fbe9e8; --none:#8a96a3; }
* { box-sizing: border-box; }
body { margin: 0; padding: 28px 36px; color: var(--ink); background: #fff;
  font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace;
  font-size: 0.92em; }
h1 { font-size: 22px; margin: 0 0 2px; letter-spacing: -0.01em; }
h2 { font-size: 16px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--accent);
  color: var(--accent); break-after: avoid; }
h3 { font-size: 14px; margin: 0 0 8px; }
.subtitle { color: var(--muted); margin: 0 0 16px; }
header { display: flex; justify-content: space-between; gap: 24px; align-items: flex-start;
  border-bottom: 1px solid var(--line); padding-bottom: 14px; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; word-break: break-all; }
.status { border-radius: 6px; padding: 10px 16px; min-width: 230px; text-align: right; }
.status strong { display: block; font-size: 18px; letter-spacing: 0.04em; }
.status.proved { background: var(--allow-bg); color: var(--allow); border: 1px solid #b9dcc6; }
.status.failed { background: var(--deny-bg); color: var(--deny); border: 1px solid #efc2bf; }
.status.unknown { background: var(--esc-bg); color: var(--esc); border: 1px solid #f0d9a6; }
.reading { color: var(--muted); max-width: 1100px; margin: 14px 0 0; }
.agents { display: grid; grid-template-columns: repeat(auto-fill, minmax(400px, 1fr)); gap: 14px; }
.agent { border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; break-inside: avoid; }
.agent dl { display: grid; grid-template-columns: 128px 1fr; gap: 3px 10px; margin: 0; }
.agent dt { color: var(--muted); }
.agent dd { margin: 0; }
.agent ul { margin: 0; padding-left: 16px; }
table { border-collapse: collapse; width: 100%; }
table.narrow { width: auto; min-width: 40%; }
th, td { border: 1px solid var(--line); padding: 5px 7px; vertical-align: top; text-align: left; }
thead th { background: var(--head); font-weight: 600; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
table.matrix th.agent-col { min-width: 150px; }
table.matrix td.tool { white-space: nowrap; font-weight: 600; }
td.none { color: var(--none); background: #fafbfc; }
.rule { display: block; padding: 1px 0; }
.k { display: inline-block; min-width: 58px; padding: 0 5px; border-radius: 3px; font-size: 11px;
  font-weight: 700; text-transform: uppercase; letter-spacing: 0.03em; text-align: center; }
.k.allow { color: var(--allow); background: var(--allow-bg); }
.k.escalate { color: var(--esc); background: var(--esc-bg); }
.k.deny { color: var(--deny); background: var(--deny-bg); }
.unreachable { color: var(--muted); text-decoration: line-through; }
.note { color: var(--muted); font-size: 11px; }
.irrev { color: var(--deny); font-weight: 700; }
.untrusted { color: var(--esc); font-weight: 700; }
.v { font-weight: 700; }
.v.proved { color: var(--allow); }
.v.failed { color: var(--deny); }
.v.unknown { color: var(--esc); }
.v.warning { color: var(--esc); }
section.open { border: 1px solid #efc2bf; background: var(--deny-bg); border-radius: 6px;
  padding: 2px 16px 10px; margin-top: 18px; }
section.open h2 { color: var(--deny); border-bottom-color: var(--deny); }
section.open ul { margin: 0; padding-left: 18px; }
table.signoff td { height: 42px; }
table.signoff td:first-child { width: 22%; font-weight: 600; }
footer { margin-top: 24px; color: var(--muted); font-size: 11px; border-top: 1px solid var(--line);
  padding-top: 8px; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { padding: 0; font-size: 10.5px; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { margin-top: 18px; }
  section.signoff { break-before: page; }
  .agents { grid-template-columns: repeat(3, 1fr); }
}
"#;

pub fn render(m: &Matrix) -> String {
    let mut out = String::new();
    let p = &m.policy;
    let version = p
        .version
        .as_deref()
        .map(|v| format!(" version {}", escape(v)))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"agentpolicy-source-hash\" content=\"{}\">\n\
<title>Access-control matrix: {}{version}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&p.source_hash),
        escape(&p.name)
    );

    // Header: what is signed, and whether the proofs hold.
    let v = &m.verification;
    let _ = write!(
        out,
        "<header>\n<div>\n<h1>Access-control matrix</h1>\n\
<p class=\"subtitle\">Policy <code>{}</code>{version}</p>\n<dl class=\"meta\">\n",
        escape(&p.name)
    );
    let mut meta = |k: &str, v: String| {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{v}</dd>");
    };
    meta(
        "Source hash",
        format!("<code>{}</code>", escape(&p.source_hash)),
    );
    meta(
        "Table SHA-256",
        format!(
            "<code>{}</code> <span class=\"note\">(the file <code>build -o</code> writes)</span>",
            escape(&p.table_sha256)
        ),
    );
    meta("agentpolicy", escape(&p.agentpolicy_version));
    if let Some(date) = &p.date {
        meta("Date", escape(date));
    }
    let _ = write!(
        out,
        "</dl>\n</div>\n<div class=\"status {}\"><strong>{}</strong>{} proved · {} failed · {} unknown · {} warning(s)</div>\n</header>\n",
        v.status,
        match v.status {
            "proved" => "ALL PROPERTIES PROVED",
            "failed" => "PROPERTIES FAILED",
            _ => "PROOFS INCOMPLETE",
        },
        v.proved,
        v.failed,
        v.unknown,
        v.warnings
    );
    out.push_str(
        "<p class=\"reading\">Computed from the decision table the runtime loads, after the \
verifier ran on it. A cell lists the rules that decide a call of the tool by the agent, in \
the order <code>decide</code> applies them: any matching <b>deny</b> wins, then every \
matching <b>escalate</b> (all its routes), then a matching <b>allow</b>; a call no rule \
matches is denied. Before any rule, every call passes the flow check (tiers and isolation \
keys) and the agent's limits. A condition that reads a value the call does not carry matches \
deny and escalate rules and not allow rules. Conditions are quoted from the policy source.</p>\n",
    );

    // Agents.
    let open: Vec<_> = m
        .properties
        .iter()
        .filter(|p| p.verdict == "failed" || p.verdict == "unknown")
        .collect();
    if !open.is_empty() {
        out.push_str(
            "<section class=\"open\">\n<h2>Not proved</h2>\n<p>Do not sign this matrix as proved:</p>\n<ul>\n",
        );
        for p in open {
            let _ = writeln!(
                out,
                "<li>{} {} ({}): {}</li>",
                verdict_html(p.verdict),
                escape(p.property),
                escape(&p.subject),
                p.detail.as_deref().map(escape).unwrap_or_default()
            );
        }
        out.push_str("</ul>\n</section>\n");
    }
    out.push_str("<section>\n<h2>Agents</h2>\n");
    if m.agents.is_empty() {
        out.push_str("<p>The policy declares no agent.</p>\n");
    }
    out.push_str("<div class=\"agents\">\n");
    for a in &m.agents {
        let _ = write!(
            out,
            "<div class=\"agent\">\n<h3><code>{}</code></h3>\n<dl>\n",
            escape(&a.name)
        );
        let opt = |v: &Option<String>| {
            v.as_deref()
                .map(escape)
                .unwrap_or_else(|| "<span class=\"note\">(none)</span>".into())
        };
        let mut row = |k: &str, v: String| {
            let _ = writeln!(out, "<dt>{k}</dt><dd>{v}</dd>");
        };
        row("Owner", opt(&a.owner));
        row("Purpose", opt(&a.purpose));
        row("Mode", escape(&mode_text(a.mode)));
        row(
            "Max tier",
            a.max_tier
                .as_deref()
                .map(|t| format!("<code>{}</code>", escape(t)))
                .unwrap_or_else(|| "<span class=\"note\">(no ceiling)</span>".into()),
        );
        row(
            "Isolation keys",
            inline_list(
                a.isolation_keys
                    .iter()
                    .map(|k| format!("<code>{}</code>", escape(k))),
            ),
        );
        row(
            "Tools granted",
            inline_list(
                a.granted
                    .iter()
                    .map(|t| format!("<code>{}</code>", escape(t))),
            ),
        );
        row("Limits", block_list(a.limits.iter().map(|l| escape(l))));
        row("Breakers", block_list(a.breakers.iter().map(|b| escape(b))));
        row(
            "Credentials",
            block_list(a.credentials.iter().map(|c| match &c.expires {
                Some(e) => format!(
                    "<code>{}</code> (expires after {})",
                    escape(&c.name),
                    escape(e)
                ),
                None => format!("<code>{}</code> (never expires)", escape(&c.name)),
            })),
        );
        if let Some(stage) = &a.stage {
            row("Stage", format!("<code>{}</code>", escape(stage)));
        }
        if !a.promotions.is_empty() {
            row(
                "Promotion",
                block_list(
                    a.promotions
                        .iter()
                        .map(|p| format!("<code>{}</code>", escape(p))),
                ),
            );
        }
        row(
            "Autonomy",
            block_list(a.autonomy.iter().map(|x| {
                format!(
                    "<code>{}</code> when <code>{}</code>, because “{}”",
                    escape(&x.tool),
                    escape(&x.when),
                    escape(&x.because)
                )
            })),
        );
        let proofs = m
            .properties
            .iter()
            .filter(|p| p.agent.as_deref() == Some(a.name.as_str()) && p.tool.is_none())
            .map(|p| {
                let subject = if p.subject == format!("agent {}", a.name) {
                    String::new()
                } else {
                    format!(" ({})", escape(&p.subject))
                };
                format!(
                    "{}{subject}: {}",
                    escape(p.property),
                    verdict_html(p.verdict)
                )
            });
        row("Proofs", block_list(proofs));
        out.push_str("</dl>\n</div>\n");
    }
    out.push_str("</div>\n</section>\n");

    // The matrix: tools as rows, so a long list of tools flows over pages.
    out.push_str(
        "<section>\n<h2>Matrix</h2>\n<table class=\"matrix\">\n<thead><tr><th>Tool</th><th>Effects</th><th>Reads</th><th>Writes</th>",
    );
    for a in &m.agents {
        let _ = write!(
            out,
            "<th class=\"agent-col\"><code>{}</code></th>",
            escape(&a.name)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for tool in &m.tools {
        let effects = if tool.effects.is_empty() {
            "<span class=\"note\">(none)</span>".to_string()
        } else {
            tool.effects
                .iter()
                .map(|e| {
                    if e == "irreversible" {
                        "<span class=\"irrev\">irreversible</span>".to_string()
                    } else {
                        escape(e)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let effects = if tool.untrusted_output {
            format!("{effects}<br>output <span class=\"untrusted\">untrusted</span>")
        } else {
            effects
        };
        let _ = write!(
            out,
            "<tr><td class=\"tool\"><code>{}</code></td><td>{effects}</td><td>{}</td><td>{}</td>",
            escape(&tool.name),
            data_html(&tool.reads),
            data_html(&tool.writes)
        );
        for a in &m.agents {
            match m
                .cells
                .iter()
                .find(|c| c.agent == a.name && c.tool == tool.name)
            {
                Some(cell) if cell.granted => {
                    let _ = write!(out, "<td>{}</td>", cell_html(cell));
                }
                Some(_) => out.push_str("<td class=\"none\">not granted</td>"),
                None => out.push_str("<td class=\"none\">-</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");

    if !m.routes.is_empty() {
        out.push_str(
            "<section>\n<h2>Escalation routes</h2>\n<table>\n<thead><tr><th>Route</th><th>Notifies</th><th>Timeout</th></tr></thead>\n<tbody>\n",
        );
        for r in &m.routes {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(&r.name),
                r.notify
                    .as_deref()
                    .map(escape)
                    .unwrap_or_else(|| "-".into()),
                r.timeout
                    .as_deref()
                    .map(escape)
                    .unwrap_or_else(|| "(no timeout)".into())
            );
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }

    if !m.thresholds.is_empty() {
        out.push_str(
            "<section>\n<h2>Thresholds</h2>\n<table class=\"narrow\">\n<thead><tr><th>Threshold</th><th>Value</th></tr></thead>\n<tbody>\n",
        );
        for t in &m.thresholds {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
                escape(&t.name),
                escape(&t.value)
            );
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }

    if !m.sets.is_empty() {
        out.push_str(
            "<section>\n<h2>Value sets</h2>\n<table>\n<thead><tr><th>Set</th><th>Members</th></tr></thead>\n<tbody>\n",
        );
        for set in &m.sets {
            let members = match &set.members {
                Some(members) if members.is_empty() => {
                    "<span class=\"note\">(empty)</span>".to_string()
                }
                Some(members) => members
                    .iter()
                    .map(|v| format!("<code>{}</code>", escape(v)))
                    .collect::<Vec<_>>()
                    .join(", "),
                None => "<span class=\"note\">(bound at deploy time)</span>".to_string(),
            };
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{members}</td></tr>",
                escape(&set.name)
            );
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }

    out.push_str("<section>\n<h2>Tier order</h2>\n");
    if m.tiers.is_empty() {
        out.push_str("<p>The policy declares no tier.</p>\n");
    } else {
        let _ = writeln!(
            out,
            "<p class=\"tiers\">Lowest first: {}</p>\n<p class=\"note\">{TIER_READING}</p>",
            m.tiers
                .iter()
                .map(|t| format!("<code>{}</code>", escape(t)))
                .collect::<Vec<_>>()
                .join(" &lt; ")
        );
    }
    out.push_str("</section>\n<section>\n<h2>Audit retention</h2>\n");
    if m.retention.is_empty() {
        let _ = writeln!(out, "<p>{}.</p>", escape(&capitalized(NO_RETENTION)));
    } else {
        out.push_str(
            "<table class=\"narrow\">\n<thead><tr><th>Records</th><th>Kept at least</th><th>Clause</th></tr></thead>\n<tbody>\n",
        );
        for r in m.retention.rows() {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                match &r.tier {
                    Some(tier) => format!(
                        "records of data at tier <code>{}</code> or higher",
                        escape(tier)
                    ),
                    None => escape(&r.records),
                },
                escape(&r.period),
                escape(&r.clause)
            );
        }
        let _ = writeln!(
            out,
            "</tbody>\n</table>\n<p class=\"note\">{RETENTION_READING}</p>"
        );
    }
    out.push_str("</section>\n");

    out.push_str("<section>\n<h2>Proofs</h2>\n");
    if m.properties.is_empty() {
        out.push_str("<p>No property applies (no agent is granted a tool, and no assert).</p>\n");
    } else {
        out.push_str(
            "<table>\n<thead><tr><th>Property</th><th>Subject</th><th>Verdict</th><th>How, or why not</th></tr></thead>\n<tbody>\n",
        );
        for p in &m.properties {
            let how = match &p.detail {
                Some(d) if p.verdict != "proved" => escape(d),
                _ => escape(&p.method),
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{how}</td></tr>",
                escape(p.property),
                escape(&p.subject),
                verdict_html(p.verdict)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");
    if !m.assumptions.is_empty() {
        out.push_str("<section>\n<h2>Assumptions the proofs rest on</h2>\n<ul>\n");
        for a in &m.assumptions {
            let _ = writeln!(out, "<li>{}</li>", escape(a));
        }
        out.push_str("</ul>\n</section>\n");
    }

    let _ = write!(
        out,
        "<section class=\"signoff\">\n<h2>Sign-off</h2>\n<p>By signing, each reviewer approves this \
matrix for policy <code>{}</code>{version}, source hash <code>{}</code>.</p>\n<table class=\"signoff\">\n\
<thead><tr><th>Role</th><th>Name</th><th>Signature</th><th>Date</th></tr></thead>\n<tbody>\n",
        escape(&p.name),
        escape(&p.source_hash)
    );
    for role in SIGN_OFF_ROLES {
        let _ = writeln!(out, "<tr><td>{role}</td><td></td><td></td><td></td></tr>");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    let _ = write!(
        out,
        "<footer>Generated by agentpolicy {} from the verified decision table of <code>{}</code>.</footer>\n</body>\n</html>\n",
        escape(&p.agentpolicy_version),
        escape(&p.name)
    );
    out
}

fn cell_html(cell: &CellInfo) -> String {
    let mut out = String::new();
    for r in &cell.rules {
        let class = if r.reachable {
            "rule"
        } else {
            "rule unreachable"
        };
        let _ = write!(
            out,
            "<span class=\"{class}\"><span class=\"k {}\">{}</span>",
            r.kind, r.kind
        );
        if let Some(route) = &r.route {
            let _ = write!(out, " to <code>{}</code>", escape(route));
        }
        if let Some(when) = &r.when {
            let _ = write!(out, " when <code>{}</code>", escape(when));
        }
        if !r.reachable {
            out.push_str(
                " <span class=\"note\">(never decides: a rule above always matches)</span>",
            );
        }
        out.push_str("</span>");
    }
    if cell.summary.last().map(String::as_str) == Some("otherwise deny (no rule)") {
        out.push_str("<span class=\"rule note\">otherwise deny (no rule)</span>");
    }
    if let Some(proofs) = cell.proofs
        && proofs != "proved"
    {
        let _ = write!(
            out,
            "<span class=\"rule\">proofs: {}</span>",
            verdict_html(proofs)
        );
    }
    out
}

fn data_html(list: &[DataInfo]) -> String {
    if list.is_empty() {
        return "<span class=\"note\">-</span>".to_string();
    }
    list.iter()
        .map(|d| {
            let keyed = if d.keyed.is_empty() {
                String::new()
            } else {
                format!(", keyed by {}", escape(&d.keyed.join(", ")))
            };
            let untrusted = if d.untrusted {
                ", <span class=\"untrusted\">untrusted</span>"
            } else {
                ""
            };
            format!(
                "<code>{}</code> <span class=\"note\">({}{keyed}{untrusted})</span>",
                escape(&d.name),
                escape(&d.tier)
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn verdict_html(verdict: &str) -> String {
    format!(
        "<span class=\"v {}\">{}</span>",
        escape(verdict),
        escape(&status_word(verdict))
    )
}

fn inline_list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "<span class=\"note\">(none)</span>".to_string()
    } else {
        items.join(", ")
    }
}

fn block_list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "<span class=\"note\">(none)</span>".to_string()
    } else {
        format!("<ul><li>{}</li></ul>", items.join("</li><li>"))
    }
}

/// Text as HTML: the five characters with a meaning in markup become entities.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
