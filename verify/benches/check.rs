//! `check` speed: parse, analyse, compile and prove every property of generated policies
//! of 100 and 1,000 rules (target: under 5 s for 1,000 rules on 2 cores). Run with
//! `cargo bench -p agentpolicy-verify --bench check`; figures go in docs/performance.md.

use agentpolicy::codegen;
use agentpolicy::db::Database;
use agentpolicy::diagnostics::FileId;
use agentpolicy_verify::{self as verify, Config};
use criterion::{Criterion, criterion_group, criterion_main};

/// A policy with `rules` rules: agents of ten rules each over a shared set of tools that
/// read matter-keyed documents, write notes and pay money, with thresholds, confidence
/// floors, autonomy exemptions and asserts, every property provable.
fn generate(rules: usize) -> String {
    let agents = rules.div_ceil(10);
    let tools = agents.max(3);
    let mut out = String::from(
        "policy generated version \"1\"\n\ntiers public < internal < confidential < privileged\nisolate matter\n\nresource kb { tier public }\nsink outbox { clearance internal }\n\nescalation review {\n  notify \"queue:review\"\n  timeout 15m then deny\n}\n\n",
    );
    for d in 0..10 {
        out.push_str(&format!(
            "resource docs_{d} {{ tier confidential keyed matter }}\nsink notes_{d} {{ clearance confidential keyed matter }}\n"
        ));
    }
    for t in 0..tools {
        let d = t % 10;
        out.push_str(&format!(
            "tool pay_{t}(amount: money, to: text, note: text?) {{ effect financial, irreversible writes outbox }}\n\
tool read_{t}(query: text) {{ effect read reads docs_{d} }}\n\
tool note_{t}(text: text) {{ effect write reads docs_{d} writes notes_{d} }}\n\
tool kb_{t}(query: text) {{ effect read reads kb }}\n"
        ));
    }
    let mut written = 0;
    for i in 0..agents {
        let t = i % tools;
        let u = (i + 1) % tools;
        out.push_str(&format!(
            "\nagent agent_{i} {{\n  owner \"team{i}@example.com\"\n  max tier confidential\n\
  allow read_{t}\n\
  allow kb_{u}\n\
  allow note_{t} when confidence >= 0.9\n\
  escalate note_{t} to review when confidence < 0.9\n\
  allow pay_{t} when amount <= $100\n\
  escalate pay_{t} to review when amount > $100\n\
  deny pay_{t} when amount > ${}0,000 or to == \"blocked\"\n\
  deny read_{t} when query == \"other matters\"\n\
  escalate * to review when confidence < 0.5\n\
  deny kb_{u} when confidence < 0.1\n\
  autonomy pay_{t} when amount <= $100 because \"petty cash\"\n\
  limit 100 calls per task\n}}\n",
            1 + i % 9
        ));
        written += 10;
        if written >= rules {
            break;
        }
    }
    out.push_str("\nassert never agent_0 calls pay_0 when amount > $100,000\nassert agent_0 never reads privileged\nassert no flow from confidential to outbox\n");
    out
}

/// The whole of `check`: front end, code generation, every proof.
fn check(text: &str) -> verify::Report {
    let mut db = Database::default();
    let loaded = db.load(vec![(
        "generated.agentpolicy".to_string(),
        text.to_string(),
    )]);
    let analysis = db.analysis(loaded);
    assert!(!analysis.has_errors(), "{:?}", analysis.diagnostics.first());
    let mut sources = Vec::new();
    while let Some((p, t)) = db.file(loaded, FileId(sources.len() as u32)) {
        sources.push((p.to_string(), t.to_string()));
    }
    let table = codegen::build_table(&analysis.model, &sources);
    assert!(
        table.is_ok(),
        "{:?}",
        table.as_ref().err().and_then(|d| d.first())
    );
    let Ok(table) = table else {
        return verify::Report::default();
    };
    let report = verify::verify(&analysis.model, &table, &Config::default());
    assert!(report.all_proved(), "{:?}", report.diagnostics().first());
    report
}

fn bench_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    group.sample_size(10);
    for rules in [100, 1_000] {
        let text = generate(rules);
        let results = check(&text).results.len();
        group.bench_function(format!("{rules} rules ({results} property results)"), |b| {
            b.iter(|| check(&text))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_check);
criterion_main!(benches);
