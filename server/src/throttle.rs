//! Refusals are audited without letting a flood of bad requests grow the audit log
//! without bound: in each second the first [`PER_SECOND`] refusals are written one
//! record each; the rest are counted by caller and reason, and one `refusal` record
//! (`by`: `throttled`) says how many were refused and by whom when the second is over.
//! Every refusal is thus in the log, one by one or counted; the 401 or 403 goes out
//! either way.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refusals written one record each per second.
pub const PER_SECOND: u32 = 100;

/// The most distinct (caller, reason) pairs a summary names; the rest are summed.
const MAX_NAMED: usize = 20;

#[derive(Debug)]
struct Window {
    start: Instant,
    written: u32,
    /// (caller, what was asked) → count, beyond the per-second allowance.
    held: BTreeMap<(String, String), u64>,
}

#[derive(Debug)]
pub struct Throttle {
    window: Mutex<Window>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            window: Mutex::new(Window {
                start: Instant::now(),
                written: 0,
                held: BTreeMap::new(),
            }),
        }
    }
}

/// What to do with one refusal.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Write it; first write `summary` (a past second's held refusals), if any.
    Write { summary: Option<String> },
    /// Counted for the summary.
    Held,
}

impl Throttle {
    /// Takes one refusal at `now`.
    pub fn admit(&self, now: Instant, who: &str, what: &str) -> Admit {
        let Ok(mut w) = self.window.lock() else {
            // A poisoned lock must not stop refusals from being recorded.
            return Admit::Write { summary: None };
        };
        let summary = roll(&mut w, now);
        if w.written < PER_SECOND {
            w.written += 1;
            Admit::Write { summary }
        } else {
            *w.held.entry((who.to_owned(), what.to_owned())).or_default() += 1;
            match summary {
                // A summary came due while this one is held: it must still be written.
                Some(s) => Admit::Write { summary: Some(s) },
                None => Admit::Held,
            }
        }
    }

    /// The summary of a second that is over, for a timer to write when no refusal
    /// comes to carry it.
    pub fn due(&self, now: Instant) -> Option<String> {
        let mut w = self.window.lock().ok()?;
        roll(&mut w, now)
    }
}

/// Starts a new window when a second has passed; returns the old one's summary.
fn roll(w: &mut Window, now: Instant) -> Option<String> {
    if now.duration_since(w.start) < Duration::from_secs(1) {
        return None;
    }
    let held = std::mem::take(&mut w.held);
    let secs = now.duration_since(w.start).as_secs_f64();
    w.start = now;
    w.written = 0;
    if held.is_empty() {
        return None;
    }
    let total: u64 = held.values().sum();
    let mut top: Vec<((String, String), u64)> = held.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut parts: Vec<String> = top
        .iter()
        .take(MAX_NAMED)
        .map(|((who, what), n)| format!("{n} × {who} ({what})"))
        .collect();
    let rest: u64 = top.iter().skip(MAX_NAMED).map(|(_, n)| n).sum();
    if rest > 0 {
        parts.push(format!("{rest} more"));
    }
    Some(format!(
        "{total} refusals in {secs:.1} s beyond {PER_SECOND} a second, counted rather than written one by one: {}",
        parts.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_allowance_refusals_are_counted_and_summarised_once() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..PER_SECOND {
            assert_eq!(
                t.admit(t0, "anonymous", "GET /x"),
                Admit::Write { summary: None }
            );
        }
        for _ in 0..5 {
            assert_eq!(t.admit(t0, "anonymous", "GET /x"), Admit::Held);
        }
        assert_eq!(t.admit(t0, "bot", "POST /v1/kill"), Admit::Held);
        assert_eq!(t.due(t0), None, "the second is not over");
        let later = t0 + Duration::from_millis(1_500);
        let summary = t.due(later).expect("a summary");
        assert!(summary.starts_with("6 refusals"), "{summary}");
        assert!(summary.contains("5 × anonymous (GET /x)"), "{summary}");
        assert!(summary.contains("1 × bot (POST /v1/kill)"), "{summary}");
        assert_eq!(t.due(later), None, "written once");
        assert_eq!(
            t.admit(later, "anonymous", "GET /x"),
            Admit::Write { summary: None }
        );
    }
}
