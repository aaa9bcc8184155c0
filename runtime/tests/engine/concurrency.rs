//! Many threads deciding at once with the audit log on: every call is recorded once,
//! the chain verifies, and per-session limits hold exactly.

use std::io;

use agentpolicy_runtime::audit::{RecordKind, verify};
use agentpolicy_runtime::*;

use super::clinic::audited;

#[test]
fn concurrent_sessions_share_one_intact_chain() {
    let rig = audited("concurrent", |c| c.shards = 3);
    let engine = &rig.engine;
    const THREADS: usize = 4;
    const CALLS: usize = 30;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(move || {
                let s = engine
                    .open_session("scribe", SessionOptions::default())
                    .unwrap();
                let mut allowed = 0;
                for _ in 0..CALLS {
                    if engine.decide(s, &Call::new("read_schedule")).is_allow() {
                        allowed += 1;
                    }
                }
                // The clock does not move: 20 calls per minute per session.
                assert_eq!(allowed, 20);
            });
        }
    });
    let path = rig.log.clone().unwrap();
    let decisions = rig
        .records()
        .into_iter()
        .filter(|r| r.kind == RecordKind::Decision)
        .count();
    assert_eq!(decisions, THREADS * CALLS);
    rig.engine.shutdown().unwrap();
    let report = verify(io::BufReader::new(std::fs::File::open(path).unwrap())).unwrap();
    assert!(report.is_intact() && report.sealed, "{report:?}");
}
