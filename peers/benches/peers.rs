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
//!
//! The default clock is wall time. On a shared machine, where other processes take the
//! core away part of the time, `PEERS_CLOCK=thread-cpu cargo bench -p agentpolicy-peers`
//! measures the benchmark thread's CPU time instead (groups `cpu_rules_N`): time spent
//! descheduled is left out, cache and memory interference from neighbours is not.

use std::hint::black_box;
use std::time::Duration;

use agentpolicy_peers::spec::SHAPES;
use agentpolicy_peers::{Peers, cedar, rego};
use agentpolicy_runtime::decide;
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput};

/// The benchmarked requests; the agreement test checks all of them and more.
const BENCHED: [&str; 5] = [
    "allow",
    "escalate",
    "deny",
    "default_deny_no_rule",
    "default_deny_not_granted",
];

fn bench<M: Measurement>(c: &mut Criterion<M>, prefix: &str) {
    for shape in SHAPES {
        let mut peers = match Peers::new(shape) {
            Ok(peers) => peers,
            Err(e) => {
                eprintln!("{} rules: the policy does not build: {e}", shape.rules());
                continue;
            }
        };
        let requests = peers.requests();
        let mut group = c.benchmark_group(format!("{prefix}rules_{}", shape.rules()));
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

/// The CPU time of the benchmark thread (`CLOCK_THREAD_CPUTIME_ID`), in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = cpu_time::ThreadTime;
    type Value = Duration;

    fn start(&self) -> Self::Intermediate {
        cpu_time::ThreadTime::now()
    }
    fn end(&self, start: Self::Intermediate) -> Self::Value {
        start.elapsed()
    }
    fn add(&self, a: &Self::Value, b: &Self::Value) -> Self::Value {
        *a + *b
    }
    fn zero(&self) -> Self::Value {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Self::Value) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanoseconds
    }
}

/// Formats nanoseconds as criterion's wall clock does (ns, µs, ms, s).
#[derive(Debug)]
struct Nanoseconds;

impl ValueFormatter for Nanoseconds {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns")
        } else if typical < 1e6 {
            (1e-3, "µs")
        } else if typical < 1e9 {
            (1e-6, "ms")
        } else {
            (1e-9, "s")
        };
        for value in values {
            *value *= factor;
        }
        unit
    }
    fn scale_throughputs(&self, _: f64, _: &Throughput, _: &mut [f64]) -> &'static str {
        // No benchmark here declares a throughput.
        "ns"
    }
    fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn main() {
    if std::env::var("PEERS_CLOCK").is_ok_and(|clock| clock == "thread-cpu") {
        let mut c = config().with_measurement(ThreadCpu).configure_from_args();
        bench(&mut c, "cpu_");
        c.final_summary();
    } else {
        let mut c = config().configure_from_args();
        bench(&mut c, "");
        c.final_summary();
    }
}
