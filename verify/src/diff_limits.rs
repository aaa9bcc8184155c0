//! The diff of an agent's limits and breakers, the engine's counters: which limits and
//! breakers NEW keeps by implication (a limit of the same unit, no higher, over a window
//! that contains OLD's; a breaker that trips at least as early and suspends at least as
//! much), and a witness trace for a limit NEW no longer enforces (`count + 1` calls in
//! one window, at one instant or spread so NEW's limits admit them).
//!
//! Must not: run the engine; a breaker change is reported structurally (tripping it
//! needs results and errors no single request shows).

use agentpolicy_runtime::{self as rt, BreakerMetric, CmpOp, LimitUnit, LimitWindow, SuspendScope};

use super::Ctx;
use super::diff_decls::{ChangeKind, DeclChange, Witness, change, permitted};
use agentpolicy::values::duration;

fn limit_text(l: &rt::Limit) -> String {
    let unit = match l.unit {
        LimitUnit::Calls => "calls",
        LimitUnit::Tokens => "tokens",
    };
    format!("{} {unit} per {}", l.count, window_word(l.window))
}

fn window_word(w: LimitWindow) -> &'static str {
    match w {
        LimitWindow::Task => "task",
        LimitWindow::Session => "session",
        LimitWindow::Minute => "minute",
        LimitWindow::Hour => "hour",
        LimitWindow::Day => "day",
    }
}

/// Every interval the window `inner` counts lies within one interval of `outer`: a
/// task within its session, any minute within an hour or a day, and any sliding window
/// within the session (usage is counted per session).
fn within(inner: LimitWindow, outer: LimitWindow) -> bool {
    use LimitWindow::{Day, Hour, Minute, Session, Task};
    inner == outer
        || matches!(
            (inner, outer),
            (Minute, Hour | Day | Session) | (Hour, Day | Session) | (Day | Task, Session)
        )
}

/// `b` admits no sequence of calls that `a` refuses: `b` counts the same unit over a
/// window that contains `a`'s, and allows no more.
fn limit_implies(b: &rt::Limit, a: &rt::Limit) -> bool {
    b.unit == a.unit && b.count <= a.count && within(a.window, b.window)
}

pub(super) fn limits(
    new: &Ctx<'_>,
    was: &rt::Agent,
    now: &rt::Agent,
    subject: &str,
    out: &mut Vec<DeclChange>,
) {
    let agent = new.data.agents.iter().position(|a| a.name == now.name);
    for l in &was.limits {
        if now.limits.iter().any(|n| limit_implies(n, l)) {
            continue;
        }
        let same = now
            .limits
            .iter()
            .find(|n| n.unit == l.unit && n.window == l.window);
        let what = match same {
            Some(n) => format!("limit `{}` raised to `{}`", limit_text(l), limit_text(n)),
            None => match now
                .limits
                .iter()
                .find(|n| n.unit == l.unit && n.count <= l.count)
            {
                Some(n) => format!(
                    "limit `{}` -> `{}`: the new window does not contain the old one",
                    limit_text(l),
                    limit_text(n)
                ),
                None => format!("limit `{}` removed", limit_text(l)),
            },
        };
        let mut c = change(ChangeKind::Limit, true, subject.into(), what);
        if l.unit == LimitUnit::Calls
            && let Some(pace) = spread(l, &now.limits)
        {
            c.witness = agent.and_then(|a| permitted(new, a)).map(|call| Witness {
                trace: format!(
                    "{} calls like this one in one {}{pace}: OLD denies the last (limit), NEW decides {}",
                    l.count.saturating_add(1),
                    window_word(l.window),
                    call.outcome
                ),
                request: Some(call),
            });
        }
        out.push(c);
    }
    for n in &now.limits {
        if was.limits.iter().any(|l| limit_implies(l, n)) {
            continue;
        }
        let same = was
            .limits
            .iter()
            .find(|l| l.unit == n.unit && l.window == n.window);
        let what = match same {
            Some(l) => format!("limit `{}` lowered to `{}`", limit_text(l), limit_text(n)),
            None => match was
                .limits
                .iter()
                .find(|l| l.unit == n.unit && l.count >= n.count)
            {
                Some(l) => format!(
                    "limit `{}` -> `{}`: the new window contains the old one",
                    limit_text(l),
                    limit_text(n)
                ),
                None => format!("limit `{}` added", limit_text(n)),
            },
        };
        out.push(change(ChangeKind::Limit, false, subject.into(), what));
    }
}

/// How to place `old.count + 1` calls within one of `old`'s windows so that no limit
/// of `new` refuses one: `Some("")` at one instant, `Some(", one every N")` spread
/// evenly, `None` when neither works (a task or session limit of NEW counts them all).
fn spread(old: &rt::Limit, new: &[rt::Limit]) -> Option<String> {
    let calls = old.count.saturating_add(1);
    let tight: Vec<&rt::Limit> = new
        .iter()
        .filter(|n| n.unit == old.unit && n.count < calls)
        .collect();
    if tight.is_empty() {
        return Some(String::new());
    }
    let span = window_ms(old.window)?;
    let gap = (span - 1) / i64::try_from(old.count).ok()?.max(1);
    if gap == 0 {
        return None;
    }
    // A window of `s` ms holds at most s / gap + 1 of the spread calls.
    let admits = |n: &&rt::Limit| {
        window_ms(n.window).is_some_and(|s| u64::try_from(s / gap + 1).is_ok_and(|k| k <= n.count))
    };
    tight
        .iter()
        .all(admits)
        .then(|| format!(", one every {}", duration(gap)))
}

fn window_ms(w: LimitWindow) -> Option<i64> {
    match w {
        LimitWindow::Minute => Some(60_000),
        LimitWindow::Hour => Some(3_600_000),
        LimitWindow::Day => Some(86_400_000),
        LimitWindow::Task | LimitWindow::Session => None,
    }
}

fn breaker_text(b: &rt::Breaker) -> String {
    let metric = match b.metric {
        BreakerMetric::ErrorRate => "error_rate",
        BreakerMetric::Calls => "calls",
        BreakerMetric::Tokens => "tokens",
        BreakerMetric::Denials => "denials",
    };
    let op = match b.op {
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
    };
    let value = match b.metric {
        BreakerMetric::ErrorRate => {
            format!(
                "{}%",
                agentpolicy::values::decimal(b.value.saturating_mul(100))
            )
        }
        _ => b.value.to_string(),
    };
    let scope = match b.scope {
        SuspendScope::Agent => "suspend",
        SuspendScope::Engine => "suspend engine",
    };
    format!(
        "{metric} {op} {value} over {} then {scope}",
        duration(b.window_ms)
    )
}

/// `b` trips whenever `a` does (same metric and comparison, a threshold at least as easy
/// to pass, a window that counts at least as much) and suspends at least as much.
fn breaker_implies(b: &rt::Breaker, a: &rt::Breaker) -> bool {
    let threshold = match a.op {
        CmpOp::Gt | CmpOp::Ge => b.value <= a.value,
        CmpOp::Lt | CmpOp::Le => b.value >= a.value,
        CmpOp::Eq | CmpOp::Ne => b.value == a.value,
    };
    // A count over a longer window is at least as large; a rate is not monotone in
    // its window.
    let window = match a.metric {
        BreakerMetric::ErrorRate => b.window_ms == a.window_ms,
        _ => b.window_ms >= a.window_ms,
    };
    let scope = b.scope == a.scope || b.scope == SuspendScope::Engine;
    b.metric == a.metric && b.op == a.op && threshold && window && scope
}

pub(super) fn breakers(was: &rt::Agent, now: &rt::Agent, subject: &str, out: &mut Vec<DeclChange>) {
    for a in &was.breakers {
        if now.breakers.iter().any(|b| breaker_implies(b, a)) {
            continue;
        }
        let similar = now.breakers.iter().find(|b| b.metric == a.metric);
        let what = match similar {
            Some(b) if b.scope == SuspendScope::Agent && a.scope == SuspendScope::Engine => {
                format!(
                    "breaker `{}` weakened to `{}`: it no longer suspends the engine",
                    breaker_text(a),
                    breaker_text(b)
                )
            }
            Some(b) => format!(
                "breaker `{}` relaxed to `{}`: it trips later or never where the old one tripped",
                breaker_text(a),
                breaker_text(b)
            ),
            None => format!("breaker `{}` removed", breaker_text(a)),
        };
        out.push(change(ChangeKind::Breaker, true, subject.into(), what));
    }
    for b in &now.breakers {
        if was.breakers.iter().any(|a| breaker_implies(a, b)) {
            continue;
        }
        out.push(change(
            ChangeKind::Breaker,
            false,
            subject.into(),
            format!("breaker `{}` added or tightened", breaker_text(b)),
        ));
    }
}
