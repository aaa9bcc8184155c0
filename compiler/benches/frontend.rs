//! Front-end speed: parse and analyse a generated policy of about 5,000 lines (the size
//! the editor must re-check on every keystroke). Run with
//! `cargo bench -p agentpolicy --bench frontend`.

use criterion::{Criterion, criterion_group, criterion_main};

/// A realistic policy of roughly `lines` lines: tools with typed parameters, agents with
/// conditional rules, thresholds, routes and tests.
fn generate(lines: usize) -> String {
    let mut out = String::from(
        "policy generated version \"1\"\n\ntiers public < internal < confidential < restricted\nisolate matter\n\n",
    );
    out.push_str(
        "resource docs { tier confidential keyed matter }\nsink outbox { clearance internal }\n\n",
    );
    out.push_str("escalation review {\n  notify \"queue:review\"\n  timeout 15m then deny\n}\n\n");
    let mut i = 0;
    while out.lines().count() < lines {
        out.push_str(&format!(
            "threshold limit_{i} = ${i},000\n\ntool pay_{i}(amount: money, to: text, note: text?) {{\n  effect financial, irreversible\n  writes outbox\n}}\n\ntool read_{i}(query: text) {{ effect read reads docs }}\n\n\
agent agent_{i} {{\n  owner \"team{i}@example.com\"\n  purpose \"generated agent {i}\"\n  max tier confidential\n  allow read_{i}\n  escalate pay_{i} to review when amount > $100 and amount <= limit_{i}\n  deny pay_{i} when amount > limit_{i} or to == \"blocked\"\n  escalate * to review when confidence < 0.8\n  limit 100 calls per task, 20 calls per minute\n}}\n\n\
test \"agent {i} escalates payments\" {{\n  agent_{i} calls pay_{i}(amount: $500, to: \"vendor\")\n  expect escalate to review\n}}\n\n"
        ));
        i += 1;
    }
    out
}

fn bench_frontend(c: &mut Criterion) {
    let text = generate(5_000);
    let lines = text.lines().count();
    c.bench_function(&format!("check front end, {lines} lines"), |b| {
        b.iter(|| {
            let mut db = agentpolicy::db::Database::default();
            let loaded = db.load(vec![("generated.agentpolicy".to_string(), text.clone())]);
            let analysis = db.analysis(loaded);
            assert!(!analysis.has_errors(), "{:?}", analysis.diagnostics.first());
            analysis
        })
    });
    c.bench_function(&format!("parse only, {lines} lines"), |b| {
        b.iter(|| agentpolicy::syntax::parse(agentpolicy::diagnostics::FileId(0), &text))
    });
}

criterion_group!(benches, bench_frontend);
criterion_main!(benches);
