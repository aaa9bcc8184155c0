//! Many rules on one (agent, tool) cell (issue 20, "No cliffs"): hygiene in a cell of
//! at least 64 entries first looks for a witness request per rule and runs it through
//! the runtime's `decide`; the findings must be exactly the rules that never decide (a
//! rule shadowed by an earlier one, a contradiction, an allow under a deny), as in a
//! small cell, and every other property is proved. Also a does-it-finish test: not a
//! timing assertion (bench/cliffs.sh measures the time).

use agentpolicy::codegen;
use agentpolicy::db::Database;
use agentpolicy::diagnostics::FileId;
use agentpolicy_verify::{self as verify, Config, Property, Subject, Verdict};

/// `n` live rules on `clerk calls pay`, plus three that never decide.
fn policy(n: usize) -> String {
    let mut p = String::from(
        "policy big_cell version \"1\"\n\
         escalation finance { notify \"f@example.com\" timeout 1h then deny }\n\
         tool pay(to: text, amount: money) { effect financial }\n\
         agent clerk {\n  owner \"ap@example.com\"\n  deny pay when amount > $10,000\n",
    );
    for i in 1..=n {
        let limit = (i % 50 + 1) * 100;
        p.push_str(&format!(
            "  allow pay when to == \"payee-{i:05}\" and amount < ${limit}\n"
        ));
        if i % 10 == 0 {
            p.push_str(&format!(
                "  escalate pay to finance when to == \"payee-{i:05}\" and amount > ${}\n",
                limit / 5
            ));
        }
        if i % 7 == 0 {
            p.push_str(&format!(
                "  deny pay when to == \"payee-{i:05}\" and confidence < 0.{}\n",
                i % 9 + 1
            ));
        }
    }
    // Shadowed by the allow of payee-00003 (same payee, a smaller limit).
    p.push_str("  allow pay when to == \"payee-00003\" and amount < $5\n");
    // Never matches.
    p.push_str("  allow pay when to == \"payee-00004\" and amount < $1 and amount > $2\n");
    // Under the deny above $10,000.
    p.push_str("  allow pay when amount > $20,000\n");
    p.push_str("}\nassert never clerk calls pay when amount > $10,000\n");
    p
}

#[test]
fn hygiene_in_a_cell_of_many_rules_finds_exactly_the_dead_ones() {
    let n = 150;
    let text = policy(n);
    let mut db = Database::default();
    let loaded = db.load(vec![("big_cell.agentpolicy".into(), text)]);
    let analysis = db.analysis(loaded);
    assert!(!analysis.has_errors(), "the policy compiles");
    let mut sources = Vec::new();
    while let Some((p, t)) = db.file(loaded, FileId(sources.len() as u32)) {
        sources.push((p.to_string(), t.to_string()));
    }
    let Ok(table) = codegen::build_table(&analysis.model, &sources) else {
        panic!("the table builds");
    };
    let report = verify::verify(&analysis.model, &table, &Config::default());
    let mut findings: Vec<String> = Vec::new();
    for r in &report.results {
        match (&r.verdict, &r.subject) {
            (Verdict::Finding, Subject::Rule { id, .. }) if r.property == Property::Hygiene => {
                findings.push(id.clone())
            }
            (Verdict::Proved, _) => {}
            (v, s) => panic!("{:?} {s}: {v:?}", r.property),
        }
    }
    findings.sort();
    // Rule ids number the rules of one kind on one tool from 1, in source order.
    let allows = n + 3;
    let mut expected: Vec<String> = (allows - 2..=allows)
        .map(|k| format!("clerk/allow/pay#{k}"))
        .collect();
    expected.sort();
    assert_eq!(findings, expected);
}
