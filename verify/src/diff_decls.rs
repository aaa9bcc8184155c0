//! The part of the semantic diff that the rule stage does not see: every declaration that
//! decides what gets through besides the rules (modes and lifecycle stages, integrity
//! labels, limits, breakers, credentials, tier ceilings, clearances and resource tiers,
//! audit retention), compared between two policies and classified as widening (NEW lets
//! more through, or keeps less of the record) or narrowing. A change comes with a witness
//! where one exists (a request both runtimes replay, or a described trace) and is
//! reported as structural where none does. Route timeouts are compared per request in
//! `diff.rs`, since which routes a request escalates to depends on its rules; limits and
//! breakers in `diff_limits.rs`, integrity labels in `diff_integrity.rs`.
//!
//! Must not: decide anything itself (the runtime replays each request witness), or
//! compare declarations that cannot change what gets through (owners, purposes, notify
//! destinations).

use agentpolicy_runtime::{self as rt, Mode, Outcome, Period};

use super::cells::{self, CellInfo, Found, Permitted};
use super::counterexample::{Access, Call};
use super::{Ctx, access};
use agentpolicy::model::{AgentDef, Stage};
use agentpolicy::values::duration;

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
    super::diff_integrity::integrity(old, new, &mut out);
    retention(old, new, &mut out);
    out
}

pub(super) fn change(
    kind: ChangeKind,
    widening: bool,
    subject: String,
    what: String,
) -> DeclChange {
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

pub(super) fn tier_name(ctx: &Ctx<'_>, id: rt::TierId) -> String {
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
        // Shown as NEW decides it (the request is found on the shadowed side).
        c.witness = not_allowed(shadowed, side)
            .and_then(|mut call| {
                cells::decide(new, &mut call).ok()?;
                (call.outcome != Outcome::Allow).then_some(call)
            })
            .map(|call| Witness {
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
    super::diff_limits::limits(new, was, now, &subject, out);
    super::diff_limits::breakers(was, now, &subject, out);
}

fn mode_word(m: Mode) -> &'static str {
    match m {
        Mode::Shadow => "shadow",
        Mode::Enforce => "enforce",
    }
}

pub(super) fn cell_info(ctx: &Ctx<'_>, agent: usize, tool: usize) -> CellInfo {
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
pub(super) fn permitted(ctx: &Ctx<'_>, agent: usize) -> Option<Call> {
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
