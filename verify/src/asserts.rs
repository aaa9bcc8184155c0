//! The policy's own `assert`s. `never AGENT calls TOOL [when EXPR]` and `every irreversible
//! tool escalates` are properties of single decisions, proved per cell; `AGENT never reads
//! TIER` and `no flow from TIER to SINK` are properties of sessions, proved by `flow`.

use agentpolicy_runtime::Outcome;
use z3::ast::Bool;

use super::cells::{self, CellInfo, CellSolver, Found};
use super::counterexample::Counterexample;
use super::flow::{self, FlowProp};
use super::{Ctx, Method, Property, PropertyResult, Subject, Verdict, report};
use agentpolicy::model::{AssertDef, Loc, RuleTarget};

pub fn prove(ctx: &Ctx<'_>, cells: &[CellInfo]) -> Vec<PropertyResult> {
    let model = ctx.model;
    let mut out = Vec::new();
    for a in &model.asserts {
        out.push(match a {
            AssertDef::NeverCalls {
                agent,
                target,
                condition,
                loc,
            } => {
                let tool_name = match target {
                    RuleTarget::Tool(t) => model.tools[t.index()].name.clone(),
                    RuleTarget::All => "*".into(),
                };
                let subject = Subject::Assert {
                    loc: *loc,
                    text: format!(
                        "never {} calls {tool_name}",
                        model.agents[agent.index()].name
                    ),
                };
                let targets: Vec<&CellInfo> = cells
                    .iter()
                    .filter(|c| c.agent == agent.index() && c.reachable())
                    .filter(|c| match target {
                        RuleTarget::Tool(t) => c.tool == t.index(),
                        RuleTarget::All => true,
                    })
                    .collect();
                per_cell(
                    ctx,
                    &targets,
                    subject,
                    *loc,
                    Expect::GoesThrough,
                    agentpolicy::diagnostics::Code::AssertNeverCallsFailed,
                    |cs| {
                        let when = match condition {
                            None => Bool::from_bool(true),
                            Some(cond) => {
                                // For `*`, the cell's tool: no argument is read, but
                                // `effect E` is its effect.
                                let tool = match target {
                                    RuleTarget::Tool(t) => Some(&model.tools[t.index()]),
                                    RuleTarget::All => model.tools.get(cs.info.tool),
                                };
                                let (holds, known) = super::encode::source_condition(
                                    cond,
                                    tool,
                                    &ctx.data.tools[cs.info.tool],
                                    &cs.req,
                                    &ctx.texts,
                                    &ctx.data.sets,
                                );
                                // A request whose value is unknown may be one the assert means.
                                Bool::or(&[known.not(), holds])
                            }
                        };
                        Bool::and(&[cs.stage.is_permitted(), when])
                    },
                )
            }
            AssertDef::EveryIrreversibleEscalates { loc } => {
                let targets: Vec<&CellInfo> = cells
                    .iter()
                    .filter(|c| c.reachable() && model.tools[c.tool].is_irreversible())
                    .collect();
                per_cell(
                    ctx,
                    &targets,
                    Subject::Assert {
                        loc: *loc,
                        text: "every irreversible tool escalates".into(),
                    },
                    *loc,
                    Expect::WithoutHuman,
                    agentpolicy::diagnostics::Code::AssertEscalatesFailed,
                    // Justified `autonomy` exemptions count, as in the built-in property.
                    |cs| Bool::and(&[cells::without_human(ctx, cs), cells::exempt(ctx, cs).not()]),
                )
            }
            AssertDef::TaintedIrreversibleEscalates { loc } => {
                let targets: Vec<&CellInfo> = cells
                    .iter()
                    .filter(|c| c.reachable() && model.tools[c.tool].is_irreversible())
                    .collect();
                per_cell(
                    ctx,
                    &targets,
                    Subject::Assert {
                        loc: *loc,
                        text: "every irreversible tool escalates when tainted".into(),
                    },
                    *loc,
                    Expect::WithoutHuman,
                    agentpolicy::diagnostics::Code::TaintedIrreversible,
                    // No `autonomy` exemption applies: the session may be steered by
                    // injected content, which is what the property is about.
                    |cs| Bool::and(&[cells::without_human(ctx, cs), cs.req.tainted.clone()]),
                )
            }
            AssertDef::NeverReads { agent, tier, loc } => {
                let subject = Subject::Assert {
                    loc: *loc,
                    text: format!(
                        "{} never reads {}",
                        model.agents[agent.index()].name,
                        model.tiers[tier.index()].name
                    ),
                };
                let prop = FlowProp::NeverReads(*tier);
                let o = flow::outcome(ctx, cells, agent.index(), prop);
                flow::result(ctx, Property::Assert, prop, subject, o, Some(*loc))
            }
            AssertDef::NoFlow { tier, sink, loc } => {
                let subject = Subject::Assert {
                    loc: *loc,
                    text: format!(
                        "no flow from {} to {}",
                        model.tiers[tier.index()].name,
                        model.sinks[sink.index()].name
                    ),
                };
                let prop = FlowProp::NoFlow(*tier, *sink);
                let mut combined = None;
                for a in 0..model.agents.len() {
                    let o = flow::outcome(ctx, cells, a, prop);
                    let stop = !matches!(o.verdict, Ok(None));
                    let method = o.method.clone();
                    if stop || combined.is_none() {
                        combined = Some(o);
                    } else if let Some(c) = combined.as_mut()
                        && matches!(method, Method::Bmc { .. })
                    {
                        c.method = method;
                    }
                    if stop {
                        break;
                    }
                }
                match combined {
                    Some(o) => flow::result(ctx, Property::Assert, prop, subject, o, Some(*loc)),
                    None => PropertyResult {
                        property: Property::Assert,
                        subject,
                        verdict: Verdict::Proved,
                        method: Method::Induction,
                        assumptions: vec![
                            flow::NAMED_ACCESS,
                            flow::STORES_DECLARED,
                            flow::ESCALATION_MAY_PASS,
                        ],
                        diagnostic: None,
                    },
                }
            }
        });
    }
    out
}

/// What the runtime must decide for a request the solver found to break an assert.
#[derive(Clone, Copy)]
enum Expect {
    /// Allowed or escalated (a human may approve it).
    GoesThrough,
    /// Allowed, or escalated to routes whose timeout allows it.
    WithoutHuman,
}

/// Proves that no cell of `targets` has a request satisfying `goal`; a found request
/// must be decided by the runtime as `expect` says.
fn per_cell(
    ctx: &Ctx<'_>,
    targets: &[&CellInfo],
    subject: Subject,
    loc: Loc,
    expect: Expect,
    code: agentpolicy::diagnostics::Code,
    goal: impl Fn(&CellSolver) -> Bool,
) -> PropertyResult {
    for info in targets {
        let Some(cs) = cells::solver(ctx, info) else {
            return cells::unknown(ctx, Property::Assert, subject, "malformed condition");
        };
        match cs.find(&goal(cs.as_ref()), &[]) {
            Found::Nothing => {}
            Found::Unknown(reason) => {
                return cells::unknown(ctx, Property::Assert, subject, &reason);
            }
            Found::Model(model) => {
                let call =
                    match cells::concrete_call(ctx, info, cells::values(ctx, &model, &cs.req)) {
                        Ok(c) => c,
                        Err(e) => return cells::unknown(ctx, Property::Assert, subject, &e),
                    };
                let decides = format!("the runtime decides {} for this request", call.outcome);
                let explanation = match expect {
                    Expect::GoesThrough if call.outcome <= Outcome::Escalate => Some(decides),
                    Expect::GoesThrough => None,
                    Expect::WithoutHuman => match cells::without_human_words(ctx, &call) {
                        Ok(Some(_)) if call.outcome == Outcome::Allow => Some(decides),
                        Ok(Some(words)) => Some(format!("{decides}: it {words}")),
                        Ok(None) => None,
                        Err(e) => return cells::unknown(ctx, Property::Assert, subject, &e),
                    },
                };
                let Some(explanation) = explanation else {
                    let expected = match expect {
                        Expect::GoesThrough => "allow or escalate",
                        Expect::WithoutHuman => "an allow without a human",
                    };
                    let reason = cells::disagreement(expected, &call);
                    return cells::unknown(ctx, Property::Assert, subject, &reason);
                };
                let cex = Counterexample {
                    explanation,
                    calls: vec![call],
                    safer: None,
                };
                let d = report::assert_failed(ctx, code, loc, &subject.to_string(), &cex);
                return PropertyResult {
                    property: Property::Assert,
                    subject,
                    verdict: Verdict::Counterexample(Box::new(cex)),
                    method: Method::PerCell,
                    assumptions: Vec::new(),
                    diagnostic: Some(d),
                };
            }
        }
    }
    PropertyResult {
        property: Property::Assert,
        subject,
        verdict: Verdict::Proved,
        method: Method::PerCell,
        assumptions: Vec::new(),
        diagnostic: None,
    }
}
