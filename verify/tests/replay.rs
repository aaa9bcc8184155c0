//! Habit 7: every counterexample the verifier reports for the fixture corpus is replayed
//! through `agentpolicy_runtime::decide`, call by call, and the runtime must decide as the
//! counterexample says. Traces are replayed as sessions: each call's session label must be
//! what the calls before it leave behind (tier raised by what was read, keys bound by the
//! named reads), from a session that starts with nothing read (possibly bound to key
//! values at creation).

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use std::path::{Path, PathBuf};

use agentpolicy::codegen;
use agentpolicy::db::Database;
use agentpolicy::diagnostics::FileId;
use agentpolicy_runtime::{DecisionTable, KeyValueInterner, Outcome, decide};
use agentpolicy_verify::{self as verify, Call, Config, Counterexample, Session};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn policies(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            policies(&p, out);
        } else if p.extension().is_some_and(|x| x == "agentpolicy") {
            out.push(p);
        }
    }
}

/// Decides `call` in the runtime with the session it names; returns how permissive the
/// decision is: allow 0, an escalation the engine allows on timeout 1, an escalation
/// that waits for a person 2, deny 3.
fn replay_call(table: &DecisionTable, call: &Call, keys: &mut KeyValueInterner) -> u8 {
    // With the members the counterexample assumes for `from deploy` sets, if any.
    let table = &*call.table(table).expect("the counterexample's sets bind");
    let request = call
        .to_request(table, keys)
        .expect("a counterexample is a valid request");
    let d = decide(table, &request);
    assert_eq!(
        d.outcome,
        call.outcome,
        "runtime outcome differs for {}",
        call.to_json()
    );
    let rule = d
        .rule
        .and_then(|r| table.data().rules.get(r.index()))
        .map(|r| r.id.clone());
    assert_eq!(
        rule,
        call.rule,
        "deciding rule differs for {}",
        call.to_json()
    );
    match d.outcome {
        Outcome::Allow => 0,
        Outcome::Escalate => {
            match agentpolicy_runtime::engine::unattended(table.data(), d.routes.as_slice()) {
                Some(t) if t.outcome == Outcome::Allow => 1,
                _ => 2,
            }
        }
        Outcome::Deny => 3,
    }
}

/// The session after `call` went through, by the flow model: the tier rises to what the
/// call read (the named resource, or every resource the tool declares), and the named
/// read's keys are bound.
fn advance(table: &DecisionTable, session: &Session, call: &Call) -> Session {
    let data = table.data();
    let tool = data
        .tools
        .iter()
        .find(|t| t.name == call.tool)
        .expect("tool of the call");
    let rank = |name: &str| data.tiers.iter().position(|t| t == name);
    let mut tier = session.tier.as_deref().and_then(rank);
    let read: Vec<usize> = match &call.read {
        Some(a) => data
            .resources
            .iter()
            .position(|r| r.name == a.target)
            .into_iter()
            .collect(),
        None => tool.reads.iter().map(|r| r.index()).collect(),
    };
    for r in read {
        let t = data.resources[r].tier.index();
        tier = Some(tier.map_or(t, |x| x.max(t)));
    }
    let mut bound = session.bound.clone();
    if let Some(a) = &call.read {
        for (k, v) in &a.keys {
            if !bound.iter().any(|(bk, _)| bk == k) {
                bound.push((k.clone(), v.clone()));
            }
        }
    }
    bound.sort();
    Session {
        tier: tier.map(|t| data.tiers[t].clone()),
        bound,
        tainted: false,
    }
}

fn replay(table: &DecisionTable, cex: &Counterexample) -> usize {
    let mut keys = KeyValueInterner::default();
    // A session starts with nothing read; it may be bound to key values at creation.
    let mut session = Session {
        tier: None,
        // A single-call counterexample may start in a session that is already tainted.
        tainted: cex.calls.first().is_some_and(|c| c.session.tainted),
        bound: cex
            .calls
            .first()
            .map(|c| {
                let mut b = c.session.bound.clone();
                b.sort();
                b
            })
            .unwrap_or_default(),
    };
    for (i, call) in cex.calls.iter().enumerate() {
        let mut expected = call.session.clone();
        expected.bound.sort();
        assert_eq!(
            expected, session,
            "call {i} of the trace runs in a session the calls before it do not produce"
        );
        let _ = replay_call(table, call, &mut keys);
        if i + 1 < cex.calls.len() {
            assert_ne!(
                call.outcome,
                Outcome::Deny,
                "a trace only continues past calls that go through"
            );
            session = advance(table, &session, call);
        }
    }
    if let Some(safer) = &cex.safer {
        let safer = replay_call(table, safer, &mut KeyValueInterner::default());
        let riskier = cex.calls.last().expect("a riskier call");
        let riskier = replay_call(table, riskier, &mut KeyValueInterner::default());
        assert!(
            riskier < safer,
            "the riskier request must get the more permissive outcome"
        );
    }
    cex.calls.len()
}

/// Each fixture file is one policy; each directory of `examples/` (and its `broken/`
/// variant) is one policy made of its files.
fn corpus() -> Vec<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut fixtures = Vec::new();
    policies(&repo_root().join("tests/fixtures"), &mut fixtures);
    fixtures.sort();
    out.extend(fixtures.into_iter().map(|f| vec![f]));
    let mut dirs = Vec::new();
    if let Ok(entries) = std::fs::read_dir(repo_root().join("examples")) {
        for e in entries.flatten().filter(|e| e.path().is_dir()) {
            dirs.push(e.path());
            dirs.push(e.path().join("broken"));
        }
    }
    dirs.sort();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|es| {
                es.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "agentpolicy"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        if !files.is_empty() {
            out.push(files);
        }
    }
    out
}

#[test]
fn every_counterexample_replays_in_the_runtime() {
    let (mut replayed, mut calls) = (0, 0);
    for policy in corpus() {
        let Ok(texts) = policy
            .iter()
            .map(|p| std::fs::read_to_string(p).map(|t| (p.display().to_string(), t)))
            .collect::<Result<Vec<_>, _>>()
        else {
            // Not UTF-8: a front-end fixture, nothing to prove.
            continue;
        };
        let path = policy[0].clone();
        let mut db = Database::default();
        let loaded = db.load(texts);
        let analysis = db.analysis(loaded);
        if analysis.has_errors() {
            continue;
        }
        let mut sources = Vec::new();
        while let Some((p, t)) = db.file(loaded, FileId(sources.len() as u32)) {
            sources.push((p.to_string(), t.to_string()));
        }
        let Ok(table) = codegen::build_table(&analysis.model, &sources) else {
            continue;
        };
        let report = verify::verify(&analysis.model, &table, &Config::default());
        for (result, cex) in report.counterexamples() {
            assert!(
                result
                    .diagnostic
                    .as_ref()
                    .is_some_and(|d| d.counterexample.is_some()),
                "{}: a counterexample is shown in its diagnostic",
                path.display()
            );
            calls += replay(&table, cex);
            replayed += 1;
        }
    }
    assert!(
        replayed >= 20,
        "expected the corpus to produce counterexamples, got {replayed}"
    );
    assert!(
        calls > replayed,
        "some counterexamples are traces of several calls"
    );
}
