//! The part of the semantic diff that the rule stage does not see: every declaration that
//! decides what gets through besides the rules (modes and lifecycle stages, integrity
//! labels, limits, breakers, credentials, tier ceilings, clearances and resource tiers,
//! audit retention), compared between two policies and classified as widening (NEW lets
//! more through, or keeps less of the record) or narrowing. A change comes with a witness
//! where one exists (a request both runtimes replay, or a described trace) and is
//! reported as structural where none does. Route timeouts are compared per request in
//! `diff.rs`, since which routes a request escalates to depends on its rules.
//!
//! Must not: decide anything itself (the runtime replays each request witness), or
//! compare declarations that cannot change what gets through (owners, purposes, notify
//! destinations).

use agentpolicy_runtime::{
    self as rt, BreakerMetric, CmpOp, LimitUnit, LimitWindow, Mode, Outcome, Period, SuspendScope,
};

use z3::ast::{Ast, Bool};

use super::cells::{self, CellInfo, Found, Permitted};
use super::counterexample::{Access, Call};
use super::{Ctx, access};
use crate::model::{AgentDef, Cond, Stage, Term};
use crate::values::duration;

/// What kind of declaration a change is about; `keyword` is the stable JSON `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    /// The rule stage decides a request differently.
    Rule,
    /// An escalation left unanswered ends differently (outcome or deadline).
    RouteTimeout,
    Mode,
    Stage,
    /// `untrusted` on a resource or tool.
    Integrity,
    Limit,
    Breaker,
    Credential,
    /// An agent's `max tier`.
    MaxTier,
    /// A sink's clearance.
    Clearance,
    /// A resource's tier.
    ResourceTier,
    /// The tier order itself.
    Tiers,
    Retention,
}

impl ChangeKind {
    pub fn keyword(self) -> &'static str {
        match self {
            ChangeKind::Rule => "rule",
            ChangeKind::RouteTimeout => "route_timeout",
            ChangeKind::Mode => "mode",
            ChangeKind::Stage => "stage",
            ChangeKind::Integrity => "integrity",
            ChangeKind::Limit => "limit",
            ChangeKind::Breaker => "breaker",
            ChangeKind::Credential => "credential",
            ChangeKind::MaxTier => "max_tier",
            ChangeKind::Clearance => "clearance",
            ChangeKind::ResourceTier => "resource_tier",
            ChangeKind::Tiers => "tiers",
            ChangeKind::Retention => "retention",
        }
    }
}

/// One changed declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclChange {
    pub kind: ChangeKind,
    pub widening: bool,
    /// What was declared: "agent `intake`", "resource `mailbox`", "audit retention".
    pub subject: String,
    /// What changed, as a sentence: "limit `100 calls per task` removed".
    pub what: String,
    /// A request or trace NEW treats more permissively (less, for a narrowing);
    /// `None` for a structural change.
    pub witness: Option<Witness>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    /// The trace in words ("101 calls of `t` in one task; OLD denies the last").
    pub trace: String,
    /// A request of the trace, as NEW decides it (the one OLD treats more strictly).
    pub request: Option<Call>,
}

/// Every changed declaration between the two sides.
pub fn compare(old: &Ctx<'_>, new: &Ctx<'_>) -> Vec<DeclChange> {
    let mut out = Vec::new();
    tiers(old, new, &mut out);
    for agent in &new.model.agents {
        let before = old.model.agents.iter().find(|a| a.name == agent.name);
        agent_changes(old, new, before, agent, &mut out);
    }
    for agent in &old.model.agents {
        if !new.model.agents.iter().any(|a| a.name == agent.name) {
            // Its calls are denied now: the rule diff reports them. Its credentials go.
            for c in &agent.credentials {
                out.push(change(
                    ChangeKind::Credential,
                    false,
                    format!("agent `{}`", agent.name),
                    format!("credential `{}` no longer held (the agent is gone)", c.name),
                ));
            }
        }
    }
    integrity(old, new, &mut out);
    retention(old, new, &mut out);
    out
}

fn change(kind: ChangeKind, widening: bool, subject: String, what: String) -> DeclChange {
    DeclChange {
        kind,
        widening,
        subject,
        what,
        witness: None,
    }
}

/// A tier's rank, read in NEW's order when both policies have it.
fn rank(old: &Ctx<'_>, new: &Ctx<'_>, name: &str) -> Option<usize> {
    let position = |c: &Ctx<'_>| c.data.tiers.iter().position(|t| t == name);
    position(new).or_else(|| position(old))
}

fn tier_name(ctx: &Ctx<'_>, id: rt::TierId) -> String {
    ctx.data
        .tiers
        .get(id.index())
        .cloned()
        .unwrap_or_else(|| format!("#{}", id.index()))
}

fn tiers(old: &Ctx<'_>, new: &Ctx<'_>, out: &mut Vec<DeclChange>) {
    // Tiers that both policies name must keep their relative order, or every label
    // compared by name below means something else.
    let common: Vec<&String> = old
        .data
        .tiers
        .iter()
        .filter(|t| new.data.tiers.contains(t))
        .collect();
    let in_new: Vec<&String> = new
        .data
        .tiers
        .iter()
        .filter(|t| old.data.tiers.contains(t))
        .collect();
    if common != in_new {
        out.push(change(
            ChangeKind::Tiers,
            true,
            "tiers".into(),
            format!(
                "the tier order changed from `{}` to `{}`: data of one tier may now be treated as lower",
                old.data.tiers.join(" < "),
                new.data.tiers.join(" < ")
            ),
        ));
    }
    // A resource's tier and a sink's clearance matter only against the ceilings and
    // clearances (tiers) data is compared with: each change is judged against NEW's other
    // declarations, so one change is reported once, under its own kind.
    let bounds: Vec<(String, Option<usize>)> = new
        .data
        .agents
        .iter()
        .filter_map(|a| {
            let t = a.max_tier?;
            Some((
                format!("agent `{}` (max tier)", a.name),
                rank(old, new, &tier_name(new, t)),
            ))
        })
        .chain(new.data.sinks.iter().map(|s| {
            (
                format!("sink `{}`", s.name),
                rank(old, new, &tier_name(new, s.clearance)),
            )
        }))
        .collect();
    for r in &new.data.resources {
        let Some(before) = old.data.resources.iter().find(|o| o.name == r.name) else {
            continue;
        };
        let (was, now) = (tier_name(old, before.tier), tier_name(new, r.tier));
        let (Some(a), Some(b)) = (rank(old, new, &was), rank(old, new, &now)) else {
            continue;
        };
        if a == b {
            continue;
        }
        let admits = |t: usize| -> Vec<&str> {
            bounds
                .iter()
                .filter(|(_, bound)| bound.is_some_and(|c| t <= c))
                .map(|(n, _)| n.as_str())
                .collect()
        };
        let (before_admit, now_admit) = (admits(a), admits(b));
        let opened: Vec<&str> = now_admit
            .iter()
            .copied()
            .filter(|n| !before_admit.contains(n))
            .collect();
        let closed: Vec<&str> = before_admit
            .iter()
            .copied()
            .filter(|n| !now_admit.contains(n))
            .collect();
        for (widening, who) in [(true, opened), (false, closed)] {
            if who.is_empty() {
                continue;
            }
            out.push(change(
                ChangeKind::ResourceTier,
                widening,
                format!("resource `{}`", r.name),
                format!(
                    "tier `{was}` -> `{now}`: {} {}",
                    if widening {
                        "now admitted by"
                    } else {
                        "no longer admitted by"
                    },
                    who.join(", ")
                ),
            ));
        }
    }
    for s in &new.data.sinks {
        let Some(before) = old.data.sinks.iter().find(|o| o.name == s.name) else {
            continue;
        };
        let (was, now) = (
            tier_name(old, before.clearance),
            tier_name(new, s.clearance),
        );
        let (Some(a), Some(b)) = (rank(old, new, &was), rank(old, new, &now)) else {
            continue;
        };
        if a == b {
            continue;
        }
        // The data whose admission changes: NEW's resources between the two clearances.
        let between: Vec<String> = new
            .data
            .resources
            .iter()
            .filter(|r| {
                rank(old, new, &tier_name(new, r.tier))
                    .is_some_and(|t| t > a.min(b) && t <= a.max(b))
            })
            .map(|r| format!("`{}`", r.name))
            .collect();
        if between.is_empty() {
            continue;
        }
        out.push(change(
            ChangeKind::Clearance,
            b > a,
            format!("sink `{}`", s.name),
            format!(
                "clearance `{was}` -> `{now}`: data of {} may {} be written to it",
                between.join(", "),
                if b > a { "now" } else { "no longer" }
            ),
        ));
    }
}

fn agent_changes(
    old: &Ctx<'_>,
    new: &Ctx<'_>,
    before: Option<&AgentDef>,
    agent: &AgentDef,
    out: &mut Vec<DeclChange>,
) {
    let subject = format!("agent `{}`", agent.name);
    let table_agent = |c: &Ctx<'_>| c.data.agents.iter().position(|a| a.name == agent.name);
    let (Some(na), oa) = (table_agent(new), table_agent(old)) else {
        return;
    };
    let now = &new.data.agents[na];
    let was = oa.map(|i| &old.data.agents[i]);
    // Mode. A new agent counts as enforced before (all its calls were denied).
    let was_mode = was.map_or(Mode::Enforce, |a| a.mode);
    if was_mode != now.mode {
        let widening = now.mode == Mode::Shadow;
        let mut c = change(
            ChangeKind::Mode,
            widening,
            subject.clone(),
            format!(
                "mode {} -> {}: {}",
                mode_word(was_mode),
                mode_word(now.mode),
                if widening {
                    "every call is reported allowed, whatever the policy decides"
                } else {
                    "calls the policy denies or escalates are no longer let through"
                }
            ),
        );
        // The witness: a request the policy does not allow, let through in shadow mode.
        let (shadowed, side) = if widening {
            (new, na)
        } else {
            (old, oa.unwrap_or(na))
        };
        c.witness = not_allowed(shadowed, side).map(|call| Witness {
            trace: format!(
                "the policy decides {}, and {} mode reports allow",
                call.outcome,
                if widening {
                    "NEW's shadow"
                } else {
                    "OLD's shadow"
                }
            ),
            request: Some(call),
        });
        out.push(c);
    }
    // Stage: its effects on rules and mode are reported as rule and mode changes too.
    let stage_rank = |s: Option<Stage>| s.unwrap_or(Stage::Autonomous);
    if let Some(b) = before {
        let (s0, s1) = (
            b.stage.as_ref().map(|s| s.stage),
            agent.stage.as_ref().map(|s| s.stage),
        );
        if stage_rank(s0) != stage_rank(s1) {
            out.push(change(
                ChangeKind::Stage,
                stage_rank(s1) > stage_rank(s0),
                subject.clone(),
                format!(
                    "stage {} -> {} (its effect on each call is listed under rule and mode)",
                    stage_rank(s0).keyword(),
                    stage_rank(s1).keyword()
                ),
            ));
        }
    }
    credentials(before, agent, &subject, out);
    let Some(was) = was else {
        return;
    };
    max_tier(old, new, was, now, agent, &subject, out);
    limits(new, was, now, &subject, out);
    breakers(was, now, &subject, out);
}

fn mode_word(m: Mode) -> &'static str {
    match m {
        Mode::Shadow => "shadow",
        Mode::Enforce => "enforce",
    }
}

fn cell_info(ctx: &Ctx<'_>, agent: usize, tool: usize) -> CellInfo {
    let granted = cells::cell(ctx, agent, tool).is_some_and(|c| c.granted);
    CellInfo {
        agent,
        tool,
        granted,
        access: if granted {
            access::passing(ctx.table, agent, tool)
        } else {
            None
        },
    }
}

/// A request of the agent that the policy denies or escalates: of a usable tool when
/// there is one, else of a tool it is not granted.
fn not_allowed(ctx: &Ctx<'_>, agent: usize) -> Option<Call> {
    for tool in 0..ctx.data.tools.len() {
        let info = cell_info(ctx, agent, tool);
        if !info.reachable() {
            continue;
        }
        let Some(cs) = cells::solver(ctx, &info) else {
            continue;
        };
        if let Found::Model(m) = cs.find(&cs.stage.is_allow().not(), &[]) {
            let values = cells::values(ctx, &m, &cs.req);
            if let Ok(call) = cells::concrete_call(ctx, &info, values)
                && call.outcome != Outcome::Allow
            {
                return Some(call);
            }
        }
    }
    let tool = (0..ctx.data.tools.len()).find(|&t| !cell_info(ctx, agent, t).granted)?;
    let mut call = Call {
        agent: ctx.data.agents.get(agent)?.name.clone(),
        tool: ctx.data.tools[tool].name.clone(),
        args: Vec::new(),
        confidence: None,
        read: None,
        write: None,
        untrusted: Vec::new(),
        sets: Vec::new(),
        session: super::Session::default(),
        outcome: Outcome::Deny,
        rule: None,
    };
    cells::decide(ctx, &mut call).ok()?;
    Some(call)
}

/// A request of the agent that gets past the rules (allowed or escalated).
fn permitted(ctx: &Ctx<'_>, agent: usize) -> Option<Call> {
    (0..ctx.data.tools.len()).find_map(|tool| {
        let info = cell_info(ctx, agent, tool);
        if !info.reachable() {
            return None;
        }
        match cells::permitted(ctx, &info) {
            Permitted::Yes(values) => cells::concrete_call(ctx, &info, *values)
                .ok()
                .filter(|c| c.outcome != Outcome::Deny),
            _ => None,
        }
    })
}

fn credentials(
    before: Option<&AgentDef>,
    agent: &AgentDef,
    subject: &str,
    out: &mut Vec<DeclChange>,
) {
    let life = |e: Option<i64>| {
        e.map_or("no expiry".to_string(), |ms| {
            format!("expires {}", duration(ms))
        })
    };
    let empty = Vec::new();
    let old = before.map_or(&empty, |b| &b.credentials);
    for c in &agent.credentials {
        match old.iter().find(|o| o.name == c.name) {
            None => out.push(change(
                ChangeKind::Credential,
                true,
                subject.into(),
                format!("credential `{}` added ({})", c.name, life(c.expires_ms)),
            )),
            Some(o) if o.expires_ms != c.expires_ms => {
                // No expiry is a standing credential: longer than any lifetime.
                let longer = match (o.expires_ms, c.expires_ms) {
                    (Some(a), Some(b)) => b > a,
                    (Some(_), None) => true,
                    _ => false,
                };
                out.push(change(
                    ChangeKind::Credential,
                    longer,
                    subject.into(),
                    format!(
                        "credential `{}`: {} -> {}",
                        c.name,
                        life(o.expires_ms),
                        life(c.expires_ms)
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    for o in old {
        if !agent.credentials.iter().any(|c| c.name == o.name) {
            out.push(change(
                ChangeKind::Credential,
                false,
                subject.into(),
                format!("credential `{}` removed", o.name),
            ));
        }
    }
}

fn max_tier(
    old: &Ctx<'_>,
    new: &Ctx<'_>,
    was: &rt::Agent,
    now: &rt::Agent,
    agent: &AgentDef,
    subject: &str,
    out: &mut Vec<DeclChange>,
) {
    // No ceiling is above every tier.
    let ceiling = |c: &Ctx<'_>, t: Option<rt::TierId>| match t {
        None => Some(usize::MAX),
        Some(t) => rank(old, new, &tier_name(c, t)),
    };
    let word = |c: &Ctx<'_>, t: Option<rt::TierId>| {
        t.map_or("none".to_string(), |t| format!("`{}`", tier_name(c, t)))
    };
    let (Some(a), Some(b)) = (ceiling(old, was.max_tier), ceiling(new, now.max_tier)) else {
        return;
    };
    if a == b {
        return;
    }
    // The ceiling matters only for the data there is: NEW's resources between the two.
    let between: Vec<String> = new
        .data
        .resources
        .iter()
        .filter(|r| {
            rank(old, new, &tier_name(new, r.tier)).is_some_and(|t| t > a.min(b) && t <= a.max(b))
        })
        .map(|r| format!("`{}`", r.name))
        .collect();
    if between.is_empty() {
        return;
    }
    let widening = b > a;
    let mut c = change(
        ChangeKind::MaxTier,
        widening,
        subject.into(),
        format!(
            "max tier {} -> {}: it may {} read {}",
            word(old, was.max_tier),
            word(new, now.max_tier),
            if widening { "now" } else { "no longer" },
            between.join(", ")
        ),
    );
    if widening {
        c.witness = ceiling_witness(old, new, &agent.name, a, b);
    }
    out.push(c);
}

/// A call that reads a resource between the two ceilings: OLD's flow check denies it,
/// NEW lets it through.
fn ceiling_witness(
    old: &Ctx<'_>,
    new: &Ctx<'_>,
    agent: &str,
    low: usize,
    high: usize,
) -> Option<Witness> {
    let na = new.data.agents.iter().position(|a| a.name == agent)?;
    for tool in 0..new.data.tools.len() {
        let info = cell_info(new, na, tool);
        if !info.reachable() {
            continue;
        }
        let Permitted::Yes(values) = cells::permitted(new, &info) else {
            continue;
        };
        for r in &new.data.tools[tool].reads {
            let res = &new.data.resources[r.index()];
            let Some(t) = rank(old, new, &tier_name(new, res.tier)) else {
                continue;
            };
            if t <= low || t > high {
                continue;
            }
            let mut info = info.clone();
            let access = Access {
                target: res.name.clone(),
                keys: res
                    .keyed
                    .iter()
                    .filter_map(|k| new.data.keys.get(k.index()))
                    .map(|k| (k.clone(), access::first_value(k)))
                    .collect(),
            };
            info.access = Some((Some(access), None));
            let Ok(call) = cells::concrete_call(new, &info, (*values).clone()) else {
                continue;
            };
            let mut before = call.clone();
            if call.outcome == Outcome::Deny
                || cells::decide(old, &mut before).is_err()
                || before.outcome != Outcome::Deny
            {
                continue;
            }
            return Some(Witness {
                trace: format!(
                    "a call of `{}` reading `{}`: OLD denies it (above the ceiling), NEW decides {}",
                    call.tool, res.name, call.outcome
                ),
                request: Some(call),
            });
        }
    }
    None
}

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

fn limits(
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
            format!("{}%", crate::values::decimal(b.value.saturating_mul(100)))
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

fn breakers(was: &rt::Agent, now: &rt::Agent, subject: &str, out: &mut Vec<DeclChange>) {
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

/// The rules of `ctx` whose condition reads `tainted`, by id.
fn rules_reading_taint(ctx: &Ctx<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, rule) in ctx.model.rules.iter().enumerate() {
        let mut reads = false;
        if let Some(c) = &rule.condition {
            c.visit(&mut |c: &Cond| {
                reads |= c.terms().iter().any(|t| matches!(t, Term::Tainted));
            });
        }
        if reads && let Some(r) = ctx.data.rules.get(i) {
            ids.push(r.id.clone());
        }
    }
    ids
}

#[derive(Clone, Copy)]
enum Label<'a> {
    Resource(&'a str),
    Tool(&'a str),
}

/// Whether a call that goes through taints the session in `ctx`, as the engine's
/// `absorb_read` decides it.
fn taints(ctx: &Ctx<'_>, call: &Call) -> bool {
    let data = ctx.data;
    let Some(t) = data.tools.iter().position(|t| t.name == call.tool) else {
        return false;
    };
    let untrusted = |r: usize| data.untrusted_resources.contains(&rt::ResourceId(r as u32));
    data.untrusted_tools.contains(&rt::ToolId(t as u32))
        || match &call.read {
            Some(a) => data
                .resources
                .iter()
                .position(|r| r.name == a.target)
                .is_some_and(untrusted),
            None => data.tools[t].reads.iter().any(|r| untrusted(r.index())),
        }
}

/// A session of two calls: the first is allowed on both sides and taints the session
/// on `tainted`'s side only (through `label`), the second is decided more strictly on
/// `tainted`'s side because of the taint. Replayed through both runtimes.
fn taint_witness(
    tainted: &Ctx<'_>,
    clean: &Ctx<'_>,
    label: Label<'_>,
    tainted_is_old: bool,
    stricter: bool,
) -> Option<Witness> {
    for (a, agent) in tainted.data.agents.iter().enumerate() {
        if !clean.data.agents.iter().any(|x| x.name == agent.name) {
            continue;
        }
        // In shadow mode every call runs (the engine reports allow), so it taints the
        // session whatever the rules decide.
        let shadow = |c: &Ctx<'_>| {
            c.data
                .agents
                .iter()
                .any(|x| x.name == agent.name && x.mode == Mode::Shadow)
        };
        let runs = |c: &Ctx<'_>, call: &Call| call.outcome == Outcome::Allow || shadow(c);
        let firsts: Vec<Call> = (0..tainted.data.tools.len())
            .filter_map(|t| {
                let tool = &tainted.data.tools[t];
                let mut info = cell_info(tainted, a, t);
                if !info.reachable() && !shadow(tainted) {
                    return None;
                }
                let read = match label {
                    Label::Tool(name) if tool.name != name => return None,
                    Label::Resource(name) => {
                        let r = tool
                            .reads
                            .iter()
                            .map(|r| &tainted.data.resources[r.index()])
                            .find(|r| r.name == name)?;
                        Some(Access {
                            target: r.name.clone(),
                            keys: r
                                .keyed
                                .iter()
                                .filter_map(|k| tainted.data.keys.get(k.index()))
                                .map(|k| (k.clone(), access::first_value(k)))
                                .collect(),
                        })
                    }
                    Label::Tool(_) => info.access.clone().and_then(|(r, _)| r),
                };
                info.access = Some((read.clone(), None));
                let allowed = || -> Option<Call> {
                    let cs = cells::solver(tainted, &info)?;
                    let untainted = cs.req.tainted.not();
                    let Found::Model(m) =
                        cs.find(&Bool::and(&[cs.stage.is_allow(), untainted]), &[])
                    else {
                        return None;
                    };
                    cells::concrete_call(tainted, &info, cells::values(tainted, &m, &cs.req)).ok()
                };
                let call = match allowed() {
                    Some(call) => call,
                    None if shadow(tainted) => {
                        let mut call = Call {
                            agent: agent.name.clone(),
                            tool: tool.name.clone(),
                            args: Vec::new(),
                            confidence: None,
                            read,
                            write: None,
                            untrusted: Vec::new(),
                            sets: Vec::new(),
                            session: super::Session::default(),
                            outcome: Outcome::Deny,
                            rule: None,
                        };
                        cells::decide(tainted, &mut call).ok()?;
                        call
                    }
                    None => return None,
                };
                let mut there = call.clone();
                cells::decide(clean, &mut there).ok()?;
                (runs(tainted, &call)
                    && runs(clean, &there)
                    && taints(tainted, &call)
                    && !taints(clean, &call))
                .then_some(call)
            })
            .collect();
        for first in &firsts {
            for t in 0..tainted.data.tools.len() {
                let info = cell_info(tainted, a, t);
                if !info.reachable() {
                    continue;
                }
                let Some(cs) = cells::solver(tainted, &info) else {
                    continue;
                };
                let rank = cs.stage.rank();
                let yes = rank.substitute(&[(&cs.req.tainted, &Bool::from_bool(true))]);
                let no = rank.substitute(&[(&cs.req.tainted, &Bool::from_bool(false))]);
                let goal = if stricter { yes.gt(&no) } else { yes.lt(&no) };
                let Found::Model(m) = cs.find(&goal, &[]) else {
                    continue;
                };
                let Ok(mut in_taint) =
                    cells::concrete_call(tainted, &info, cells::values(tainted, &m, &cs.req))
                else {
                    continue;
                };
                // The second call runs in the session the first left: its tier and keys
                // too, as each side labels them.
                in_taint.session = after(tainted, first, true);
                let mut in_clean = in_taint.clone();
                in_clean.session = after(clean, first, false);
                if cells::decide(tainted, &mut in_taint).is_err()
                    || cells::decide(clean, &mut in_clean).is_err()
                    || (in_taint.outcome > in_clean.outcome) != stricter
                    || in_taint.outcome == in_clean.outcome
                {
                    continue;
                }
                let (old_side, new_side) = if tainted_is_old {
                    (in_taint, in_clean)
                } else {
                    (in_clean, in_taint)
                };
                return Some(Witness {
                    trace: format!(
                        "a session that first calls `{}` ({}{}), then this request: OLD decides {}, NEW decides {}",
                        first.tool,
                        first
                            .read
                            .as_ref()
                            .map_or("allowed".to_string(), |r| format!("reads `{}`", r.target)),
                        if first.outcome == Outcome::Allow {
                            ""
                        } else {
                            "; it runs in shadow mode"
                        },
                        old_side.outcome,
                        new_side.outcome
                    ),
                    request: Some(new_side),
                });
            }
        }
    }
    None
}

/// The session after `first` ran in a fresh one, as the engine's `absorb_read` labels
/// it: the tier of the resource it names (of every resource its tool declares when it
/// names none) and the key values it names.
fn after(ctx: &Ctx<'_>, first: &Call, tainted: bool) -> super::Session {
    let data = ctx.data;
    let tiers: Vec<rt::TierId> = match &first.read {
        Some(access) => data
            .resources
            .iter()
            .filter(|r| r.name == access.target)
            .map(|r| r.tier)
            .collect(),
        None => data
            .tools
            .iter()
            .filter(|t| t.name == first.tool)
            .flat_map(|t| t.reads.iter())
            .filter_map(|r| data.resources.get(r.index()))
            .map(|r| r.tier)
            .collect(),
    };
    super::Session {
        tier: tiers.into_iter().max().map(|t| tier_name(ctx, t)),
        bound: first
            .read
            .as_ref()
            .map(|a| a.keys.clone())
            .unwrap_or_default(),
        tainted,
    }
}

fn integrity(old: &Ctx<'_>, new: &Ctx<'_>, out: &mut Vec<DeclChange>) {
    let readers = rules_reading_taint(new);
    let consequence = |widening: bool| {
        let effect = if widening {
            "a session that reads it is no longer tainted"
        } else {
            "a session that reads it is tainted from then on"
        };
        if readers.is_empty() {
            format!(
                "{effect} (no rule reads `tainted` now; the audit record and `escalates when tainted` do)"
            )
        } else {
            format!(
                "{effect}; rules that read `tainted`: {}",
                readers.join(", ")
            )
        }
    };
    let mut compare_label = |label: Label<'_>, was: bool, now: bool| {
        if was != now {
            let (what, name) = match label {
                Label::Resource(r) => ("resource", r),
                Label::Tool(t) => ("tool", t),
            };
            let mut c = change(
                ChangeKind::Integrity,
                was,
                format!("{what} `{name}`"),
                format!(
                    "{} untrusted: {}",
                    if was { "no longer" } else { "now" },
                    consequence(was)
                ),
            );
            // The side with the label taints the session.
            let (with, without) = if was { (old, new) } else { (new, old) };
            c.witness = taint_witness(with, without, label, was, true);
            out.push(c);
            // A rule that is more permissive in a tainted session turns the label's
            // effect around for the requests it decides.
            if let Some(w) = taint_witness(with, without, label, was, false) {
                let mut c = change(
                    ChangeKind::Integrity,
                    !was,
                    format!("{what} `{name}`"),
                    format!(
                        "{} untrusted, and a rule decides more permissively in a tainted session",
                        if was { "no longer" } else { "now" }
                    ),
                );
                c.witness = Some(w);
                out.push(c);
            }
        }
    };
    for (i, r) in new.data.resources.iter().enumerate() {
        let Some(o) = old.data.resources.iter().position(|x| x.name == r.name) else {
            continue;
        };
        let was = old
            .data
            .untrusted_resources
            .contains(&rt::ResourceId(o as u32));
        let now = new
            .data
            .untrusted_resources
            .contains(&rt::ResourceId(i as u32));
        // Only through a tool that does not taint the session by itself (judged by NEW's
        // tool labels) does the resource's own label decide anything.
        let read_plainly = new.data.tools.iter().enumerate().any(|(t, tool)| {
            tool.reads.contains(&rt::ResourceId(i as u32))
                && !new.data.untrusted_tools.contains(&rt::ToolId(t as u32))
        });
        if read_plainly {
            compare_label(Label::Resource(&r.name), was, now);
        }
    }
    for (i, t) in new.data.tools.iter().enumerate() {
        let Some(o) = old.data.tools.iter().position(|x| x.name == t.name) else {
            continue;
        };
        let was = old.data.untrusted_tools.contains(&rt::ToolId(o as u32));
        let now = new.data.untrusted_tools.contains(&rt::ToolId(i as u32));
        // A tool all of whose declared reads are untrusted taints the session anyway.
        let reads_untrusted_only = !t.reads.is_empty()
            && t.reads
                .iter()
                .all(|r| new.data.untrusted_resources.contains(r));
        if !reads_untrusted_only {
            compare_label(Label::Tool(&t.name), was, now);
        }
    }
}

/// How long a record of `tier` (a name, or `None` for a record without one) is kept;
/// `None` for ever.
fn kept(ctx: &Ctx<'_>, tier: Option<&str>) -> Option<Period> {
    let r = &ctx.data.retention;
    let id = match tier {
        None => None,
        Some(name) => Some(rt::TierId(
            ctx.data.tiers.iter().position(|t| t == name)? as u32
        )),
    };
    let mut best: Option<Period> = r.default;
    for t in &r.tiers {
        if id.is_some_and(|id| id >= t.tier) {
            best = Some(match best {
                Some(b) if b.never_shorter_than(t.period) => b,
                _ => t.period,
            });
        }
    }
    best
}

/// How long OLD and NEW keep a record (`None`: for ever).
type Ends = (Option<Period>, Option<Period>);

fn retention(old: &Ctx<'_>, new: &Ctx<'_>, out: &mut Vec<DeclChange>) {
    let mut tiers: Vec<Option<&str>> = vec![None];
    tiers.extend(new.data.tiers.iter().map(|t| Some(t.as_str())));
    let word = |p: Option<Period>| p.map_or("for ever".to_string(), |p| p.to_string());
    // Records whose period changed the same way are reported together.
    let mut groups: Vec<(Ends, Vec<Option<&str>>)> = Vec::new();
    for tier in tiers {
        let ends = (kept(old, tier), kept(new, tier));
        if ends.0 == ends.1 {
            continue;
        }
        match groups.iter_mut().find(|(e, _)| *e == ends) {
            Some((_, ts)) => ts.push(tier),
            None => groups.push((ends, vec![tier])),
        }
    }
    for ((a, b), tiers) in groups {
        // Shorter on some dates is a weakening of the record; only "never shorter" is
        // a narrowing.
        let shorter = match (a, b) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(a), Some(b)) => !b.never_shorter_than(a),
        };
        let mut names: Vec<String> = Vec::new();
        if tiers.contains(&None) {
            names.push("without a tier".into());
        }
        let named: Vec<String> = tiers.iter().flatten().map(|t| format!("`{t}`")).collect();
        if !named.is_empty() {
            names.push(format!("of tier {}", named.join(", ")));
        }
        let mut c = change(
            ChangeKind::Retention,
            shorter,
            "audit retention".into(),
            format!(
                "records {}: kept {} -> {}{}",
                names.join(" and "),
                word(a),
                word(b),
                if shorter {
                    " (a shorter record: compaction may remove evidence OLD kept)"
                } else {
                    ""
                }
            ),
        );
        // A record just older than the shorter period: one side must keep it, the other
        // may compact it away.
        let (keeps, drops, period) = if shorter {
            ("OLD", "NEW", b)
        } else {
            ("NEW", "OLD", a)
        };
        c.witness = period.map(|p| Witness {
            trace: format!(
                "a record {} written {} and a day before a compaction: {keeps} keeps it, {drops} may remove it",
                names.first().map_or("", String::as_str),
                p
            ),
            request: None,
        });
        out.push(c);
    }
}
