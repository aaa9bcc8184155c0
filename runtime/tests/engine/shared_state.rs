//! Two engines on one [`StateStore`] act as one: the store here is an in-memory one
//! (a `Mutex` over a map, compare-and-set like the Redis store's Lua script), so these
//! tests check the engine's side of the boundary on an exact clock; the Redis store is
//! tested end to end with the real `serve` binary in `cli/tests/serve_shared.rs`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use agentpolicy_runtime::engine::{
    Engine, Internal, Reason, SharedControls, StateError, StateStore, Stored,
};
use agentpolicy_runtime::*;

use super::clinic::{clinic, config};

#[derive(Debug, Default)]
struct MemoryStore {
    next: AtomicU64,
    sessions: Mutex<HashMap<u64, Stored>>,
    kill: Mutex<BTreeSet<String>>,
    table: Mutex<Option<String>>,
    escalations: Mutex<HashMap<String, Vec<u8>>>,
    claims: Mutex<HashMap<String, Vec<u8>>>,
    results: Mutex<HashMap<String, Vec<u8>>>,
    down: AtomicBool,
}

impl MemoryStore {
    fn up(&self) -> Result<(), StateError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StateError("the test took the store down".into()))
        } else {
            Ok(())
        }
    }

    fn controls_now(&self) -> SharedControls {
        let kill = self.kill.lock().unwrap();
        SharedControls {
            kill_all: kill.contains("*"),
            killed: kill.iter().filter(|n| *n != "*").cloned().collect(),
            table: self.table.lock().unwrap().clone(),
        }
    }
}

impl StateStore for MemoryStore {
    fn next_session(&self) -> Result<u64, StateError> {
        self.up()?;
        Ok(self.next.fetch_add(1, Ordering::SeqCst) + 1)
    }

    fn load(&self, session: u64) -> Result<(Option<Stored>, SharedControls), StateError> {
        self.up()?;
        let stored = self.sessions.lock().unwrap().get(&session).cloned();
        Ok((stored, self.controls_now()))
    }

    fn commit(&self, session: u64, version: u64, bytes: &[u8]) -> Result<bool, StateError> {
        self.up()?;
        let mut sessions = self.sessions.lock().unwrap();
        let current = sessions.get(&session).map_or(0, |s| s.version);
        if current != version {
            return Ok(false);
        }
        sessions.insert(
            session,
            Stored {
                version: version + 1,
                bytes: bytes.to_vec(),
            },
        );
        Ok(true)
    }

    fn controls(&self) -> Result<SharedControls, StateError> {
        self.up()?;
        Ok(self.controls_now())
    }

    fn set_kill(&self, agent: Option<&str>, on: bool) -> Result<(), StateError> {
        self.up()?;
        let mut kill = self.kill.lock().unwrap();
        let name = agent.unwrap_or("*").to_owned();
        if on {
            kill.insert(name);
        } else {
            kill.remove(&name);
        }
        Ok(())
    }

    fn ping(&self) -> Result<(), StateError> {
        self.up()
    }

    fn set_table(&self, hash: &str) -> Result<(), StateError> {
        self.up()?;
        *self.table.lock().unwrap() = Some(hash.to_owned());
        Ok(())
    }

    fn put_escalation(&self, id: &str, bytes: &[u8]) -> Result<(), StateError> {
        self.up()?;
        self.escalations
            .lock()
            .unwrap()
            .insert(id.to_owned(), bytes.to_vec());
        Ok(())
    }

    fn drop_escalation(&self, id: &str) -> Result<(), StateError> {
        self.up()?;
        self.escalations.lock().unwrap().remove(id);
        Ok(())
    }

    fn escalations(&self) -> Result<Vec<Vec<u8>>, StateError> {
        self.up()?;
        Ok(self.escalations.lock().unwrap().values().cloned().collect())
    }

    fn claim_escalation(&self, id: &str, claim: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.up()?;
        let taken = self.escalations.lock().unwrap().remove(id);
        if taken.is_some() {
            self.claims
                .lock()
                .unwrap()
                .insert(id.to_owned(), claim.to_vec());
        }
        Ok(taken)
    }

    fn claims(&self, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>, StateError> {
        self.up()?;
        let claims = self.claims.lock().unwrap();
        Ok(ids.iter().map(|i| claims.get(i).cloned()).collect())
    }

    fn finish_escalation(&self, id: &str, result: &[u8]) -> Result<(), StateError> {
        self.up()?;
        self.claims.lock().unwrap().remove(id);
        self.results
            .lock()
            .unwrap()
            .insert(id.to_owned(), result.to_vec());
        Ok(())
    }

    fn escalation_result(&self, id: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.up()?;
        Ok(self.results.lock().unwrap().get(id).cloned())
    }

    fn watch(&self, _: engine::OnEvent) -> Result<bool, StateError> {
        // No events here: the engines' timer (and the claim's own engine) do the work.
        Ok(false)
    }
}

/// Two engines on the clinic table sharing `store`, on one exact clock.
fn pair(store: &Arc<MemoryStore>) -> (Engine, Engine) {
    let clock = Arc::new(engine::ManualClock::new(super::clinic::T0));
    let make = || {
        let mut c = config(&clock);
        c.state = Some(Arc::clone(store) as Arc<dyn StateStore>);
        Engine::new(clinic(), c).unwrap()
    };
    (make(), make())
}

#[test]
fn a_per_task_limit_holds_across_engines_deciding_at_once() {
    let store = Arc::new(MemoryStore::default());
    let (a, b) = pair(&store);
    // The scribe may make 100 calls per task (and 20 per minute: the clock stands
    // still, so that binds first). Eight threads over both engines.
    let s = a.open_session("scribe", SessionOptions::default()).unwrap();
    let engines = [&a, &b];
    let allowed = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let engine = engines[t % 2];
            let allowed = &allowed;
            scope.spawn(move || {
                for _ in 0..10 {
                    let v = engine.decide(s, &Call::new("read_schedule"));
                    if v.is_allow() {
                        allowed.fetch_add(1, Ordering::SeqCst);
                    } else {
                        assert_eq!(v.reason_code(), "limit", "{v:?}");
                    }
                }
            });
        }
    });
    assert_eq!(allowed.load(Ordering::SeqCst), 20);
    for e in engines {
        let state = e.session(s).unwrap();
        assert_eq!(state.calls, 80);
        assert_eq!(state.limits.iter().map(|l| l.used).max(), Some(20));
    }
}

#[test]
fn session_numbers_come_from_the_store_and_each_engine_sees_the_others() {
    let store = Arc::new(MemoryStore::default());
    let (a, b) = pair(&store);
    let s1 = a.open_session("scribe", SessionOptions::default()).unwrap();
    let s2 = b.open_session("scribe", SessionOptions::default()).unwrap();
    assert_ne!(s1, s2);
    assert!(b.decide(s1, &Call::new("read_schedule")).is_allow());
    assert_eq!(a.session(s1).unwrap().calls, 1);
    assert_eq!(b.start_task(s1).unwrap(), 2);
    assert_eq!(a.session(s1).unwrap().task, 2);
    a.close_session(s1).unwrap();
    let v = b.decide(s1, &Call::new("read_schedule"));
    assert_eq!(v.reason_code(), "session", "{v:?}");
}

#[test]
fn the_kill_switch_is_the_stores() {
    let store = Arc::new(MemoryStore::default());
    let (a, b) = pair(&store);
    let s = a.open_session("scribe", SessionOptions::default()).unwrap();
    a.kill_agent("scribe", "oncall").unwrap();
    assert_eq!(
        b.decide(s, &Call::new("read_schedule")).reason_code(),
        "suspended"
    );
    b.resume_agent("scribe", "oncall").unwrap();
    assert!(a.decide(s, &Call::new("read_schedule")).is_allow());
    b.kill_all("oncall").unwrap();
    assert_eq!(
        a.decide(s, &Call::new("read_schedule")).reason_code(),
        "suspended"
    );
    a.resume_all("oncall").unwrap();
    assert!(b.decide(s, &Call::new("read_schedule")).is_allow());
}

#[test]
fn a_store_that_fails_denies_with_its_reason_and_recovery_needs_no_restart() {
    let store = Arc::new(MemoryStore::default());
    let (a, _b) = pair(&store);
    let s = a.open_session("scribe", SessionOptions::default()).unwrap();
    assert!(a.decide(s, &Call::new("read_schedule")).is_allow());
    store.down.store(true, Ordering::SeqCst);
    let v = a.decide(s, &Call::new("read_schedule"));
    assert_eq!(v.outcome, Outcome::Deny);
    assert_eq!(
        v.reason,
        Reason::Internal(Internal::State("the test took the store down".into()))
    );
    assert!(a.state_failure().is_some());
    assert!(
        a.kill_all("oncall").is_err(),
        "a kill the store did not take is an error"
    );
    assert!(a.open_session("scribe", SessionOptions::default()).is_err());
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(a.state_failure(), None);
    assert!(a.decide(s, &Call::new("read_schedule")).is_allow());
    assert_eq!(
        a.session(s).unwrap().calls,
        2,
        "the failed call changed nothing"
    );
}
