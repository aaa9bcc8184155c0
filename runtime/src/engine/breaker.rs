//! Circuit breakers of one agent, across all its sessions: each of the agent's
//! `breaker` declarations watches a metric over a sliding window (error rate of reported
//! results, calls decided, tokens reported, denials) and trips when the comparison
//! holds. A tripped breaker suspends the agent (or the engine, by its scope) until it is
//! reset, or, with a cool-down configured, until a probe call reports success.
//!
//! States: closed (counting) → open (tripped; every call suspended) → after the
//! cool-down, half-open: the next call is the probe and runs; its good result closes the
//! breaker (windows emptied), an error re-opens it for another cool-down. A probe that
//! never reports is replaced after one more cool-down.

use std::collections::VecDeque;

use super::call::CallRef;
use crate::table::{Breaker, BreakerMetric, SuspendScope};

/// Something a breaker may count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A call was decided (not counting calls refused as suspended).
    Decided { denied: bool },
    /// A result was reported.
    Reported { ok: bool, tokens: u64 },
}

/// Per-millisecond buckets over a window: (time, events, errors or tokens).
#[derive(Debug, Clone, Default)]
struct MetricWindow {
    buckets: VecDeque<(i64, u64, u64)>,
    count: u64,
    sum: u64,
}

impl MetricWindow {
    fn add(&mut self, now: i64, span: i64, count: u64, sum: u64) {
        while let Some(&(t, c, s)) = self.buckets.front() {
            if t > now.saturating_sub(span) {
                break;
            }
            self.count = self.count.saturating_sub(c);
            self.sum = self.sum.saturating_sub(s);
            self.buckets.pop_front();
        }
        match self.buckets.back_mut() {
            Some((t, c, s)) if *t == now => {
                *c = c.saturating_add(count);
                *s = s.saturating_add(sum);
            }
            _ => self.buckets.push_back((now, count, sum)),
        }
        self.count = self.count.saturating_add(count);
        self.sum = self.sum.saturating_add(sum);
    }
}

/// A tripped breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trip {
    pub def: Breaker,
    /// The metric's value when it tripped (millionths for an error rate).
    pub observed: i64,
    pub since_ms: i64,
    pub probe: Option<(CallRef, i64)>,
}

impl Trip {
    pub(crate) fn scope(&self) -> SuspendScope {
        self.def.scope
    }
}

/// Whether a call of the agent may pass its breakers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    Closed,
    /// Tripped: the call is suspended, in this scope.
    Open(SuspendScope),
    /// Half-open: this call is the probe.
    Probe,
}

/// What a reported result did to a tripped breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    Tripped(Trip),
    /// The probe succeeded; the breaker is closed again.
    Closed(Trip),
    /// The probe failed; open for another cool-down.
    Reopened(Trip),
}

#[derive(Debug, Default)]
pub(crate) struct BreakerState {
    defs: Vec<Breaker>,
    windows: Vec<MetricWindow>,
    pub trip: Option<Trip>,
}

impl BreakerState {
    /// Follows the agent's breaker declarations; changed declarations start empty.
    fn sync(&mut self, defs: &[Breaker]) {
        if self.defs != defs {
            self.defs = defs.to_vec();
            self.windows = vec![MetricWindow::default(); defs.len()];
        }
    }

    /// Counts an event; returns the trip if one of the breakers trips on it.
    pub(crate) fn record(
        &mut self,
        defs: &[Breaker],
        event: Event,
        now: i64,
        min_results: u32,
    ) -> Option<Transition> {
        self.sync(defs);
        if self.trip.is_some() {
            return None;
        }
        for (def, window) in self.defs.iter().zip(&mut self.windows) {
            let (count, sum) = match (def.metric, event) {
                (BreakerMetric::ErrorRate, Event::Reported { ok, .. }) => (1, u64::from(!ok)),
                (BreakerMetric::Tokens, Event::Reported { tokens, .. }) => (1, tokens),
                (BreakerMetric::Calls, Event::Decided { .. }) => (1, 0),
                (BreakerMetric::Denials, Event::Decided { denied: true }) => (1, 0),
                _ => continue,
            };
            window.add(now, def.window_ms, count, sum);
            let value = match def.metric {
                BreakerMetric::ErrorRate => {
                    if window.count < u64::from(min_results.max(1)) {
                        continue;
                    }
                    let rate = u128::from(window.sum) * 1_000_000 / u128::from(window.count);
                    i64::try_from(rate).unwrap_or(i64::MAX)
                }
                BreakerMetric::Tokens => i64::try_from(window.sum).unwrap_or(i64::MAX),
                BreakerMetric::Calls | BreakerMetric::Denials => {
                    i64::try_from(window.count).unwrap_or(i64::MAX)
                }
            };
            if def.op.holds(value, def.value) {
                let trip = Trip {
                    def: *def,
                    observed: value,
                    since_ms: now,
                    probe: None,
                };
                self.trip = Some(trip);
                return Some(Transition::Tripped(trip));
            }
        }
        None
    }

    /// Whether `call` may pass; in half-open state the first call becomes the probe.
    pub(crate) fn gate(&mut self, now: i64, cooldown_ms: Option<i64>, call: CallRef) -> Gate {
        let Some(trip) = &mut self.trip else {
            return Gate::Closed;
        };
        let Some(cooldown) = cooldown_ms else {
            return Gate::Open(trip.scope());
        };
        if now < trip.since_ms.saturating_add(cooldown) {
            return Gate::Open(trip.scope());
        }
        match trip.probe {
            Some((_, at)) if now < at.saturating_add(cooldown) => Gate::Open(trip.scope()),
            _ => {
                trip.probe = Some((call, now));
                Gate::Probe
            }
        }
    }

    /// A result of `call`: if it is the probe's, the breaker closes or re-opens.
    pub(crate) fn probe_result(&mut self, call: CallRef, ok: bool, now: i64) -> Option<Transition> {
        let trip = self.trip.as_mut()?;
        if trip.probe.map(|(c, _)| c) != Some(call) {
            return None;
        }
        if ok {
            let closed = *trip;
            self.reset();
            Some(Transition::Closed(closed))
        } else {
            trip.since_ms = now;
            trip.probe = None;
            Some(Transition::Reopened(*trip))
        }
    }

    /// Closes the breaker and empties its windows; returns the trip it ended.
    pub(crate) fn reset(&mut self) -> Option<Trip> {
        self.windows = vec![MetricWindow::default(); self.defs.len()];
        self.trip.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CmpOp;

    fn error_rate(percent: i64) -> Breaker {
        Breaker {
            metric: BreakerMetric::ErrorRate,
            op: CmpOp::Gt,
            value: percent * 10_000,
            window_ms: 300_000,
            scope: SuspendScope::Agent,
        }
    }

    const CALL: CallRef = CallRef {
        session: super::super::SessionId(1),
        n: 1,
    };

    #[test]
    fn an_error_rate_needs_the_minimum_results_then_trips_above_the_threshold() {
        let defs = [error_rate(20)];
        let mut b = BreakerState::default();
        let ok = Event::Reported {
            ok: true,
            tokens: 0,
        };
        let err = Event::Reported {
            ok: false,
            tokens: 0,
        };
        assert_eq!(
            b.record(&defs, err, 0, 5),
            None,
            "1 of 1 is below the minimum"
        );
        for _ in 0..8 {
            assert_eq!(b.record(&defs, ok, 1, 5), None);
        }
        // 2 errors in 10 results: 20%, not above 20%.
        assert_eq!(b.record(&defs, err, 2, 5), None);
        match b.record(&defs, err, 3, 5) {
            Some(Transition::Tripped(t)) => assert_eq!(t.observed, 272_727),
            other => panic!("expected a trip, got {other:?}"),
        }
    }

    #[test]
    fn old_results_leave_the_window() {
        let defs = [error_rate(50)];
        let mut b = BreakerState::default();
        let err = Event::Reported {
            ok: false,
            tokens: 0,
        };
        let ok = Event::Reported {
            ok: true,
            tokens: 0,
        };
        assert_eq!(b.record(&defs, err, 0, 2), None);
        // At 300_000 the error at 0 has left the 5 minute window: 1 of 1 is ok.
        assert_eq!(b.record(&defs, ok, 300_000, 1), None);
        assert_eq!(b.record(&defs, ok, 300_001, 1), None);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_result_decides() {
        let defs = [error_rate(0)];
        let mut b = BreakerState::default();
        let err = Event::Reported {
            ok: false,
            tokens: 0,
        };
        assert!(b.record(&defs, err, 0, 1).is_some());
        assert_eq!(b.gate(10, None, CALL), Gate::Open(SuspendScope::Agent));
        assert_eq!(b.gate(10, Some(100), CALL), Gate::Open(SuspendScope::Agent));
        assert_eq!(b.gate(100, Some(100), CALL), Gate::Probe);
        let other = CallRef { n: 2, ..CALL };
        assert_eq!(
            b.gate(101, Some(100), other),
            Gate::Open(SuspendScope::Agent)
        );
        assert!(matches!(
            b.probe_result(CALL, false, 150),
            Some(Transition::Reopened(_))
        ));
        assert_eq!(
            b.gate(200, Some(100), other),
            Gate::Open(SuspendScope::Agent)
        );
        assert_eq!(b.gate(250, Some(100), other), Gate::Probe);
        assert!(matches!(
            b.probe_result(other, true, 260),
            Some(Transition::Closed(_))
        ));
        assert_eq!(b.gate(261, Some(100), CALL), Gate::Closed);
    }
}
