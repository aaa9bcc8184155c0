//! End-to-end latency: the real `agentpolicy-lsp` binary, driven over stdio like an
//! editor, on a generated 5,000-line policy in one file. Each iteration sends one
//! `didChange` (a one-character edit) and waits for the `publishDiagnostics` of that
//! version, so the figure includes the pipe, JSON, the debounce logic and the analysis.
//! Run: `cargo bench -p agentpolicy-lsp --bench end_to_end`.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "the benchmark stops loudly when the server misbehaves"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

mod generated;
#[path = "../tests/support/mod.rs"]
#[expect(dead_code, reason = "the benchmark uses part of the test client")]
mod support;

use generated::{edit_position, generate};
use support::{Client, file_uri, temp_dir};

fn end_to_end(c: &mut Criterion) {
    let dir = temp_dir("bench-e2e");
    let path = dir.join("policy.agentpolicy");
    let text = generate(5_000, 1).remove(0);
    let uri = file_uri(&path);
    let mut client = Client::start(&dir);
    client.initialize(None);
    client.open(&uri, &text);
    let first = client.diagnostics(&uri, |p| p["version"] == 1);
    assert!(
        first.is_empty(),
        "the generated policy should be clean: {first:#?}"
    );
    let (line, col) = edit_position(&text);
    let range = json!({
        "start": {"line": line, "character": col + 3},
        "end": {"line": line, "character": col + 4}
    });
    let mut version = 1;
    c.bench_function("didChange_to_publishDiagnostics/one_file_5000_lines", |b| {
        b.iter(|| {
            version += 1;
            let digit = if version % 2 == 0 { "1" } else { "0" };
            client.notify(
                "textDocument/didChange",
                json!({
                    "textDocument": {"uri": uri, "version": version},
                    "contentChanges": [{"range": range, "text": digit}]
                }),
            );
            client.diagnostics(&uri, |p| p["version"] == version)
        })
    });
    client.shutdown();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = end_to_end
}
criterion_main!(benches);
