//! Fuzzing semantic analysis and code generation, which the language server runs on every
//! keystroke: generated policies (coherent enough to reach code generation, with extreme
//! values) and the real policies of `examples/` and `tests/fixtures/` mutated (tokens and
//! lines deleted, duplicated or swapped, names replaced by other names of the file, values
//! made extreme, keywords inserted, the text truncated) go through the salsa `Database`
//! and, when analysis finds no error, `codegen::build_table`.
//!
//! What must hold for every input: nothing panics; every id in the model indexes its
//! vector (ARCHITECTURE.md, "Model ids are dense and valid"), with or without errors;
//! every diagnostic points into a file of the policy, on character boundaries, and
//! renders; a built table passes the runtime's validation, reads back from its binary
//! form, and runs the policy's tests; codegen never reports an inconsistent table.
//!
//! The property tests run a few hundred cases so the file stays fast in a debug build;
//! set `PROPTEST_CASES` for a longer run. Failures are persisted by proptest and replayed.

#![cfg(test)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use agentpolicy::codegen::build_table;
use agentpolicy::db::Database;
use agentpolicy::diagnostics::{Diagnostic, FileId, Label};
use agentpolicy::model::*;
use agentpolicy::policy_test::run_tests;
use agentpolicy::render::{self, Sources};
use agentpolicy::stdlib;
use agentpolicy::syntax::lexer::{KEYWORDS, TokenKind, lex};
use agentpolicy::syntax::parse;
use agentpolicy_runtime::DecisionTable;
use proptest::prelude::*;
use proptest::sample::Index;

/// `PROPTEST_CASES` overrides the default number of cases, for a longer run by hand.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------------------ the checks

/// How far a policy got, so tests can tell the fuzzer is not vacuous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    /// Analysis reported errors.
    Errors,
    /// Analysis was clean; codegen reported what the table format cannot hold.
    Refused,
    /// A table was built, validated and its tests run.
    Built,
}

/// Analyses the policy made of `files` (user files, ids `0..n`) and checks everything
/// that must hold for any input; `Err` says what did not.
fn check(files: &[(String, String)]) -> Result<Reached, String> {
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
                Cond::Matches { arg: i, .. } | Cond::FromUntrusted { arg: i } => arg(*i)?,
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

fn one_file(text: String) -> Vec<(String, String)> {
    vec![("policy.agentpolicy".to_string(), text)]
}

// ------------------------------------------------------------------ the corpus

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the compiler crate is inside the workspace")
        .to_path_buf()
}

fn agentpolicy_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "agentpolicy"))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path.display().to_string(), text)
}

/// The real policies: each example (its files together, and its broken variant), and
/// each fixture that analyses cleanly (`ok/`, `verify/`, `verify/ok/`).
fn corpus() -> &'static [Vec<(String, String)>] {
    static CORPUS: OnceLock<Vec<Vec<(String, String)>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = repo_root();
        let mut policies = Vec::new();
        let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
            .expect("examples/")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        examples.sort();
        for dir in examples {
            policies.push(agentpolicy_files(&dir).iter().map(|p| read(p)).collect());
            let broken = dir.join("broken");
            if broken.is_dir() {
                policies.push(agentpolicy_files(&broken).iter().map(|p| read(p)).collect());
            }
        }
        for sub in [
            "tests/fixtures/ok",
            "tests/fixtures/verify",
            "tests/fixtures/verify/ok",
        ] {
            for p in agentpolicy_files(&root.join(sub)) {
                policies.push(vec![read(&p)]);
            }
        }
        policies
    })
}

// ------------------------------------------------------------------ mutations

/// Values at and past the edges of what the compiler holds exactly.
const EXTREMES: &[&str] = &[
    "$0",
    "$0.01",
    "$92,233,720,368,547,758.07",
    "$92,233,720,368,547,758.08",
    "$99999999999999999999",
    "$9,999,999B",
    "0",
    "99999999999999999999",
    "999999999999.999999",
    "0.0000001",
    "0%",
    "100%",
    "100.0001%",
    "99999999999999999999%",
    "0ms",
    "0y",
    "9223372036854775807ms",
    "106751991167d",
    "99999999999999999999w",
    "584942417y",
    "\"\"",
    "\"*\"",
    "\"\\\\\"",
    "[]",
];

#[derive(Debug, Clone)]
enum Mutation {
    DeleteToken(Index),
    DuplicateToken(Index),
    SwapTokens(Index, Index),
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    /// An identifier replaced by another identifier of the same file.
    ReplaceName(Index, Index),
    /// A value (number, money, percentage, duration, string) replaced by an extreme one.
    ExtremeValue(Index, Index),
    /// A keyword inserted before a token.
    InsertKeyword(Index, Index),
    /// The text cut before a token.
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let i = any::<Index>;
    prop_oneof![
        2 => i().prop_map(Mutation::DeleteToken),
        1 => i().prop_map(Mutation::DuplicateToken),
        1 => (i(), i()).prop_map(|(a, b)| Mutation::SwapTokens(a, b)),
        2 => i().prop_map(Mutation::DeleteLine),
        1 => i().prop_map(Mutation::DuplicateLine),
        1 => (i(), i()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        4 => (i(), i()).prop_map(|(a, b)| Mutation::ReplaceName(a, b)),
        4 => (i(), i()).prop_map(|(a, b)| Mutation::ExtremeValue(a, b)),
        2 => (i(), i()).prop_map(|(a, b)| Mutation::InsertKeyword(a, b)),
        1 => i().prop_map(Mutation::Truncate),
    ]
}

/// Byte ranges of the significant tokens of `text`.
fn significant(text: &str, keep: impl Fn(TokenKind) -> bool) -> Vec<(usize, usize)> {
    lex(text)
        .into_iter()
        .filter(|t| !t.kind.is_trivia() && keep(t.kind))
        .map(|t| (t.start as usize, t.end as usize))
        .collect()
}

fn replace(text: &str, (start, end): (usize, usize), with: &str) -> String {
    format!("{}{with}{}", &text[..start], &text[end..])
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let tokens = significant(text, |_| true);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    match mutation {
        Mutation::DeleteToken(i) if !tokens.is_empty() => replace(text, *i.get(&tokens), ""),
        Mutation::DuplicateToken(i) if !tokens.is_empty() => {
            let (s, e) = *i.get(&tokens);
            replace(text, (s, s), &format!("{} ", &text[s..e]))
        }
        Mutation::SwapTokens(a, b) if !tokens.is_empty() => {
            let (mut x, mut y) = (*a.get(&tokens), *b.get(&tokens));
            if x.0 > y.0 {
                std::mem::swap(&mut x, &mut y);
            }
            if x == y {
                return text.to_string();
            }
            format!(
                "{}{}{}{}{}",
                &text[..x.0],
                &text[y.0..y.1],
                &text[x.1..y.0],
                &text[x.0..x.1],
                &text[y.1..]
            )
        }
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            let k = i.index(lines.len());
            lines
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .map(|(_, l)| *l)
                .collect()
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let k = i.index(lines.len());
            let mut out = String::new();
            for (j, l) in lines.iter().enumerate() {
                out.push_str(l);
                if j == k {
                    if !l.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str(l);
                }
            }
            out
        }
        Mutation::SwapLines(a, b) if !lines.is_empty() => {
            let mut lines: Vec<String> = lines
                .iter()
                .map(|l| {
                    let mut l = l.to_string();
                    if !l.ends_with('\n') {
                        l.push('\n');
                    }
                    l
                })
                .collect();
            let (x, y) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(x, y);
            lines.concat()
        }
        Mutation::ReplaceName(a, b) => {
            let names = significant(text, |k| k == TokenKind::Ident);
            if names.is_empty() {
                return text.to_string();
            }
            let (s, e) = *b.get(&names);
            replace(text, *a.get(&names), &text[s..e])
        }
        Mutation::ExtremeValue(a, b) => {
            let values = significant(text, |k| {
                matches!(
                    k,
                    TokenKind::Money
                        | TokenKind::Number
                        | TokenKind::Percent
                        | TokenKind::Duration
                        | TokenKind::String
                )
            });
            if values.is_empty() {
                return text.to_string();
            }
            let extreme = EXTREMES[b.index(EXTREMES.len())];
            replace(text, *a.get(&values), extreme)
        }
        Mutation::InsertKeyword(a, b) if !tokens.is_empty() => {
            let (s, _) = *a.get(&tokens);
            replace(text, (s, s), &format!("{} ", b.get(KEYWORDS)))
        }
        Mutation::Truncate(i) if !tokens.is_empty() => text[..i.get(&tokens).0].to_string(),
        _ => text.to_string(),
    }
}

fn mutated_policy() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        any::<Index>(),
        any::<Index>(),
        prop::collection::vec(mutation(), 1..5),
    )
        .prop_map(|(policy, file, mutations)| {
            let mut files = policy.get(corpus()).clone();
            let k = file.index(files.len());
            for m in &mutations {
                files[k].1 = apply(&files[k].1, m);
            }
            files
        })
}

// ------------------------------------------------------------------ generated policies

fn pick(xs: &'static [&'static str]) -> impl Strategy<Value = &'static str> + Clone {
    prop::sample::select(xs)
}

const TIERS: &[&str] = &["public", "internal", "confidential", "restricted"];
const KEYS: &[&str] = &["matter", "client"];
const RESOURCES: &[&str] = &["docs", "ledger", "inbox"];
const SINKS: &[&str] = &["email", "archive"];
const TOOLS: &[&str] = &["search", "wire", "send", "fetch"];
const PARAMS: &[&str] = &[
    "amount: money",
    "to: text",
    "urgent: bool",
    "tags: list<text>",
    "wait: duration",
    "score: number",
    "rate: percent",
    "note: text?",
    "limit_to: money?",
];
const ARGS: &[&str] = &[
    "amount",
    "to",
    "urgent",
    "tags",
    "wait",
    "score",
    "rate",
    "note",
    "limit_to",
    "confidence",
    "tainted",
    "big",
    "cutoff",
];
const SETS: &[&str] = &["vip", "blocked", "nobody"];
const THRESHOLDS: &[&str] = &["big", "cutoff"];
const ROUTES: &[&str] = &["ops", "legal"];
const AGENTS: &[&str] = &["intake", "clerk", "bot"];
const EFFECTS: &[&str] = &["read", "write", "external", "financial", "irreversible"];
const OPS: &[&str] = &["<", "<=", ">", ">=", "==", "!="];
const LITERALS: &[&str] = &[
    "$0",
    "$10,000",
    "$1.5M",
    "$92,233,720,368,547,758.07",
    "0",
    "0.85",
    "99999999999999999999",
    "999999999999.999999",
    "0%",
    "20%",
    "100%",
    "0ms",
    "15m",
    "9223372036854775807ms",
    "\"x\"",
    "\"*@acme.example\"",
    "true",
    "false",
];
const TEXTS: &[&str] = &[
    "\"\"",
    "\"*\"",
    "\"*@acme.example\"",
    "\"a?c\"",
    "\"\\\\\"",
    "\"x\"",
];
const DURATIONS: &[&str] = &[
    "0ms",
    "30s",
    "15m",
    "2h",
    "7d",
    "7y",
    "0y",
    "584942417y",
    "9223372036854775807ms",
];

fn list(xs: Vec<&str>, sep: &str) -> String {
    xs.join(sep)
}

/// A comparison of a value with a literal of its type (extremes included), which types.
fn typed_comparison() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            pick(&["amount", "big", "limit_to"]),
            pick(&[
                "$0",
                "$0.01",
                "$10,000",
                "$1.5M",
                "$92,233,720,368,547,758.07",
                "cutoff"
            ])
        ),
        (pick(&["to", "note"]), pick(TEXTS)),
        (
            pick(&["score", "confidence"]),
            pick(&["0", "0.85", "1", "999999999999.999999", "0.000001"])
        ),
        (Just("rate"), pick(&["0%", "20%", "100%", "0.0001%"])),
        (
            Just("wait"),
            pick(&["0ms", "15m", "9223372036854775807ms", "106751991167d"])
        ),
        (pick(&["urgent", "tainted"]), pick(&["true", "false"])),
    ]
    .prop_flat_map(|(a, l)| {
        let ops: &'static [&'static str] = if l.starts_with('"') || l == "true" || l == "false" {
            &["==", "!="]
        } else {
            OPS
        };
        pick(ops).prop_map(move |op| format!("{a} {op} {l}"))
    })
}

fn condition() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        6 => typed_comparison(),
        2 => (pick(ARGS), pick(OPS), pick(LITERALS)).prop_map(|(a, op, l)| format!("{a} {op} {l}")),
        1 => (pick(ARGS), pick(OPS), pick(ARGS)).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        1 => (pick(ARGS), prop::bool::ANY, pick(SETS))
            .prop_map(|(a, not, s)| format!("{a} {}in {s}", if not { "not " } else { "" })),
        1 => (pick(ARGS), pick(LITERALS), pick(LITERALS)).prop_map(|(a, l, h)| format!("{a} in {l}..{h}")),
        1 => (pick(ARGS), prop::bool::ANY, pick(TEXTS))
            .prop_map(|(a, not, t)| format!("{a} {}matches {t}", if not { "not " } else { "" })),
        1 => pick(ARGS).prop_map(|a| format!("{a} from untrusted")),
        1 => pick(EFFECTS).prop_map(|e| format!("effect {e}")),
        1 => (pick(&["all", "any"]), pick(ARGS), prop_oneof![
                pick(SETS).prop_map(|s| format!("in {s}")),
                pick(SETS).prop_map(|s| format!("not in {s}")),
                pick(TEXTS).prop_map(|t| format!("matches {t}")),
                (pick(OPS), pick(LITERALS)).prop_map(|(o, l)| format!("{o} {l}")),
            ])
            .prop_map(|(q, a, t)| format!("{q} {a} {t}")),
        1 => pick(ARGS).prop_map(str::to_string),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| format!("not {c}")),
            inner.clone().prop_map(|c| format!("({c})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a} or {b}")),
        ]
    })
}

fn tool() -> impl Strategy<Value = String> {
    (
        pick(TOOLS),
        prop::collection::vec(pick(PARAMS), 0..5),
        prop::collection::vec(pick(EFFECTS), 0..3),
        prop::option::of(pick(RESOURCES)),
        prop::option::of(pick(SINKS)),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(name, params, effects, reads, writes, untrusted)| {
            let mut members = Vec::new();
            if !effects.is_empty() {
                members.push(format!("effect {}", list(effects, ", ")));
            }
            if let Some(r) = reads {
                members.push(format!("reads {r}"));
            }
            if let Some(s) = writes {
                members.push(format!("writes {s}"));
            }
            if untrusted {
                members.push("untrusted".into());
            }
            format!(
                "tool {name}({}) {{ {} }}",
                list(params, ", "),
                members.join(" ")
            )
        })
}

fn agent_member() -> impl Strategy<Value = String> {
    let rule = (
        pick(&["allow", "allow", "escalate", "deny"]),
        prop_oneof![4 => pick(TOOLS), 1 => Just("*")],
        prop::option::of(pick(ROUTES)),
        prop::option::of(condition()),
    )
        .prop_map(|(kind, target, route, cond)| {
            let mut out = format!("{kind} {target}");
            if kind == "escalate" || route.is_some() && target == "wire" {
                out.push_str(&format!(" to {}", route.unwrap_or("ops")));
            }
            if let Some(c) = cond {
                out.push_str(&format!(" when {c}"));
            }
            out
        });
    let rule = (rule, prop::bool::weighted(0.5)).prop_map(|(rule, keep_condition)| {
        match rule.split_once(" when ") {
            Some((plain, _)) if !keep_condition => plain.to_string(),
            _ => rule,
        }
    });
    let criterion = (
        pick(&[
            "shadow_agreement",
            "errors",
            "escalation_rate",
            "approval_rate",
            "denials",
        ]),
        pick(OPS),
        pick(&[
            "0",
            "3",
            "98%",
            "0.99",
            "100%",
            "99999999999999999999",
            "100.5%",
        ]),
        prop::option::of(pick(&["0", "500", "1.5", "99999999999999999999"])),
    )
        .prop_map(|(m, op, v, w)| match w {
            Some(w) => format!("{m} {op} {v} over {w} decisions"),
            None => format!("{m} {op} {v}"),
        });
    prop_oneof![
        8 => rule,
        1 => Just("owner \"ops@acme.example\"".to_string()),
        1 => Just("purpose \"tests\"".to_string()),
        1 => pick(TIERS).prop_map(|t| format!("max tier {t}")),
        1 => (pick(TOOLS), condition()).prop_map(|(t, c)| format!("autonomy {t} when {c} because \"why\"")),
        1 => (
            pick(&["0", "1", "100", "1.5", "99999999999999999999", "9223372036854775807"]),
            pick(&["calls", "tokens"]),
            pick(&["task", "session", "minute", "hour", "day"]),
        )
            .prop_map(|(n, u, w)| format!("limit {n} {u} per {w}")),
        1 => (
            pick(&["error_rate", "calls", "tokens", "denials"]),
            pick(OPS),
            pick(&["0", "20%", "100%", "100.5%", "5", "0.5", "99999999999999999999"]),
            pick(DURATIONS),
            pick(&["", " agent", " engine"]),
        )
            .prop_map(|(m, op, v, d, s)| format!("breaker {m} {op} {v} over {d} then suspend{s}")),
        1 => pick(&["shadow", "enforce"]).prop_map(|m| format!("mode {m}")),
        1 => (pick(&["key", "token"]), prop::option::weighted(0.8, pick(DURATIONS)))
            .prop_map(|(n, d)| match d {
                Some(d) => format!("credential {n} expires {d}"),
                None => format!("credential {n}"),
            }),
        1 => (pick(&["shadow", "supervised", "autonomous"]), prop::option::of(pick(ROUTES)))
            .prop_map(|(s, r)| match r {
                Some(r) => format!("stage {s} to {r}"),
                None => format!("stage {s}"),
            }),
        1 => (pick(&["shadow", "supervised", "autonomous"]), prop::collection::vec(criterion, 1..3))
            .prop_map(|(s, cs)| format!("promote to {s} when {}", cs.join(" and "))),
    ]
}

fn agent() -> impl Strategy<Value = String> {
    (
        pick(AGENTS),
        prop::bool::weighted(0.9),
        prop::collection::vec(agent_member(), 0..7),
    )
        .prop_map(|(name, owner, members)| {
            let mut all = Vec::new();
            if owner {
                all.push("owner \"ops@acme.example\"".to_string());
            }
            all.extend(members);
            format!("agent {name} {{\n  {}\n}}", all.join("\n  "))
        })
}

fn call_arg() -> impl Strategy<Value = String> {
    (
        pick(ARGS),
        prop::bool::weighted(0.1),
        prop_oneof![
            4 => pick(LITERALS).prop_map(str::to_string),
            1 => prop::collection::vec(pick(TEXTS), 0..3).prop_map(|t| format!("[{}]", t.join(", "))),
        ],
    )
        .prop_map(|(n, untrusted, v)| {
            format!("{n}: {}{v}", if untrusted { "untrusted " } else { "" })
        })
}

fn test_decl() -> impl Strategy<Value = String> {
    let key_args = prop::collection::vec(
        (pick(KEYS), pick(&["\"m1\"", "\"m2\""])).prop_map(|(k, v)| format!("{k}: {v}")),
        0..2,
    );
    let step = (
        pick(AGENTS),
        pick(TOOLS),
        prop::collection::vec(call_arg(), 0..4),
        prop::option::of(pick(&["0.5", "1", "0", "99999999999999999999"])),
        prop::option::of((pick(RESOURCES), key_args.clone())),
        prop::option::of((pick(SINKS), key_args)),
    )
        .prop_map(|(a, t, args, conf, on, into)| {
            let mut out = format!("{a} calls {t}({})", args.join(", "));
            if let Some(c) = conf {
                out.push_str(&format!(" with confidence {c}"));
            }
            if let Some((r, keys)) = on {
                out.push_str(&format!(" on {r}({})", keys.join(", ")));
            }
            if let Some((s, keys)) = into {
                out.push_str(&format!(" into {s}({})", keys.join(", ")));
            }
            out
        });
    let expect = prop_oneof![
        Just("expect allow".to_string()),
        prop::option::of(pick(ROUTES)).prop_map(|r| match r {
            Some(r) => format!("expect escalate to {r}"),
            None => "expect escalate".to_string(),
        }),
        pick(&[
            "",
            " flow",
            " limit",
            " suspended",
            " not_granted",
            " no_rule",
            " rule"
        ])
        .prop_map(|r| format!("expect deny{r}")),
    ];
    (prop::collection::vec(step, 1..4), expect).prop_map(|(steps, expect)| {
        format!(
            "test \"t\" {{\n  {}\n  {expect}\n}}",
            steps.join("\n  then ")
        )
    })
}

fn declaration() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => pick(&["common", "legal", "finance", "healthcare", "engineering", "nothing"])
            .prop_map(|m| format!("use std.{m}")),
        1 => pick(KEYS).prop_map(|k| format!("isolate {k}")),
        2 => (pick(RESOURCES), prop::option::of(pick(TIERS)), prop::option::of(pick(KEYS)), prop::bool::weighted(0.2))
            .prop_map(|(r, t, k, u)| {
                let mut m = Vec::new();
                if let Some(t) = t { m.push(format!("tier {t}")); }
                if let Some(k) = k { m.push(format!("keyed {k}")); }
                if u { m.push("untrusted".to_string()); }
                format!("resource {r} {{ {} }}", m.join(" "))
            }),
        1 => (pick(SINKS), prop::option::of(pick(TIERS)), prop::option::of(pick(KEYS)))
            .prop_map(|(s, t, k)| {
                let mut m = Vec::new();
                if let Some(t) = t { m.push(format!("clearance {t}")); }
                if let Some(k) = k { m.push(format!("keyed {k}")); }
                format!("sink {s} {{ {} }}", m.join(" "))
            }),
        3 => tool(),
        1 => (pick(SETS), prop_oneof![
                Just("from deploy".to_string()),
                prop::collection::vec(pick(TEXTS), 0..4).prop_map(|t| format!("= [{}]", t.join(", "))),
            ])
            .prop_map(|(s, src)| format!("set {s} {src}")),
        1 => (pick(THRESHOLDS), pick(LITERALS)).prop_map(|(t, l)| format!("threshold {t} = {l}")),
        2 => (pick(ROUTES), prop::option::of(pick(DURATIONS)), prop::option::of(pick(&["allow", "deny"])))
            .prop_map(|(r, d, then)| match (d, then) {
                (Some(d), Some(o)) => format!("escalation {r} {{ notify \"q\" timeout {d} then {o} }}"),
                (Some(d), None) => format!("escalation {r} {{ timeout {d} }}"),
                _ => format!("escalation {r} {{ notify \"q\" }}"),
            }),
        4 => agent(),
        1 => prop_oneof![
                (pick(AGENTS), prop_oneof![pick(TOOLS), Just("*")], prop::option::of(condition()))
                    .prop_map(|(a, t, c)| match c {
                        Some(c) => format!("assert never {a} calls {t} when {c}"),
                        None => format!("assert never {a} calls {t}"),
                    }),
                Just("assert every irreversible tool escalates".to_string()),
                Just("assert every irreversible tool escalates when tainted".to_string()),
                (pick(AGENTS), pick(TIERS)).prop_map(|(a, t)| format!("assert {a} never reads {t}")),
                (pick(TIERS), pick(SINKS)).prop_map(|(t, s)| format!("assert no flow from {t} to {s}")),
            ],
        1 => test_decl(),
        1 => (prop::option::of(pick(TIERS)), pick(DURATIONS)).prop_map(|(t, d)| match t {
                Some(t) => format!("retain audit for {t} {d}"),
                None => format!("retain audit {d}"),
            }),
    ]
}

/// The well-formed declarations most policies share, so rules mostly resolve: keys,
/// resources, sinks, sets, thresholds and routes over the tiers.
const PREAMBLE: &str = "isolate matter
resource docs { tier public keyed matter }
resource ledger { tier internal untrusted }
resource inbox { tier public }
sink email { clearance public keyed matter }
sink archive { clearance internal }
set vip = [\"a@acme.example\", \"b\"]
set blocked from deploy
threshold big = $10,000
threshold cutoff = $92,233,720,368,547,758.07
escalation ops { notify \"q:ops\" timeout 15m then deny }
escalation legal { notify \"q:legal\" timeout 7d then allow }
";

/// A tool with `amount` and `to` and some or all of the other parameters, each once.
fn coherent_tool(name: &'static str) -> impl Strategy<Value = String> {
    (
        prop_oneof![
            2 => Just(PARAMS[2..].to_vec()),
            1 => prop::sample::subsequence(&PARAMS[2..], 0..4),
        ],
        prop::collection::vec(pick(EFFECTS), 0..3),
        prop::option::of(pick(RESOURCES)),
        prop::option::of(pick(SINKS)),
        prop::bool::weighted(0.2),
    )
        .prop_map(move |(params, effects, reads, writes, untrusted)| {
            let mut all = vec!["amount: money", "to: text"];
            all.extend(params);
            let mut members = Vec::new();
            if !effects.is_empty() {
                members.push(format!("effect {}", list(effects, ", ")));
            }
            if let Some(r) = reads {
                members.push(format!("reads {r}"));
            }
            if let Some(s) = writes {
                members.push(format!("writes {s}"));
            }
            if untrusted {
                members.push("untrusted".into());
            }
            format!(
                "tool {name}({}) {{ {} }}",
                list(all, ", "),
                members.join(" ")
            )
        })
}

/// A policy over a small shared vocabulary, so names mostly resolve and code generation
/// is reached: a header, usually the tiers and the preamble, each tool and agent name
/// at most once, then a few declarations of any kind (duplicates included).
fn generated_policy() -> impl Strategy<Value = String> {
    let tools = prop_oneof![
        3 => Just(TOOLS.to_vec()),
        1 => prop::sample::subsequence(TOOLS, 0..=TOOLS.len()),
    ]
    .prop_flat_map(|names| {
        names
            .into_iter()
            .map(|n| {
                let any_tool = tool().prop_map(move |t| match t.find('(') {
                    Some(i) => format!("tool {n}{}", &t[i..]),
                    None => t,
                });
                prop_oneof![4 => coherent_tool(n).boxed(), 1 => any_tool.boxed()]
            })
            .collect::<Vec<_>>()
    });
    let agents = prop::sample::subsequence(AGENTS, 0..=AGENTS.len()).prop_flat_map(|names| {
        names
            .into_iter()
            .map(|n| agent().prop_map(move |a| a.replacen(a.split(' ').nth(1).unwrap_or(n), n, 1)))
            .collect::<Vec<_>>()
    });
    (
        prop::bool::weighted(0.95),
        prop_oneof![
            4 => Just(Some(TIERS.to_vec())),
            1 => prop::option::of(prop::sample::subsequence(TIERS, 2..=TIERS.len())),
        ],
        prop::bool::weighted(0.8),
        tools,
        agents,
        prop_oneof![Just(Vec::new()), prop::collection::vec(declaration(), 1..5),],
    )
        .prop_map(|(header, tiers, preamble, tools, agents, decls)| {
            let mut out = String::new();
            if header {
                out.push_str("policy generated version \"1\"\n");
            }
            if let Some(t) = tiers {
                out.push_str(&format!("tiers {}\n", t.join(" < ")));
            }
            if preamble {
                out.push_str(PREAMBLE);
            }
            for d in tools.into_iter().chain(agents).chain(decls) {
                out.push_str(&d);
                out.push('\n');
            }
            out
        })
}

// ------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn generated_policies_analyse_and_compile_soundly(source in generated_policy()) {
        let files = one_file(source);
        if let Err(e) = check(&files) {
            prop_assert!(false, "{}\n--- policy ---\n{}", e, files[0].1);
        }
    }

    #[test]
    fn mutated_real_policies_analyse_and_compile_soundly(files in mutated_policy()) {
        if let Err(e) = check(&files) {
            let shown: Vec<String> = files.iter().map(|(p, t)| format!("--- {p} ---\n{t}")).collect();
            prop_assert!(false, "{}\n{}", e, shown.join("\n"));
        }
    }
}

// ------------------------------------------------------------------ deterministic cases

/// Every real policy analyses and compiles as is: the mutations start from policies that
/// reach code generation.
#[test]
fn the_corpus_compiles() {
    let mut built = 0;
    for files in corpus() {
        match check(files) {
            Ok(Reached::Built) => built += 1,
            Ok(_) => {}
            Err(e) => panic!("{}: {e}", files[0].0),
        }
    }
    assert!(
        built * 10 >= corpus().len() * 8,
        "only {built} of {} corpus policies built a table",
        corpus().len()
    );
}

/// Each file of the corpus cut before each of its items (the whole file is
/// `the_corpus_compiles`): what the language server sees while a file is typed top to
/// bottom.
#[test]
fn truncating_at_every_item_boundary() {
    for files in corpus() {
        for (k, (path, text)) in files.iter().enumerate() {
            let parsed = parse(FileId(k as u32), text);
            let cuts = parsed
                .tree
                .items
                .iter()
                .map(|item| item.range.start as usize);
            for cut in cuts {
                let mut cut_files = files.clone();
                cut_files[k].1 = text[..cut].to_string();
                if let Err(e) = check(&cut_files) {
                    panic!("{path} cut at byte {cut}: {e}");
                }
            }
        }
    }
}

/// The generator is not vacuous: a good share of its policies analyse cleanly and build
/// a table, so code generation and the runtime's validation are exercised.
#[test]
fn the_generator_reaches_code_generation() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = generated_policy();
    let mut counts = [0usize; 3];
    for _ in 0..200 {
        let source = strategy
            .new_tree(&mut runner)
            .expect("a generated policy")
            .current();
        match check(&one_file(source.clone())) {
            Ok(Reached::Errors) => counts[0] += 1,
            Ok(Reached::Refused) => counts[1] += 1,
            Ok(Reached::Built) => counts[2] += 1,
            Err(e) => panic!("{e}\n{source}"),
        }
    }
    assert!(counts[2] >= 20, "errors / refused / built: {counts:?}");
}

/// The one id exception (see `check_model`), found by the generator: it stays confined
/// to models with errors, which code generation never sees.
#[test]
fn a_tier_with_no_tiers_declared_is_an_error() {
    for source in [
        "resource docs {  }\n",
        "policy p version \"1\"\nresource docs { tier public }\nsink out { clearance public }\n",
    ] {
        assert_eq!(
            check(&one_file(source.to_string())),
            Ok(Reached::Errors),
            "{source}"
        );
    }
}
