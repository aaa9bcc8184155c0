//! The kill switch: through the API from another thread, effective on the very next
//! decision; and through the kill file an operator writes, read by the background
//! thread.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentpolicy_runtime::engine::KillFile;
use agentpolicy_runtime::*;

use super::clinic::{FAST, clinic, rig, rig_with, session, temp_dir};

#[test]
fn a_kill_flipped_from_another_thread_stops_the_next_decision() {
    let rig = rig();
    let engine = &rig.engine;
    let s = session(&rig, "scribe");
    assert!(engine.decide(s, &Call::new("read_schedule")).is_allow());
    let (killed_tx, killed_rx) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            engine.kill_agent("scribe", "oncall@clinic").unwrap();
            killed_tx.send(()).unwrap();
        });
        killed_rx.recv().unwrap();
        let v = engine.decide(s, &Call::new("read_schedule"));
        assert_eq!(v.decision.why, Why::AgentSuspended);
    });
    // The biller is not the scribe.
    let b = session(&rig, "biller");
    assert!(engine.decide(b, &Call::new("read_schedule")).is_allow());

    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            engine.kill_all("oncall@clinic").unwrap();
            tx.send(()).unwrap();
        });
        rx.recv().unwrap();
        assert_eq!(
            engine.decide(b, &Call::new("read_schedule")).decision.why,
            Why::EngineSuspended
        );
    });
    engine.resume_all("oncall@clinic").unwrap();
    assert!(engine.decide(b, &Call::new("read_schedule")).is_allow());
    assert!(
        !engine.decide(s, &Call::new("read_schedule")).is_allow(),
        "the agent kill stands"
    );
    engine.resume_agent("scribe", "oncall@clinic").unwrap();
    assert!(engine.decide(s, &Call::new("read_schedule")).is_allow());
    assert!(matches!(
        engine.kill_agent("nobody", "x"),
        Err(engine::EngineError::UnknownAgent(_))
    ));
}

#[test]
fn the_kill_file_suspends_agents_or_everything_and_lifts_when_removed() {
    let path = temp_dir("kill-file").join("STOP");
    let rig = rig_with(clinic(), |c| c.kill_file = Some(KillFile::new(&path)));
    let scribe = session(&rig, "scribe");
    let biller = session(&rig, "biller");
    assert!(
        !rig.engine.poll_kill_file().unwrap(),
        "no file, nothing changes"
    );

    std::fs::write(&path, "# runaway scribe\nscribe\n").unwrap();
    assert!(rig.engine.poll_kill_file().unwrap());
    assert_eq!(
        rig.engine
            .decide(scribe, &Call::new("read_schedule"))
            .decision
            .why,
        Why::AgentSuspended
    );
    assert!(
        rig.engine
            .decide(biller, &Call::new("read_schedule"))
            .is_allow()
    );

    std::fs::write(&path, "").unwrap();
    assert!(rig.engine.poll_kill_file().unwrap());
    assert_eq!(
        rig.engine
            .decide(biller, &Call::new("read_schedule"))
            .decision
            .why,
        Why::EngineSuspended
    );

    std::fs::remove_file(&path).unwrap();
    assert!(rig.engine.poll_kill_file().unwrap());
    assert!(
        rig.engine
            .decide(scribe, &Call::new("read_schedule"))
            .is_allow()
    );
}

#[test]
fn an_existing_kill_file_holds_from_the_first_decision() {
    let path = temp_dir("kill-file-start").join("STOP");
    std::fs::write(&path, "all\n").unwrap();
    let rig = rig_with(clinic(), |c| c.kill_file = Some(KillFile::new(&path)));
    let s = session(&rig, "scribe");
    assert_eq!(
        rig.engine
            .decide(s, &Call::new("read_schedule"))
            .decision
            .why,
        Why::EngineSuspended
    );
}

#[test]
fn the_background_thread_reads_the_kill_file_within_its_interval() {
    let path = temp_dir("kill-file-thread").join("STOP");
    let rig = rig_with(clinic(), |c| {
        c.kill_file = Some(KillFile {
            path: path.clone(),
            poll_interval: FAST,
        })
    });
    let s = session(&rig, "scribe");
    assert!(rig.engine.decide(s, &Call::new("read_schedule")).is_allow());
    std::fs::write(&path, "scribe").unwrap();
    let written = Instant::now();
    // Bounded wait: the thread polls every 20 ms; allow a slow machine a few seconds.
    while rig.engine.decide(s, &Call::new("read_schedule")).is_allow() {
        assert!(
            written.elapsed() < Duration::from_secs(10),
            "the kill file was not honoured"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        rig.engine
            .decide(s, &Call::new("read_schedule"))
            .decision
            .why,
        Why::AgentSuspended
    );
}
