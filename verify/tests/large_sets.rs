//! Does-it-finish test for a large literal set (issue 20, "No cliffs"): a policy whose
//! only text tests are membership in a set of 100,000 members (in a rule and in an
//! assert's `when`) is verified, and every property is proved. Before sets written in
//! the policy were read as intervals of interned ids, 3,000 members already ended
//! Unknown. Not a timing assertion: the test only has to finish (the CI's per-test
//! timeout is the bound); bench/cliffs.sh measures the time.

use agentpolicy::codegen;
use agentpolicy::db::Database;
use agentpolicy::diagnostics::FileId;
use agentpolicy_verify::{self as verify, Config, Verdict};

fn policy(members: usize) -> String {
    let list: Vec<String> = (1..=members)
        .map(|i| format!("\"payee-{i:05}@vendors.example\""))
        .collect();
    format!(
        "policy big_set version \"1\"\n\
         set payees = [{}]\n\
         tool pay(to: text, amount: money) {{ effect financial }}\n\
         agent clerk {{\n  owner \"ap@example.com\"\n\
         \x20 allow pay when to in payees and amount < $1,000\n\
         \x20 deny pay when amount >= $1,000\n}}\n\
         assert never clerk calls pay when amount >= $1,000 and to in payees\n\
         assert never clerk calls pay when not (to in payees)\n",
        list.join(", ")
    )
}

#[test]
fn a_set_of_100000_members_is_proved() {
    let text = policy(100_000);
    let mut db = Database::default();
    let loaded = db.load(vec![("big_set.agentpolicy".into(), text)]);
    let analysis = db.analysis(loaded);
    assert!(!analysis.has_errors(), "the policy compiles");
    let mut sources = Vec::new();
    while let Some((p, t)) = db.file(loaded, FileId(sources.len() as u32)) {
        sources.push((p.to_string(), t.to_string()));
    }
    let table = codegen::build_table(&analysis.model, &sources).expect("table");
    let report = verify::verify(&analysis.model, &table, &Config::default());
    assert!(
        report.results.len() >= 3,
        "{} results",
        report.results.len()
    );
    for r in &report.results {
        assert!(
            matches!(r.verdict, Verdict::Proved),
            "{:?} {}: {:?}",
            r.property,
            r.subject,
            r.verdict
        );
    }
}
