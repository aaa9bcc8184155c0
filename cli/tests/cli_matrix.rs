//! End-to-end tests of `agentpolicy matrix`: the real binary on the examples in every
//! text format (insta snapshots, content hashes redacted so a table-format bump does not
//! churn them; the hashes are checked against `build` instead), the JSON's completeness,
//! failed proofs, errors, escaping and `--output`.

#![expect(clippy::expect_used, reason = "test helpers fail loudly")]

mod support;

use support::{agentpolicy, stdout, temp_dir};

use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `sha256:` and 64 hex digits become `sha256:[hash]`.
fn redact_hashes(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("sha256:") {
        out.push_str(&rest[..i + 7]);
        let after = &rest[i + 7..];
        let hex = after
            .chars()
            .take(64)
            .take_while(char::is_ascii_hexdigit)
            .count();
        if hex == 64 {
            out.push_str("[hash]");
            rest = &after[64..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The source hash `build` prints for a policy.
fn build_hash(path: &str) -> String {
    let o = agentpolicy(&["build", path, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stderr(&o)
        .lines()
        .find_map(|l| l.strip_prefix("source hash: "))
        .expect("build prints the source hash")
        .to_string()
}

fn matrix(path: &str, format: &str) -> String {
    let o = agentpolicy(&["matrix", path, "--format", format]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "a proved policy prints nothing on stderr");
    stdout(&o)
}

#[test]
fn examples_in_every_text_format() {
    for (name, path) in [
        ("law_firm", "examples/law_firm"),
        ("support_agent", "examples/support_agent"),
    ] {
        let hash = build_hash(path);
        let md = matrix(path, "md");
        assert!(md.contains(&format!("| Source hash | `{hash}` |")), "{md}");
        // Markdown is the default format.
        assert_eq!(md, matrix(path, "md"), "the output is deterministic");
        let o = agentpolicy(&["matrix", path]);
        assert_eq!(stdout(&o), md, "md is the default");
        insta::assert_snapshot!(format!("{name}_md"), redact_hashes(&md));
        let csv = matrix(path, "csv");
        insta::assert_snapshot!(format!("{name}_csv"), redact_hashes(&csv));
        let json = matrix(path, "json");
        insta::assert_snapshot!(format!("{name}_json"), redact_hashes(&json));
    }
}

#[test]
fn json_has_every_agent_tool_pair_and_the_build_hash() {
    let path = "examples/law_firm";
    let json: serde_json::Value =
        serde_json::from_str(&matrix(path, "json")).expect("the JSON parses");
    assert_eq!(json["schema"], "agentpolicy-matrix/1");
    assert_eq!(json["policy"]["source_hash"], build_hash(path).as_str());
    let table_o = agentpolicy(&["build", path, "--json"]);
    let table: serde_json::Value = serde_json::from_str(&stdout(&table_o)).expect("table json");
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x["name"].as_str().expect("name").to_string())
            .collect()
    };
    let agents = names(&table["agents"]);
    let tools = names(&table["tools"]);
    assert_eq!(names(&json["agents"]), agents);
    assert_eq!(names(&json["tools"]), tools);
    let cells = json["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), agents.len() * tools.len());
    for agent in &agents {
        for tool in &tools {
            let matching = cells
                .iter()
                .filter(|c| c["agent"] == agent.as_str() && c["tool"] == tool.as_str())
                .count();
            assert_eq!(matching, 1, "{agent} x {tool}");
        }
    }
    // A cell's granted flag is the table's.
    let table_cells = table["cells"].as_array().expect("table cells");
    for (mine, theirs) in cells.iter().zip(table_cells) {
        assert_eq!(mine["granted"], theirs["granted"]);
    }
    // The billing agent's invoice cell, in decide's order, conditions as written.
    let invoice = cells
        .iter()
        .find(|c| c["agent"] == "billing" && c["tool"] == "send_invoice")
        .expect("cell");
    assert_eq!(
        invoice["summary"],
        serde_json::json!([
            "escalate to supervising_partner when amount >= partner_approval_amount",
            "escalate to human_review when confidence < confidence_floor",
            "allow when amount < partner_approval_amount",
            "otherwise deny (no rule)"
        ])
    );
    assert_eq!(json["verification"]["status"], "proved");
    assert_eq!(json["policy"]["date"], serde_json::Value::Null);
}

#[test]
fn failed_proofs_are_shown_and_exit_1() {
    let path = "examples/law_firm/broken";
    let o = agentpolicy(&["matrix", path, "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error: 1 property failed; the matrix shows which"),
        "{}",
        stderr(&o)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("still written");
    assert_eq!(json["verification"]["status"], "failed");
    assert_eq!(json["verification"]["failed"], 1);
    let failed: Vec<&serde_json::Value> = json["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .filter(|p| p["verdict"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["property"], "irreversible => escalation");
    assert_eq!(failed[0]["agent"], "research");
    assert_eq!(failed[0]["tool"], "file_with_court");
    let detail = failed[0]["detail"]
        .as_str()
        .expect("a one-line counterexample");
    assert!(
        detail.contains("research calls file_with_court("),
        "{detail}"
    );
    assert!(!detail.contains('\n'));
    let o = agentpolicy(&["matrix", path]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("| Verification | **FAILED**: "),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("proofs: **FAILED**"));
    assert!(
        stdout(&o).contains(
            "## Not proved\n\nDo not sign this matrix as proved:\n\n- **FAILED** irreversible =\\> escalation (research calls file_with_court): "
        ),
        "{}",
        stdout(&o)
    );
}

#[test]
fn rules_that_never_decide_are_marked_like_the_verifier_finds_them() {
    let dir = temp_dir("shadowed");
    let file = dir.join("p.agentpolicy");
    std::fs::write(
        &file,
        r#"policy shadowed
tool t(amount: money) { effect read }
escalation ops { notify "q" timeout 1h then deny }
agent a {
  owner "o@example.com"
  escalate t to ops
  allow t when amount < $5
  escalate t to ops when amount > $100
}
"#,
    )
    .expect("write");
    let file = file.to_str().expect("utf-8 path");
    // A hygiene warning does not fail the matrix, as it does not fail `check`.
    let json: serde_json::Value = serde_json::from_str(&matrix(file, "json")).expect("json");
    let cell = &json["cells"][0];
    assert_eq!(
        cell["summary"],
        serde_json::json!([
            "escalate to ops",
            "escalate to ops when amount > $100",
            "allow when amount < $5 (never decides: a rule above always matches)"
        ])
    );
    let reachable: Vec<bool> = cell["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["reachable"].as_bool().expect("bool"))
        .collect();
    assert_eq!(reachable, [true, true, false]);
    // The verifier agrees: its hygiene warning is about that rule, in that cell.
    assert_eq!(cell["proofs"], "warning");
    assert_eq!(json["verification"]["warnings"], 1);
    let warning = json["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .find(|p| p["verdict"] == "warning")
        .expect("a hygiene warning");
    assert_eq!(warning["subject"], "rule a/allow/t#1");
    assert_eq!(
        (&warning["agent"], &warning["tool"]),
        (&"a".into(), &"t".into())
    );
}

#[test]
fn unknown_is_never_shown_as_proved() {
    // Z3's deterministic resource limit, set so low that most queries give up.
    let args = [
        "matrix",
        "examples/law_firm",
        "--rlimit",
        "1",
        "--format",
        "json",
    ];
    let o = agentpolicy(&args);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("properties are unknown; the matrix shows which"),
        "{}",
        stderr(&o)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("still written");
    assert_eq!(json["verification"]["status"], "unknown");
    let unknown = json["verification"]["unknown"].as_u64().expect("count");
    assert!(unknown > 0);
    let listed = json["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .filter(|p| p["verdict"] == "unknown" && p["detail"].is_string())
        .count();
    assert_eq!(listed as u64, unknown);

    let o = agentpolicy(&[
        "matrix",
        "examples/law_firm",
        "--rlimit",
        "1",
        "--allow-unknown",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("| Verification | **UNKNOWN**: "),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("| isolation | agent intake | **UNKNOWN** |"));
}

#[test]
fn bad_paths_and_policies_with_errors() {
    let o = agentpolicy(&["matrix", "examples/no_such_policy"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: cannot read `examples/no_such_policy`: no such file or directory\n"
    );
    assert_eq!(stdout(&o), "");

    let dir = temp_dir("errors");
    let file = dir.join("bad.agentpolicy");
    std::fs::write(&file, "policy p\nagent a {\n  allow no_such_tool\n}\n").expect("write");
    let file = file.to_str().expect("utf-8 path");
    let o = agentpolicy(&["matrix", file, "--format", "html"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "", "no matrix for a policy with errors");
    let err = stderr(&o);
    assert!(err.contains("no_such_tool"), "{err}");
    assert!(err.contains(&format!("{file}:3:")), "{err}");
    assert!(err.ends_with(&format!(
        "error: {file} has errors; no matrix was written\n"
    )));

    let o = agentpolicy(&["matrix", "examples/law_firm", "--format", "pdf"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid value 'pdf'"), "{}", stderr(&o));

    let o = agentpolicy(&["matrix", "examples/law_firm", "--date", "25/11/2026"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("write it as YYYY-MM-DD"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn text_from_the_policy_is_escaped_in_every_format() {
    let dir = temp_dir("escaping");
    let file = dir.join("p.agentpolicy");
    std::fs::write(
        &file,
        r#"policy escaping version "1 <b>"
tool send(to: text) { effect external }
escalation ops { notify "queue:<ops>" timeout 1h then deny }
agent a {
  owner "x@example.com"
  purpose "<script>alert('pwned')</script> & | pipes *stars*"
  escalate send to ops when to == "a,\"b\""
  allow send when to == "x"
}
"#,
    )
    .expect("write");
    let file = file.to_str().expect("utf-8 path");

    let html = matrix(file, "html");
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("1 <b>"));
    assert!(html.contains("version 1 &lt;b&gt;"));
    assert!(
        html.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; | pipes *stars*")
    );
    assert!(html.contains("queue:&lt;ops&gt;"));
    assert!(
        html.contains("<code>to == &quot;a,\\&quot;b\\&quot;&quot;</code>"),
        "{html}"
    );

    let md = matrix(file, "md");
    assert!(!md.contains("<script>"), "{md}");
    assert!(
        md.contains(r"\<script\>alert('pwned')\</script\> \& \| pipes \*stars\*"),
        "{md}"
    );

    let csv = matrix(file, "csv");
    // RFC 4180: the field holding a comma and quotes is quoted, its quotes doubled.
    assert!(
        csv.contains(r#","escalate to ops when to == ""a,\""b\""""; allow when to == ""x""; otherwise deny (no rule)","#),
        "{csv}"
    );
    assert!(csv.ends_with("\r\n"));

    let json: serde_json::Value = serde_json::from_str(&matrix(file, "json")).expect("json");
    assert_eq!(
        json["agents"][0]["purpose"],
        "<script>alert('pwned')</script> & | pipes *stars*"
    );
}

#[test]
fn output_writes_the_file_and_date_is_printed_only_when_given() {
    let dir = temp_dir("output");
    let out = dir.join("matrix.html");
    let out_s = out.to_str().expect("utf-8 path");
    let o = agentpolicy(&[
        "matrix",
        "examples/law_firm",
        "--format",
        "html",
        "--output",
        out_s,
        "--date",
        "2026-11-25",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "wrote {out_s}: policy `hartwell_pike`, 3 agents x 17 tools; 31 proved, 0 failed, 0 unknown\n"
        )
    );
    let html = std::fs::read_to_string(&out).expect("written");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<dt>Date</dt><dd>2026-11-25</dd>"));
    assert!(!matrix("examples/law_firm", "html").contains("<dt>Date</dt>"));

    let o = agentpolicy(&[
        "matrix",
        "examples/law_firm",
        "-o",
        dir.join("no_such_dir/m.md").to_str().expect("utf-8 path"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
}

/// A route that allows on timeout is not a human: the matrix says an unanswered call runs
/// without one, and shows what the proofs assume, so the reviewer signs knowing both.
#[test]
fn routes_that_allow_on_timeout_and_assumptions_are_shown() {
    let o = agentpolicy(&[
        "matrix",
        "tests/fixtures/verify/escalation_timeout_allows.agentpolicy",
    ]);
    let md = stdout(&o);
    assert!(
        md.contains("then allow (an unanswered call runs without a human)"),
        "{md}"
    );
    let o = agentpolicy(&["matrix", "examples/law_firm"]);
    assert!(
        stdout(&o).contains("## Assumptions the proofs rest on"),
        "{}",
        stdout(&o)
    );
    let o = agentpolicy(&["matrix", "examples/law_firm", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("matrix JSON");
    let assumptions = json["assumptions"].as_array().expect("assumptions");
    assert!(
        assumptions
            .iter()
            .any(|a| a.as_str().is_some_and(|a| a.contains("from SINK"))),
        "{assumptions:?}"
    );
}

/// RFC 4180 records: fields split at commas outside quotes, `""` inside quotes a quote,
/// records ended by CRLF outside quotes.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, _) => field.push(ch),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, _) => field.push(ch),
        }
    }
    records
}

/// What a signer needs besides the grid (issue 21): the tier order, the retention
/// schedule, the proofs' assumptions and every assert quoted whole, in all four formats.
#[test]
fn tier_order_retention_assumptions_and_asserts_in_every_format() {
    let path = "examples/payments_desk";
    let tiers = [
        "public",
        "internal",
        "confidential",
        "npi",
        "cardholder_data",
    ];
    let assert_text = "never payments_agent calls send_wire when amount > agent_payment_cap";
    let named_access = "a call of a tool that reads keyed data names one of its keyed resources";

    let md = matrix(path, "md");
    let order = tiers.map(|t| format!("`{t}`")).join(" < ");
    assert!(
        md.contains(&format!("## Tier order\n\nLowest first: {order}.")),
        "{md}"
    );
    assert!(
        md.contains("| every record | 5y | `retain audit 5y` |"),
        "{md}"
    );
    assert!(
        md.contains("| records of data at tier `npi` or higher | 7y | `retain audit for npi 7y` |"),
        "{md}"
    );
    assert!(md.contains("## Assumptions the proofs rest on"), "{md}");
    assert!(md.contains(&format!("- {named_access}")), "{md}");
    assert!(
        md.contains("| assert | never payments_agent calls send_wire when amount \\> agent_payment_cap | **proved** |"),
        "{md}"
    );

    let html = matrix(path, "html");
    let order = tiers.map(|t| format!("<code>{t}</code>")).join(" &lt; ");
    assert!(html.contains(&format!("Lowest first: {order}")), "{html}");
    assert!(
        html.contains("<td>records of data at tier <code>npi</code> or higher</td><td>7y</td><td><code>retain audit for npi 7y</code></td>"),
        "{html}"
    );
    assert!(html.contains("<td>every record</td><td>5y</td>"), "{html}");
    assert!(html.contains(&format!("<li>{named_access}")), "{html}");
    assert!(
        html.contains(
            "<td>never payments_agent calls send_wire when amount &gt; agent_payment_cap</td>"
        ),
        "{html}"
    );

    let csv = csv_records(&matrix(path, "csv"));
    let header = &csv[0];
    let column = |name: &str| {
        header
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    assert_eq!(
        &header[header.len() - 4..],
        ["tier_order", "retention", "assumptions", "asserts"],
        "new columns go at the end"
    );
    for row in &csv[1..] {
        assert_eq!(row.len(), header.len(), "{row:?}");
        assert_eq!(row[column("tier_order")], tiers.join(" < "));
        assert_eq!(
            row[column("retention")],
            "retain audit 5y; retain audit for npi 7y"
        );
        let assumptions: Vec<&str> = row[column("assumptions")].lines().collect();
        assert_eq!(assumptions.len(), 3, "{assumptions:?}");
        assert!(assumptions[0].starts_with(named_access), "{assumptions:?}");
        let asserts: Vec<&str> = row[column("asserts")].lines().collect();
        assert!(
            asserts.contains(&format!("{assert_text}: proved").as_str()),
            "{asserts:?}"
        );
        assert_eq!(asserts.len(), 5, "every assert of the policy: {asserts:?}");
    }

    let json: serde_json::Value =
        serde_json::from_str(&matrix(path, "json")).expect("the JSON parses");
    assert_eq!(json["tiers"], serde_json::json!(tiers));
    assert_eq!(
        json["retention"],
        serde_json::json!({"default": "5y", "tiers": [{"tier": "npi", "period": "7y"}]})
    );
    assert!(
        json["assumptions"][0]
            .as_str()
            .is_some_and(|a| a.starts_with(named_access)),
        "{}",
        json["assumptions"]
    );
    assert!(
        json["properties"]
            .as_array()
            .expect("properties")
            .iter()
            .any(|p| p["property"] == "assert" && p["subject"] == assert_text),
        "{}",
        json["properties"]
    );

    // A policy without `retain` says what that means rather than leaving it out.
    let md = matrix("examples/law_firm", "md");
    assert!(
        md.contains(
            "## Audit retention\n\nNo retention schedule: every audit record is kept for ever"
        ),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&matrix("examples/law_firm", "json")).expect("the JSON parses");
    assert_eq!(
        json["retention"],
        serde_json::json!({"default": null, "tiers": []})
    );
}

/// docs/matrix.md lists the CSV columns in the order the header row has them.
#[test]
fn csv_columns_are_documented_in_order() {
    let docs = std::fs::read_to_string(support::repo_root().join("docs/matrix.md"))
        .expect("docs/matrix.md");
    let section = docs
        .split("### CSV columns")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("a CSV columns section");
    let documented: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let o = agentpolicy(&["matrix", "examples/law_firm", "--format", "csv"]);
    let header = csv_records(&stdout(&o))
        .into_iter()
        .next()
        .expect("a header");
    assert_eq!(documented, header);
}
