//! Latency from a one-line `didChange` to the diagnostics the server would publish, on
//! a generated 5,000-line policy: the same calls the server makes (`PolicyState::change`,
//! then `PolicyState::analysis` and `diagnostics::collect`), without the pipe and the
//! debounce (20 ms by default). Two layouts: one 5,000-line file (the whole file
//! re-parses), and ten files of 500 lines (only the edited file re-parses). Target: under
//! 100 ms. Run: `cargo bench -p agentpolicy-lsp --bench diagnostics_latency`.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark whose setup fails must stop loudly"
)]

use std::fmt::Write as _;
use std::hint::black_box;

use agentpolicy_lsp::diagnostics;
use agentpolicy_lsp::state::{PolicyState, uri};
use criterion::{Criterion, criterion_group, criterion_main};
use tower_lsp_server::ls_types::{Position, Range};

/// Declarations: tools, thresholds and routes, then agents of 20 lines each, until the
/// policy has `lines` lines; split over `files` files.
fn generate(lines: usize, files: usize) -> Vec<String> {
    let mut head = String::from("policy bench version \"1\"\n\nuse std.common\n\n");
    for i in 0..150 {
        let _ = writeln!(
            head,
            "tool tool_{i}(amount: money, note: text?) {{ effect financial, irreversible }}"
        );
    }
    for i in 0..100 {
        let _ = writeln!(head, "threshold limit_{i} = ${},000", i + 1);
    }
    for i in 0..50 {
        let _ = writeln!(
            head,
            "escalation route_{i} {{ notify \"queue:{i}\"  timeout 15m then deny }}"
        );
    }
    let mut agents = Vec::new();
    let mut count = head.lines().count();
    let mut a = 0;
    while count < lines {
        let mut agent = format!(
            "\n// agent {a}\nagent agent_{a} {{\n  owner \"team{a}@example.com\"\n  max tier internal\n"
        );
        for r in 0..7 {
            let t = (a * 7 + r) % 150;
            let _ = writeln!(
                agent,
                "  escalate tool_{t} to route_{} when amount > $100",
                (a + r) % 50
            );
            let _ = writeln!(
                agent,
                "  deny tool_{t} when amount > limit_{}",
                (a + r) % 100
            );
        }
        agent.push_str("  limit 100 calls per task, 20 calls per minute\n}\n");
        count += agent.lines().count();
        agents.push(agent);
        a += 1;
    }
    let mut out = vec![head];
    out.extend((1..files).map(|_| String::new()));
    let per_file = agents.len().div_ceil(files);
    for (i, agent) in agents.into_iter().enumerate() {
        let f = (i / per_file.max(1)).min(files - 1);
        out[f].push_str(&agent);
    }
    out
}

fn setup(
    files: usize,
) -> (
    PolicyState,
    Vec<String>,
    Vec<tower_lsp_server::ls_types::Uri>,
) {
    let texts = generate(5_000, files);
    let total: usize = texts.iter().map(|t| t.lines().count()).sum();
    assert!(total >= 5_000, "generated only {total} lines");
    let (mut state, _) = PolicyState::new(None);
    let mut uris = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let u = uri(&format!("file:///bench/p{i}.agentpolicy")).expect("uri");
        state.open(u.clone(), 1, text.clone()).expect("open");
        uris.push(u);
    }
    let published = diagnostics::collect(&state, &state.analysis(), None);
    let count: usize = published.iter().map(|f| f.diagnostics.len()).sum();
    if count != 0 {
        panic!("the generated policy should be clean: {published:#?}");
    }
    (state, texts, uris)
}

/// Changes `$100` to `$101` and back on the first rule line of the last file, so each
/// edit really changes the tree.
fn bench_layout(c: &mut Criterion, name: &str, files: usize) {
    let (mut state, texts, uris) = setup(files);
    let target = uris.len() - 1;
    let text = &texts[target];
    let line = text
        .lines()
        .position(|l| l.contains("when amount > $100"))
        .expect("a rule line") as u32;
    let col = text
        .lines()
        .nth(line as usize)
        .and_then(|l| l.find("$100"))
        .expect("amount") as u32;
    let range = Range::new(Position::new(line, col + 3), Position::new(line, col + 4));
    let mut version = 1;
    c.bench_function(name, |b| {
        b.iter(|| {
            version += 1;
            let digit = if version % 2 == 0 { "1" } else { "0" };
            state
                .change(
                    &uris[target],
                    version,
                    vec![(Some(range), digit.to_string())],
                )
                .expect("change");
            let analysis = state.analysis();
            black_box(diagnostics::collect(&state, &analysis, None))
        })
    });
}

fn latency(c: &mut Criterion) {
    bench_layout(c, "didChange_to_diagnostics/one_file_5000_lines", 1);
    bench_layout(c, "didChange_to_diagnostics/ten_files_5000_lines", 10);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = latency
}
criterion_main!(benches);
