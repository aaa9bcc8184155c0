//! What must hold for any policy: analysis through the salsa `Database` does not panic,
//! model ids index their vectors, diagnostics point inside their files and render, and
//! a table built from a clean analysis passes the runtime's validation, reads back from
//! bytes and runs the policy's tests.

use agentpolicy::codegen::build_table;
use agentpolicy::db::Database;
use agentpolicy::diagnostics::{Diagnostic, Label};
use agentpolicy::model::*;
use agentpolicy::policy_test::run_tests;
use agentpolicy::render::{self, Sources};
use agentpolicy::stdlib;
use agentpolicy_runtime::DecisionTable;
use salsa::Setter as _;

/// How far a policy got, so tests can tell the fuzzer is not vacuous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reached {
    /// Analysis reported errors.
    Errors,
    /// Analysis was clean; codegen reported what the table format cannot hold.
    Refused,
    /// A table was built, validated and its tests run.
    Built,
}

/// Analyses the policy made of `files` (user files, ids `0..n`) and checks everything
/// that must hold for any input; `Err` says what did not.
pub(crate) fn check(files: &[(String, String)]) -> Result<Reached, String> {
    let mut db = Database::default();
    let loaded = db.load(files.to_vec());
    let analysis = db.analysis(loaded);
    let mut all: Vec<(String, String)> = files.to_vec();
    all.extend(
        stdlib::MODULES
            .iter()
            .map(|m| (m.path.to_string(), m.text.to_string())),
    );
    check_diagnostics(&analysis.diagnostics, &all)?;
    check_model(&analysis.model, &all, analysis.has_errors())?;
    if analysis.has_errors() {
        return Ok(Reached::Errors);
    }
    let sources = db.user_sources(loaded);
    match build_table(&analysis.model, &sources) {
        Err(diagnostics) => {
            check_diagnostics(&diagnostics, &all)?;
            if let Some(d) = diagnostics
                .iter()
                .find(|d| d.message.contains("inconsistent"))
            {
                return Err(format!("codegen built an invalid table: {}", d.message));
            }
            Ok(Reached::Refused)
        }
        Ok(table) => {
            DecisionTable::new(table.data().clone())
                .map_err(|e| format!("the built table fails validation: {}", e.reason))?;
            let back = DecisionTable::from_bytes(&table.to_bytes())
                .map_err(|e| format!("the built table does not read back: {e:?}"))?;
            if back.data() != table.data() {
                return Err("the table read back differs from the one written".into());
            }
            let report = run_tests(&analysis.model, &table);
            if report.covered.len() != analysis.model.rules.len() {
                return Err("test coverage is not indexed by rule".into());
            }
            Ok(Reached::Built)
        }
    }
}

fn check_label(label: &Label, all: &[(String, String)]) -> Result<(), String> {
    let Some((_, text)) = all.get(label.file.0 as usize) else {
        return Err(format!("a label points into no file: {label:?}"));
    };
    let (start, end) = (label.range.start as usize, label.range.end as usize);
    if start > end || end > text.len() {
        return Err(format!(
            "a label is out of its file ({} bytes): {label:?}",
            text.len()
        ));
    }
    if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
        return Err(format!("a label splits a character: {label:?}"));
    }
    Ok(())
}

fn check_diagnostics(diagnostics: &[Diagnostic], all: &[(String, String)]) -> Result<(), String> {
    for d in diagnostics {
        check_label(&d.primary, all).map_err(|e| format!("{e}\nin {d:#?}"))?;
        for label in &d.secondary {
            check_label(label, all).map_err(|e| format!("{e}\nin {d:#?}"))?;
        }
    }
    let sources = Sources::new(all.to_vec());
    let _ = render::human(diagnostics, &sources, false);
    let _ = render::json(diagnostics, &sources);
    Ok(())
}

/// Every id in the model indexes its vector, every location is in its file, rule ids
/// are their index, and conditions read only the arguments of their tool.
///
/// One known exception, found by this fuzzer and documented in ARCHITECTURE.md: with no
/// `tiers` declared there is no tier to default to, so the tier of a resource or sink
/// (then necessarily reported as an error) is `TierId(0)`, which indexes nothing.
fn check_model(m: &Model, all: &[(String, String)], has_errors: bool) -> Result<(), String> {
    fn id(what: &str, index: u32, len: usize) -> Result<(), String> {
        if (index as usize) < len {
            Ok(())
        } else {
            Err(format!("{what} id {index} out of range (there are {len})"))
        }
    }
    let loc = |l: &Loc| {
        check_label(
            &Label {
                file: l.file,
                range: l.range,
                message: String::new(),
            },
            all,
        )
    };
    let tiers = m.tiers.len();
    let label_tier = |what: &str, t: TierId| {
        if has_errors && tiers == 0 && t.0 == 0 {
            Ok(())
        } else {
            id(what, t.0, tiers)
        }
    };
    for t in &m.tiers {
        loc(&t.loc)?;
    }
    for k in &m.keys {
        loc(&k.loc)?;
    }
    for r in &m.resources {
        loc(&r.loc)?;
        label_tier("tier (resource)", r.tier)?;
        for k in &r.keyed {
            id("key (resource)", k.0, m.keys.len())?;
        }
    }
    for s in &m.sinks {
        loc(&s.loc)?;
        label_tier("tier (sink)", s.clearance)?;
        for k in &s.keyed {
            id("key (sink)", k.0, m.keys.len())?;
        }
    }
    for t in &m.tools {
        loc(&t.loc)?;
        for p in &t.params {
            loc(&p.loc)?;
        }
        for r in &t.reads {
            id("resource (tool reads)", r.0, m.resources.len())?;
        }
        for s in &t.writes {
            id("sink (tool writes)", s.0, m.sinks.len())?;
        }
    }
    for t in &m.thresholds {
        loc(&t.loc)?;
    }
    for r in &m.routes {
        loc(&r.loc)?;
    }
    for s in &m.sets {
        loc(&s.loc)?;
    }
    let arity = |target: RuleTarget| -> Result<Option<usize>, String> {
        match target {
            RuleTarget::All => Ok(None),
            RuleTarget::Tool(t) => {
                id("tool (target)", t.0, m.tools.len())?;
                Ok(Some(m.tools[t.index()].params.len()))
            }
        }
    };
    for (i, r) in m.rules.iter().enumerate() {
        loc(&r.loc)?;
        if r.id.0 as usize != i {
            return Err(format!("rule {i} has id {}", r.id.0));
        }
        id("agent (rule)", r.agent.0, m.agents.len())?;
        if !m.agents[r.agent.index()].rules.contains(&r.id) {
            return Err(format!("rule {i} is not listed by its agent"));
        }
        let args = arity(r.target)?;
        if let Some(route) = r.route {
            id("route (rule)", route.0, m.routes.len())?;
        }
        if let Some(c) = &r.condition {
            check_cond(c, args, m)?;
        }
    }
    for (a, agent) in m.agents.iter().enumerate() {
        loc(&agent.loc)?;
        if let Some(t) = agent.max_tier {
            id("tier (max tier)", t.0, tiers)?;
        }
        for r in &agent.rules {
            id("rule (agent)", r.0, m.rules.len())?;
            if m.rules[r.index()].agent.0 as usize != a {
                return Err(format!("agent {a} lists rule {} of another agent", r.0));
            }
        }
        for au in &agent.autonomy {
            loc(&au.loc)?;
            let args = arity(RuleTarget::Tool(au.tool))?;
            check_cond(&au.condition, args, m)?;
        }
        if let Some(stage) = &agent.stage {
            loc(&stage.loc)?;
            if let Some(route) = stage.route {
                id("route (stage)", route.0, m.routes.len())?;
            }
        }
        for l in &agent.limits {
            loc(&l.loc)?;
        }
        for b in &agent.breakers {
            loc(&b.loc)?;
        }
        for c in &agent.credentials {
            loc(&c.loc)?;
        }
        for p in &agent.promotions {
            loc(&p.loc)?;
        }
    }
    for a in &m.asserts {
        match a {
            AssertDef::NeverCalls {
                agent,
                target,
                condition,
                loc: l,
            } => {
                loc(l)?;
                id("agent (assert)", agent.0, m.agents.len())?;
                let args = arity(*target)?;
                if let Some(c) = condition {
                    check_cond(c, args, m)?;
                }
            }
            AssertDef::EveryIrreversibleEscalates { loc: l }
            | AssertDef::TaintedIrreversibleEscalates { loc: l } => loc(l)?,
            AssertDef::NeverReads {
                agent,
                tier,
                loc: l,
            } => {
                loc(l)?;
                id("agent (assert)", agent.0, m.agents.len())?;
                id("tier (assert)", tier.0, tiers)?;
            }
            AssertDef::NoFlow { tier, sink, loc: l } => {
                loc(l)?;
                id("tier (assert)", tier.0, tiers)?;
                id("sink (assert)", sink.0, m.sinks.len())?;
            }
        }
    }
    for t in &m.tests {
        loc(&t.loc)?;
        for step in &t.steps {
            loc(&step.loc)?;
            id("agent (test)", step.agent.0, m.agents.len())?;
            id("tool (test)", step.tool.0, m.tools.len())?;
            let params = m.tools[step.tool.index()].params.len();
            if step.args.len() > params {
                return Err(format!(
                    "a test call has {} arguments for {params} parameters",
                    step.args.len()
                ));
            }
            for u in &step.untrusted {
                id("parameter (untrusted)", *u as u32, params)?;
            }
            if let Some(on) = &step.on {
                id("resource (test)", on.resource.0, m.resources.len())?;
                for (k, _) in &on.keys {
                    id("key (test)", k.0, m.keys.len())?;
                }
            }
            if let Some(into) = &step.into {
                id("sink (test)", into.sink.0, m.sinks.len())?;
                for (k, _) in &into.keys {
                    id("key (test)", k.0, m.keys.len())?;
                }
            }
        }
        if let Expected::Escalate(routes) = &t.expect {
            for r in routes {
                id("route (test)", r.0, m.routes.len())?;
            }
        }
    }
    for r in &m.retention {
        loc(&r.loc)?;
        if let Some(t) = r.tier {
            id("tier (retention)", t.0, tiers)?;
        }
    }
    Ok(())
}

/// `args`: the number of parameters of the condition's tool, `None` for a `*` rule
/// (which may read no argument).
fn check_cond(c: &Cond, args: Option<usize>, m: &Model) -> Result<(), String> {
    let arg = |i: usize| match args {
        Some(n) if i < n => Ok(()),
        _ => Err(format!(
            "a condition reads argument {i} of a tool with {args:?} parameters"
        )),
    };
    let mut result = Ok(());
    c.visit(&mut |c| {
        if result.is_err() {
            return;
        }
        result = (|| {
            match c {
                Cond::Compare { left, right, .. } => {
                    for t in [left, right] {
                        check_term(t, &arg, m)?;
                    }
                }
                Cond::Truthy(t) => check_term(t, &arg, m)?,
                Cond::InSet { arg: i, set } => {
                    arg(*i)?;
                    if set.0 as usize >= m.sets.len() {
                        return Err(format!("set id {} out of range", set.0));
                    }
                }
                Cond::Matches { arg: i, .. }
                | Cond::FromUntrusted { arg: i }
                | Cond::Present { arg: i } => arg(*i)?,
                Cond::Quantified { arg: i, test, .. } => {
                    arg(*i)?;
                    if let ElementTest::InSet { set, .. } = test
                        && set.0 as usize >= m.sets.len()
                    {
                        return Err(format!("set id {} out of range", set.0));
                    }
                }
                Cond::Or(_) | Cond::And(_) | Cond::Not(_) | Cond::HasEffect(_) => {}
            }
            Ok(())
        })();
    });
    result
}

fn check_term(
    t: &Term,
    arg: &impl Fn(usize) -> Result<(), String>,
    m: &Model,
) -> Result<(), String> {
    match t {
        Term::Arg(i) => arg(*i),
        Term::Const {
            threshold: Some(th),
            ..
        } if th.0 as usize >= m.thresholds.len() => {
            Err(format!("threshold id {} out of range", th.0))
        }
        _ => Ok(()),
    }
}

/// The language server's path: the original policy analysed, then file `k` edited to
/// `edited` through the salsa input, then edited back. Each incremental analysis must
/// equal a fresh one of the same texts.
pub(crate) fn check_incremental(
    original: &[(String, String)],
    k: usize,
    edited: &str,
) -> Result<(), String> {
    let fresh = |files: &[(String, String)]| {
        let mut db = Database::default();
        let loaded = db.load(files.to_vec());
        db.analysis(loaded)
    };
    let mut db = Database::default();
    let loaded = db.load(original.to_vec());
    let before = db.analysis(loaded);
    let file = loaded.workspace.files(&db)[k];
    file.set_text(&mut db).to(edited.to_string());
    let mut edited_files = original.to_vec();
    edited_files[k].1 = edited.to_string();
    if db.analysis(loaded) != fresh(&edited_files) {
        return Err("the incremental analysis after the edit differs from a fresh one".into());
    }
    file.set_text(&mut db).to(original[k].1.clone());
    if db.analysis(loaded) != before {
        return Err(
            "the incremental analysis after undoing the edit differs from the first".into(),
        );
    }
    Ok(())
}

pub(crate) fn one_file(text: String) -> Vec<(String, String)> {
    vec![("policy.agentpolicy".to_string(), text)]
}
