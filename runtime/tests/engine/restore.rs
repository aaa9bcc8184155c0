//! Restarting from the audit log: an engine rebuilt from the records of another has the
//! same sessions (labels, taint, task, usage), pending escalations, kill switches and
//! breakers, and decides the same from then on. Random runs on the clinic table, each
//! compared with a restart at its end, as a SIGKILL and restart would see it.

use std::sync::Arc;

use agentpolicy_runtime::audit::{AuditLog, Durability, read_records};
use agentpolicy_runtime::engine::{
    Call, CallRef, CallResult, Clock, Labels, ManualClock, Resolution, SessionId, SessionOptions,
};
use agentpolicy_runtime::*;

use super::clinic::{T0, audited, clinic, config, temp_dir};

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const PATIENTS: &[&str] = &["P-1", "P-2"];

/// One random call of a session and its verdict.
fn random_call(engine: &Engine, rng: &mut Rng, id: SessionId) -> (Outcome, String) {
    let patient = rng.pick(PATIENTS);
    let keys = [("patient", patient)];
    let cost = [(
        "cost",
        ArgValue::Money(if rng.below(2) == 0 { 10_000 } else { 90_000 }),
    )];
    let note = [("text", ArgValue::Text("note"))];
    let v = match rng.below(6) {
        0 | 1 => {
            let mut call = Call::new("read_chart");
            call.read = Some(Labels {
                target: "chart",
                keys: &keys,
            });
            engine.decide(id, &call)
        }
        2 => engine.decide(id, &Call::new("read_schedule")),
        3 => engine.decide(id, &Call::new("post_note").args(&note)),
        4 => {
            let mut call = Call::new("write_chart").args(&note);
            call.write = Some(Labels {
                target: "chart_notes",
                keys: &keys,
            });
            engine.decide(id, &call)
        }
        _ => engine.decide(id, &Call::new("order_test").args(&cost)),
    };
    (v.outcome, v.reason_code().to_owned())
}

/// A random run: sessions of every agent, calls, results, tasks, closes, resolutions,
/// kills and resumes, breaker resets and time passing.
fn random_run(engine: &Engine, clock: &ManualClock, rng: &mut Rng, steps: usize) {
    let mut sessions: Vec<SessionId> = Vec::new();
    for _ in 0..steps {
        clock.advance(rng.below(20_000) as i64);
        match rng.below(20) {
            0 | 1 => {
                let agent = rng.pick(&["scribe", "scribe", "trial", "biller"]);
                let patient = rng.pick(PATIENTS);
                let bind = [("patient", patient)];
                let options = SessionOptions {
                    bind: if rng.below(3) == 0 { &bind } else { &[] },
                    context: Some("user:test"),
                    ..SessionOptions::default()
                };
                if let Ok(id) = engine.open_session(agent, options) {
                    sessions.push(id);
                }
            }
            2 | 3 => {
                let Some(&id) = sessions.get(rng.below(sessions.len().max(1) as u64) as usize)
                else {
                    continue;
                };
                let n = engine.session(id).map(|s| s.calls).unwrap_or(0);
                if n > 0 {
                    let _ = engine.report(
                        CallRef {
                            session: id,
                            n: 1 + rng.below(n),
                        },
                        CallResult {
                            ok: rng.below(3) != 0,
                            tokens: rng.below(3_000),
                            latency_ms: 10,
                        },
                    );
                }
            }
            4 => {
                if let Some(&id) = sessions.get(rng.below(sessions.len().max(1) as u64) as usize) {
                    let _ = engine.start_task(id);
                }
            }
            5 => {
                if rng.below(4) == 0
                    && let Some(&id) =
                        sessions.get(rng.below(sessions.len().max(1) as u64) as usize)
                {
                    let _ = engine.close_session(id);
                }
            }
            6 | 7 => {
                let pending = engine.pending_escalations().unwrap_or_default();
                if let Some(e) = pending.get(rng.below(pending.len().max(1) as u64) as usize) {
                    let how = if rng.below(2) == 0 {
                        Resolution::Approve
                    } else {
                        Resolution::Reject
                    };
                    let _ = engine.resolve(e.id, how, "nurse");
                }
            }
            8 => {
                let agent = rng.pick(&["scribe", "trial", "biller"]);
                let _ = match rng.below(6) {
                    0 => engine.kill_agent(agent, "ops"),
                    1 | 2 => engine.resume_agent(agent, "ops"),
                    3 => engine.kill_all("ops"),
                    4 => engine.resume_all("ops"),
                    _ => engine.reset_breaker(agent, "ops"),
                };
            }
            9 => {
                clock.advance(rng.below(900_000) as i64);
                let _ = engine.expire_escalations();
            }
            _ => {
                if let Some(&id) = sessions.get(rng.below(sessions.len().max(1) as u64) as usize) {
                    random_call(engine, rng, id);
                }
            }
        }
    }
}

/// An engine on the clinic table restarted from a copy of `log` (the original keeps
/// running on its own file), at the same time.
fn restart(log: &std::path::Path, now: i64, name: &str) -> Engine {
    let copy = temp_dir(name).join("audit.jsonl");
    std::fs::copy(log, &copy).expect("copy the log");
    let clock = Arc::new(ManualClock::new(now));
    let records = read_records(std::io::BufReader::new(
        std::fs::File::open(&copy).expect("open the copy"),
    ))
    .expect("the log reads");
    let mut config = config(&clock);
    config.audit =
        Some(AuditLog::open(&copy, Durability::default(), clock.as_ref()).expect("open"));
    config.restore = records;
    Engine::new(clinic(), config).expect("restart")
}

#[test]
fn a_restart_from_the_log_resumes_every_session_escalation_and_switch() {
    for seed in 1..=16u64 {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let rig = audited(&format!("restore-{seed}"), |_| {});
        random_run(&rig.engine, &rig.clock, &mut rng, 120);
        let log = rig.log.clone().expect("audited");
        let restarted = restart(&log, rig.clock.now_ms(), &format!("restore-{seed}-b"));
        let before = rig.engine.sessions().expect("sessions");
        assert!(!before.is_empty(), "seed {seed}: the run opened sessions");
        assert_eq!(
            restarted.sessions().expect("sessions"),
            before,
            "seed {seed}: sessions after a restart"
        );
        assert_eq!(
            restarted.pending_escalations().expect("pending"),
            rig.engine.pending_escalations().expect("pending"),
            "seed {seed}: pending escalations after a restart"
        );
        assert!(restarted.restored().skipped.is_empty(), "seed {seed}");
        // From here on both engines decide alike: limits, taint, bound keys, kill
        // switches and breakers were rebuilt, not just shown.
        let mut a = Rng(seed);
        let mut b = Rng(seed);
        for s in &before {
            for _ in 0..4 {
                assert_eq!(
                    random_call(&restarted, &mut b, s.id),
                    random_call(&rig.engine, &mut a, s.id),
                    "seed {seed}: a call of {} after the restart",
                    s.id
                );
            }
        }
        let fresh = restarted
            .open_session("scribe", SessionOptions::default())
            .expect("open");
        assert!(
            before.iter().all(|s| s.id != fresh),
            "seed {seed}: a new session does not reuse an id"
        );
    }
}

#[test]
fn a_tampered_log_is_refused_before_anything_is_restored() {
    let rig = audited("restore-tamper", |_| {});
    let id = rig
        .engine
        .open_session("scribe", SessionOptions::default())
        .expect("open");
    rig.engine.decide(id, &Call::new("read_schedule"));
    let log = rig.log.clone().expect("audited");
    let text = std::fs::read_to_string(&log).expect("read");
    let forged = text.replace("\"outcome\":\"allow\"", "\"outcome\":\"deny\"");
    assert_ne!(forged, text);
    let err = read_records(forged.as_bytes()).expect_err("a forged record is refused");
    assert!(err.to_string().contains("does not match its hash"), "{err}");
}

#[test]
fn the_clock_passing_while_down_times_out_restored_escalations() {
    let rig = audited("restore-timeout", |_| {});
    let id = rig
        .engine
        .open_session("scribe", SessionOptions::default())
        .expect("open");
    let cost = [("cost", ArgValue::Money(90_000))];
    let v = rig.engine.decide(id, &Call::new("order_test").args(&cost));
    assert_eq!(v.outcome, Outcome::Escalate);
    let log = rig.log.clone().expect("audited");
    // Eleven minutes later (the charge nurse route times out after ten, then deny).
    let restarted = restart(&log, T0 + 660_000, "restore-timeout-b");
    assert_eq!(restarted.restored().pending, 1);
    let expired = restarted.expire_escalations();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].outcome, Outcome::Deny);
    assert!(restarted.pending_escalations().expect("pending").is_empty());
}
