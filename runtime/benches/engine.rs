//! The engine's decide path: session lookup, label, limits (a per-task counter and a
//! sliding minute), `decide`, and the audit record, on 1 and 2 threads; with no audit
//! log, with an fsync-per-batch log (group commit) and with an OS-buffered log. Plain
//! `decide` on the same request is the baseline.
//!
//! Run: `cargo bench -p agentpolicy-runtime --bench engine`. Multi-thread figures are
//! wall-clock time per call with both threads deciding (so half the time is twice the
//! throughput). The audit log goes to the system temp directory; fsync cost depends on
//! its file system.

use std::hint::black_box;
use std::time::{Duration, Instant};

use agentpolicy_runtime::audit::{AuditLog, Durability};
use agentpolicy_runtime::engine::{SessionId, SystemClock};
use agentpolicy_runtime::*;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn table() -> Result<DecisionTable, InvalidTable> {
    let mut data = TableData {
        format_version: FORMAT_VERSION,
        source_hash: source_hash(&[("bench.agentpolicy", "")]),
        files: vec!["bench.agentpolicy".into()],
        tiers: vec!["public".into(), "confidential".into()],
        keys: vec!["matter".into()],
        resources: vec![Resource {
            name: "document".into(),
            tier: TierId(1),
            keyed: vec![KeyId(0)],
        }],
        ..TableData::default()
    };
    data.tools.push(Tool {
        name: "search_docs".into(),
        params: vec![Param {
            name: "amount".into(),
            ty: ValueType::Money,
            optional: false,
        }],
        effects: vec![Effect::Read],
        reads: vec![ResourceId(0)],
        writes: vec![],
    });
    data.agents.push(Agent {
        name: "intake".into(),
        owner: None,
        mode: Mode::Enforce,
        max_tier: Some(TierId(1)),
        limits: vec![
            Limit {
                count: u64::MAX / 2,
                unit: LimitUnit::Calls,
                window: LimitWindow::Task,
            },
            Limit {
                count: u64::MAX / 2,
                unit: LimitUnit::Calls,
                window: LimitWindow::Minute,
            },
        ],
        breakers: vec![],
    });
    data.rules.push(Rule {
        id: "intake/allow/search_docs#1".into(),
        agent: AgentId(0),
        kind: RuleKind::Allow,
        target: Target::Tool(ToolId(0)),
        route: None,
        span: Span::default(),
    });
    data.cells.push(Cell {
        granted: true,
        allow: vec![Entry {
            rule: RuleIndex(0),
            condition: Condition::new(vec![Op::Compare {
                slot: Slot(0),
                op: CmpOp::Le,
                value: 10_000,
            }])
            .ok(),
        }],
        ..Cell::default()
    });
    DecisionTable::new(data)
}

const ARGS: [(&str, ArgValue<'static>); 1] = [("amount", ArgValue::Money(5_000))];
const KEYS: [(&str, &str); 1] = [("matter", "M-1")];

fn call() -> Call<'static> {
    Call::new("search_docs")
        .args(&ARGS)
        .reads("document", &KEYS)
}

#[derive(Clone, Copy)]
enum Audit {
    Off,
    Fsync,
    Buffered,
}

impl Audit {
    fn name(self) -> &'static str {
        match self {
            Audit::Off => "audit_off",
            Audit::Fsync => "audit_fsync",
            Audit::Buffered => "audit_buffered",
        }
    }
}

fn engine(audit: Audit, table: &DecisionTable) -> Option<Engine> {
    let log = match audit {
        Audit::Off => None,
        Audit::Fsync | Audit::Buffered => {
            let dir =
                std::env::temp_dir().join(format!("agentpolicy-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir).ok()?;
            let path = dir.join(format!("{}.jsonl", audit.name()));
            let _ = std::fs::remove_file(&path);
            let durability = match audit {
                Audit::Buffered => Durability::OsBuffered {
                    fsync_interval: Duration::from_millis(100),
                },
                _ => Durability::default(),
            };
            Some(AuditLog::open(&path, durability, &SystemClock).ok()?)
        }
    };
    let config = EngineConfig {
        audit: log,
        ..EngineConfig::default()
    };
    Engine::new(table.clone(), config).ok()
}

fn open(engine: &Engine) -> Option<SessionId> {
    engine
        .open_session("intake", SessionOptions::default())
        .ok()
}

fn bench(c: &mut Criterion) {
    let Ok(table) = table() else { return };

    let mut plain = c.benchmark_group("decide");
    let request = table
        .request("intake", "search_docs")
        .and_then(|b| b.arg("amount", ArgValue::Money(5_000)))
        .and_then(|b| b.read("document", &[("matter", KeyValue(0))]))
        .map(|b| b.build());
    if let Ok(request) = request {
        plain.bench_function("plain", |b| {
            b.iter(|| decide(black_box(&table), black_box(&request)))
        });
    }
    plain.finish();

    for audit in [Audit::Off, Audit::Buffered, Audit::Fsync] {
        let mut group = c.benchmark_group(format!("engine/{}", audit.name()));
        if !matches!(audit, Audit::Off) {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(4));
        }
        let Some(engine) = engine(audit, &table) else {
            continue;
        };
        let call = call();
        if let Some(s) = open(&engine) {
            group.bench_function(BenchmarkId::new("threads", 1), |b| {
                b.iter(|| engine.decide(black_box(s), black_box(&call)))
            });
        }
        group.bench_function(BenchmarkId::new("threads", 2), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..2 {
                        scope.spawn(|| {
                            let Some(s) = open(&engine) else { return };
                            for _ in 0..iters.div_ceil(2) {
                                black_box(engine.decide(s, &call));
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
