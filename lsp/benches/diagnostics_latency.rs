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

use std::hint::black_box;

use agentpolicy_lsp::diagnostics;
use agentpolicy_lsp::state::{PolicyState, uri};
use criterion::{Criterion, criterion_group, criterion_main};
use tower_lsp_server::ls_types::{Position, Range};

mod generated;
use generated::{edit_position, generate};

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
    let (line, col) = edit_position(&texts[target]);
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
