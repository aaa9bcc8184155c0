//! Shadow comparison: the platform records what a human did for the same task as a
//! call the policy decided. The record is its own `human` record, linked to the
//! decision by session name and call number; reports pair the two.

use super::call::CallRef;
use super::{EngineError, Inner};
use crate::audit::{Ack, HumanAction, Record, RecordKind};

impl Inner {
    pub(crate) fn record_human(
        &self,
        call: CallRef,
        action: HumanAction,
        by: &str,
    ) -> Result<Option<Ack>, EngineError> {
        let now = self.clock.now_ms();
        let guard = self.lock_shard(call.session)?;
        let session = guard
            .sessions
            .get(&call.session.0)
            .ok_or(EngineError::UnknownSession(call.session))?;
        if call.n == 0 || call.n > session.calls {
            return Err(EngineError::UnknownCall(call));
        }
        let mut r = Record::new(RecordKind::Human, now);
        r.table = Some(guard.loaded.hash);
        r.session = Some(session.name.clone());
        r.session_id = Some(call.session.0);
        r.agent = Some(session.agent_name.clone());
        r.call = Some(call.n);
        r.context = session.context.clone();
        r.human = Some(action);
        r.by = Some(by.to_owned());
        let ack = self.enqueue(r)?;
        drop(guard);
        self.wait(ack)?;
        Ok(ack)
    }
}
