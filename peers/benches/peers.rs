//! agentpolicy's `decide` against cedar-policy's `Authorizer::is_authorized` and
//! regorus's `eval_rule`, side by side in one run, on the generated 10-, 100- and
//! 1,000-rule policies and the fixed requests (allow, escalate, deny, and the two
//! default-deny paths: no rule matched, tool not granted).
//!
//! Each engine gets its request prepared once, outside the timed loop, as an embedder
//! would: agentpolicy a `Request` of interned ids, Cedar a `Request` with its entity
//! uids and context, Rego an input `Value`. Timed per iteration: `decide`; Cedar's
//! `is_authorized` plus reading escalate off the determining policies' annotations;
//! Rego's `set_input` (a reference-counted clone) and `eval_rule`.
//!
//! Run: `cargo bench -p agentpolicy-peers`. Medians land in
//! `target/criterion/rules_N/ENGINE/REQUEST/new/estimates.json` (`median`).

use std::hint::black_box;
use std::time::Duration;

use agentpolicy_peers::spec::SHAPES;
use agentpolicy_peers::{Peers, cedar, rego};
use agentpolicy_runtime::decide;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// The benchmarked requests; the agreement test checks all of them and more.
const BENCHED: [&str; 5] = [
    "allow",
    "escalate",
    "deny",
    "default_deny_no_rule",
    "default_deny_not_granted",
];

fn bench(c: &mut Criterion) {
    for shape in SHAPES {
        let mut peers = match Peers::new(shape) {
            Ok(peers) => peers,
            Err(e) => {
                eprintln!("{} rules: the policy does not build: {e}", shape.rules());
                continue;
            }
        };
        let requests = peers.requests();
        let mut group = c.benchmark_group(format!("rules_{}", shape.rules()));
        for request in requests.iter().filter(|r| BENCHED.contains(&r.name)) {
            let call = match peers.prepare(&request.call) {
                Ok(call) => call,
                Err(e) => {
                    eprintln!("{}: {e}", request.name);
                    continue;
                }
            };
            // Benchmark only what agrees: a fast wrong answer is no result.
            match peers.outcomes(&call) {
                Ok(o) if [o.ours, o.cedar, o.cedar_sliced, o.rego] == [request.expected; 4] => {}
                other => {
                    eprintln!(
                        "{} rules, {}: expected {:?}, got {other:?}; skipped",
                        shape.rules(),
                        request.name,
                        request.expected
                    );
                    continue;
                }
            }
            let Peers {
                table,
                cedar: cedar_policy,
                rego: rego_policy,
                ..
            } = &mut peers;
            group.bench_with_input(
                BenchmarkId::new("agentpolicy", request.name),
                &call.ours,
                |b, r| b.iter(|| decide(black_box(table), black_box(r))),
            );
            group.bench_with_input(
                BenchmarkId::new("cedar", request.name),
                &call.cedar,
                |b, r| b.iter(|| cedar::outcome(black_box(cedar_policy), black_box(r))),
            );
            group.bench_with_input(
                BenchmarkId::new("cedar_sliced", request.name),
                &call.cedar,
                |b, r| {
                    b.iter(|| {
                        cedar::sliced_outcome(black_box(cedar_policy), call.agent, black_box(r))
                    })
                },
            );
            group.bench_with_input(
                BenchmarkId::new("rego", request.name),
                &call.rego,
                |b, r| b.iter(|| rego::outcome(black_box(rego_policy), black_box(r))),
            );
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
