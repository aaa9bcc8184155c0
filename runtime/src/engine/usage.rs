//! Usage counters behind an agent's limits, kept per session: calls and tokens in the
//! current task, in the session, and in sliding windows of a minute, an hour or a day.
//! Windows keep exact timestamps (merged per millisecond), so "20 calls per minute"
//! means any 60,000 ms, not a calendar minute.

use std::collections::VecDeque;

use crate::request::MAX_LIMITS;
use crate::table::{Limit, LimitUnit, LimitWindow};

/// The length of a sliding window, in ms; `None` for task and session counters.
pub(crate) fn span_ms(window: LimitWindow) -> Option<i64> {
    match window {
        LimitWindow::Minute => Some(60_000),
        LimitWindow::Hour => Some(3_600_000),
        LimitWindow::Day => Some(86_400_000),
        LimitWindow::Task | LimitWindow::Session => None,
    }
}

/// Amounts over the last `span` ms.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    unit: LimitUnit,
    span: i64,
    events: VecDeque<(i64, u64)>,
    total: u64,
}

impl Window {
    pub(crate) fn new(unit: LimitUnit, span: i64) -> Window {
        Window {
            unit,
            span,
            events: VecDeque::new(),
            total: 0,
        }
    }

    /// An event at `t` counts while `t > now - span`.
    fn prune(&mut self, now: i64) {
        while let Some(&(t, n)) = self.events.front() {
            if t > now.saturating_sub(self.span) {
                break;
            }
            self.total = self.total.saturating_sub(n);
            self.events.pop_front();
        }
    }

    fn add(&mut self, now: i64, n: u64) {
        self.prune(now);
        match self.events.back_mut() {
            Some((t, m)) if *t == now => *m = m.saturating_add(n),
            _ => self.events.push_back((now, n)),
        }
        self.total = self.total.saturating_add(n);
    }

    fn used(&mut self, now: i64) -> u64 {
        self.prune(now);
        self.total
    }
}

/// A session's counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Usage {
    task_calls: u64,
    task_tokens: u64,
    session_calls: u64,
    session_tokens: u64,
    windows: Vec<Window>,
}

impl Usage {
    pub(crate) fn for_limits(limits: &[Limit]) -> Usage {
        let mut usage = Usage::default();
        usage.adapt(limits);
        usage
    }

    /// Makes sure every sliding limit has a window; windows no limit uses are dropped.
    /// A limit new to the session (after a table swap) starts counting now.
    pub(crate) fn adapt(&mut self, limits: &[Limit]) {
        let wanted: Vec<(LimitUnit, i64)> = limits
            .iter()
            .filter_map(|l| span_ms(l.window).map(|s| (l.unit, s)))
            .collect();
        self.windows
            .retain(|w| wanted.iter().any(|&(u, s)| u == w.unit && s == w.span));
        for (unit, span) in wanted {
            if !self
                .windows
                .iter()
                .any(|w| w.unit == unit && w.span == span)
            {
                self.windows.push(Window::new(unit, span));
            }
        }
    }

    /// The counter of each limit at `now`, by limit index, as `decide` reads them.
    pub(crate) fn view(&mut self, limits: &[Limit], now: i64) -> [u64; MAX_LIMITS] {
        let mut out = [0; MAX_LIMITS];
        for (slot, limit) in out.iter_mut().zip(limits) {
            *slot = self.used(limit, now);
        }
        out
    }

    pub(crate) fn used(&mut self, limit: &Limit, now: i64) -> u64 {
        match (limit.window, limit.unit) {
            (LimitWindow::Task, LimitUnit::Calls) => self.task_calls,
            (LimitWindow::Task, LimitUnit::Tokens) => self.task_tokens,
            (LimitWindow::Session, LimitUnit::Calls) => self.session_calls,
            (LimitWindow::Session, LimitUnit::Tokens) => self.session_tokens,
            (window, unit) => {
                let span = span_ms(window).unwrap_or(0);
                self.windows
                    .iter_mut()
                    .find(|w| w.unit == unit && w.span == span)
                    // A limit without a window fails closed: it reads as exhausted.
                    .map_or(u64::MAX, |w| w.used(now))
            }
        }
    }

    pub(crate) fn add_call(&mut self, now: i64) {
        self.task_calls = self.task_calls.saturating_add(1);
        self.session_calls = self.session_calls.saturating_add(1);
        for w in self
            .windows
            .iter_mut()
            .filter(|w| w.unit == LimitUnit::Calls)
        {
            w.add(now, 1);
        }
    }

    pub(crate) fn add_tokens(&mut self, now: i64, tokens: u64) {
        self.task_tokens = self.task_tokens.saturating_add(tokens);
        self.session_tokens = self.session_tokens.saturating_add(tokens);
        for w in self
            .windows
            .iter_mut()
            .filter(|w| w.unit == LimitUnit::Tokens)
        {
            w.add(now, tokens);
        }
    }

    pub(crate) fn new_task(&mut self) {
        self.task_calls = 0;
        self.task_tokens = 0;
    }

    /// The counters as a shared state store keeps them (every window event, so a
    /// sliding window stays exact across engines).
    pub(crate) fn snapshot(&self) -> super::state::UsageSnapshot {
        super::state::UsageSnapshot {
            task_calls: self.task_calls,
            task_tokens: self.task_tokens,
            session_calls: self.session_calls,
            session_tokens: self.session_tokens,
            windows: self
                .windows
                .iter()
                .map(|w| (w.unit, w.span, w.events.iter().copied().collect()))
                .collect(),
        }
    }

    /// The counters a snapshot holds, adapted to `limits` like a table swap does.
    pub(crate) fn from_snapshot(s: super::state::UsageSnapshot, limits: &[Limit]) -> Usage {
        let mut usage = Usage {
            task_calls: s.task_calls,
            task_tokens: s.task_tokens,
            session_calls: s.session_calls,
            session_tokens: s.session_tokens,
            windows: s
                .windows
                .into_iter()
                .map(|(unit, span, events)| Window {
                    unit,
                    span,
                    total: events.iter().fold(0u64, |t, &(_, n)| t.saturating_add(n)),
                    events: events.into(),
                })
                .collect(),
        };
        usage.adapt(limits);
        usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(count: u64, unit: LimitUnit, window: LimitWindow) -> Limit {
        Limit {
            count,
            unit,
            window,
        }
    }

    #[test]
    fn a_sliding_minute_forgets_calls_exactly_60_seconds_later() {
        let limits = [limit(2, LimitUnit::Calls, LimitWindow::Minute)];
        let mut u = Usage::for_limits(&limits);
        u.add_call(0);
        u.add_call(30_000);
        assert_eq!(u.view(&limits, 59_999)[0], 2);
        assert_eq!(u.view(&limits, 60_000)[0], 1);
        assert_eq!(u.view(&limits, 90_000)[0], 0);
    }

    #[test]
    fn task_counters_reset_with_a_new_task_and_session_counters_do_not() {
        let limits = [
            limit(100, LimitUnit::Calls, LimitWindow::Task),
            limit(1_000, LimitUnit::Tokens, LimitWindow::Session),
            limit(500, LimitUnit::Tokens, LimitWindow::Hour),
        ];
        let mut u = Usage::for_limits(&limits);
        u.add_call(0);
        u.add_tokens(0, 300);
        u.add_tokens(10, 200);
        assert_eq!(&u.view(&limits, 10)[..3], &[1, 500, 500]);
        u.new_task();
        assert_eq!(&u.view(&limits, 3_600_000)[..3], &[0, 500, 200]);
    }

    #[test]
    fn a_limit_added_by_a_swap_gets_a_window() {
        let mut u = Usage::for_limits(&[]);
        let limits = [limit(5, LimitUnit::Calls, LimitWindow::Day)];
        assert_eq!(u.used(&limits[0], 0), u64::MAX, "no window: fail closed");
        u.adapt(&limits);
        u.add_call(0);
        assert_eq!(u.used(&limits[0], 0), 1);
    }
}
