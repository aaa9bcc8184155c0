//! Differential test of the verifier's id encoding of sets written in the policy (a tool
//! whose text tests are all set membership has its texts read as integer ids, and a set
//! as intervals of its members' ids, without the string theory): random small policies
//! with overlapping sets, `==` constants, two text arguments and asserts that test sets
//! themselves, checked against brute force through the runtime's `decide` over a domain
//! that is complete for them (every member and constant, two texts nothing mentions, and
//! a missing value, for each argument). A proof must leave brute force nothing; a
//! counterexample must replay as a request that gets through and satisfies the assert's
//! condition. Unknown fails the test.
//!
//! `AGENTPOLICY_SET_CASES` sets the number of policies (default 40).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use agentpolicy::codegen;
use agentpolicy::db::Database;
use agentpolicy::diagnostics::FileId;
use agentpolicy_runtime::{ArgValue, DecisionTable, KeyValueInterner, Outcome, decide};
use agentpolicy_verify::{self as verify, Config, Property, Verdict};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Texts sets and constants are drawn from (one is also a constant of the asserts only).
const TEXTS: [&str; 7] = ["a", "b", "c", "d", "e", "f\u{E9}", "g@h.example"];
/// Texts nothing mentions.
const UNLISTED: [&str; 2] = ["zz", "\u{10FFFD}y"];
const SETS: [&str; 3] = ["s1", "s2", "s3"];
/// Amounts in cents: missing, and one cent either side of each constant and the constant.
const AMOUNTS: [Option<i64>; 7] = [
    None,
    Some(99),
    Some(100),
    Some(101),
    Some(149),
    Some(150),
    Some(151),
];

/// A condition: its source text and its meaning (over `s`, `u`, `amount` in cents,
/// with `None` for a missing value; `None` as the result when a value it reads is
/// missing).
struct Cond {
    text: String,
    eval: Box<Eval>,
}

/// A condition's meaning: sets' members, `s` and `u`, `amount`.
type Eval = dyn Fn(&[Vec<&str>; 3], [Option<&str>; 2], Option<i64>) -> Option<bool>;

fn leaf(rng: &mut Rng) -> Cond {
    let arg = rng.below(2);
    let name = ["s", "u"][arg];
    match rng.below(5) {
        0 | 1 => {
            let set = rng.below(SETS.len());
            let not = rng.chance(30);
            Cond {
                text: format!("{name} {}in {}", if not { "not " } else { "" }, SETS[set]),
                eval: Box::new(move |sets, args, _| {
                    args[arg].map(|t| sets[set].contains(&t) != not)
                }),
            }
        }
        2 => {
            let c = TEXTS[rng.below(TEXTS.len())];
            let ne = rng.chance(30);
            Cond {
                text: format!("{name} {} \"{c}\"", if ne { "!=" } else { "==" }),
                eval: Box::new(move |_, args, _| args[arg].map(|t| (t == c) != ne)),
            }
        }
        3 => Cond {
            text: "s == u".into(),
            eval: Box::new(|_, args, _| Some(args[0]? == args[1]?)),
        },
        _ => {
            let (op, bound) = [("<", 100), (">", 100), (">=", 150)][rng.below(3)];
            Cond {
                text: format!("amount {op} ${}.{:02}", bound / 100, bound % 100),
                eval: Box::new(move |_, _, amount| {
                    let a = amount?;
                    Some(match op {
                        "<" => a < bound,
                        ">" => a > bound,
                        _ => a >= bound,
                    })
                }),
            }
        }
    }
}

fn cond(rng: &mut Rng, depth: u32) -> Cond {
    if depth == 0 || !rng.chance(40) {
        return leaf(rng);
    }
    let a = cond(rng, depth - 1);
    let b = cond(rng, depth - 1);
    let (ea, eb) = (a.eval, b.eval);
    if rng.chance(50) {
        Cond {
            text: format!("({} and {})", a.text, b.text),
            // A missing value makes the whole condition unknown (the runtime's rule).
            eval: Box::new(move |s, x, m| Some(ea(s, x, m)? & eb(s, x, m)?)),
        }
    } else {
        Cond {
            text: format!("({} or {})", a.text, b.text),
            eval: Box::new(move |s, x, m| Some(ea(s, x, m)? | eb(s, x, m)?)),
        }
    }
}

struct Case {
    text: String,
    sets: [Vec<&'static str>; 3],
    /// The assert's `when` (`None`: `assert never a calls t`).
    when: Option<Cond>,
}

fn case(rng: &mut Rng, n: u64) -> Case {
    let sets: [Vec<&str>; 3] = std::array::from_fn(|_| {
        let mut m: Vec<&str> = TEXTS.iter().copied().filter(|_| rng.chance(40)).collect();
        if m.is_empty() {
            m.push(TEXTS[rng.below(TEXTS.len())]);
        }
        m
    });
    let mut text = format!("policy sets{n} version \"1\"\n");
    text.push_str("escalation ops { notify \"q\" timeout 1m then deny }\n");
    for (name, members) in SETS.iter().zip(&sets) {
        let quoted: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
        text.push_str(&format!("set {name} = [{}]\n", quoted.join(", ")));
    }
    text.push_str("tool t(s: text, u: text, amount: money) { effect write }\n");
    text.push_str("agent a {\n  owner \"o@x.example\"\n");
    let allowed = cond(rng, 2);
    text.push_str(&format!("  allow t when {}\n", allowed.text));
    for _ in 0..rng.below(4) {
        let kind = ["allow", "escalate", "deny", "deny"][rng.below(4)];
        let route = if kind == "escalate" { " to ops" } else { "" };
        text.push_str(&format!("  {kind} t{route} when {}\n", cond(rng, 2).text));
    }
    text.push_str("}\n");
    let when = rng.chance(60).then(|| cond(rng, 1));
    match &when {
        Some(w) => text.push_str(&format!("assert never a calls t when {}\n", w.text)),
        None => text.push_str("assert never a calls t\n"),
    }
    Case { text, sets, when }
}

fn compile(text: &str) -> Option<(agentpolicy::model::Model, DecisionTable)> {
    let mut db = Database::default();
    let loaded = db.load(vec![("sets.agentpolicy".into(), text.into())]);
    let analysis = db.analysis(loaded);
    if analysis.has_errors() {
        return None;
    }
    let mut sources = Vec::new();
    while let Some((p, t)) = db.file(loaded, FileId(sources.len() as u32)) {
        sources.push((p.to_string(), t.to_string()));
    }
    let table = codegen::build_table(&analysis.model, &sources).ok()?;
    Some(((*analysis.model).clone(), table))
}

/// A request that gets through and that the assert's condition covers (a condition
/// that reads a missing value covers the request: asserts fail safe), by brute force.
fn brute_force(case: &Case, table: &DecisionTable) -> Option<String> {
    let texts: Vec<Option<&str>> = TEXTS
        .iter()
        .chain(&UNLISTED)
        .map(|t| Some(*t))
        .chain([None])
        .collect();
    for &s in &texts {
        for &u in &texts {
            for amount in AMOUNTS {
                let covered = case
                    .when
                    .as_ref()
                    .is_none_or(|w| (w.eval)(&case.sets, [s, u], amount).unwrap_or(true));
                if !covered {
                    continue;
                }
                let mut b = table.request("a", "t").expect("request");
                for (name, v) in [("s", s), ("u", u)] {
                    if let Some(v) = v {
                        b = b.arg(name, ArgValue::Text(v)).expect("text");
                    }
                }
                if let Some(a) = amount {
                    b = b.arg("amount", ArgValue::Money(a)).expect("amount");
                }
                if decide(table, &b.build()).outcome != Outcome::Deny {
                    return Some(format!("s={s:?} u={u:?} amount={amount:?}"));
                }
            }
        }
    }
    None
}

/// Whether the verifier proves the assert (`None` if the policy does not compile);
/// panics when it contradicts brute force or a counterexample does not replay.
fn check(case: &Case) -> Option<bool> {
    let text = &case.text;
    let (model, table) = compile(text)?;
    let report = verify::verify(&model, &table, &Config::default());
    for r in &report.results {
        if let Verdict::Unknown(reason) = &r.verdict {
            panic!("{:?} unknown ({reason}) on\n{text}", r.property);
        }
    }
    let verdict = report
        .results
        .iter()
        .find(|r| r.property == Property::Assert)
        .map(|r| &r.verdict)
        .expect("the assert has a verdict");
    let found = brute_force(case, &table);
    match verdict {
        Verdict::Proved => {
            assert!(
                found.is_none(),
                "proved, but {} gets through:\n{text}",
                found.unwrap_or_default()
            );
            Some(true)
        }
        Verdict::Counterexample(cex) => {
            assert!(
                found.is_some(),
                "a counterexample brute force lacks:\n{text}"
            );
            for call in &cex.calls {
                let request = call
                    .to_request(&table, &mut KeyValueInterner::default())
                    .expect("valid request");
                assert_ne!(
                    decide(&table, &request).outcome,
                    Outcome::Deny,
                    "{}\n{text}",
                    call.to_json()
                );
            }
            Some(false)
        }
        Verdict::Unknown(reason) => panic!("unknown ({reason}) on\n{text}"),
        Verdict::Finding => panic!("an assert has no finding verdict:\n{text}"),
    }
}

#[test]
fn the_id_encoding_of_sets_agrees_with_brute_force() {
    let cases: u64 = std::env::var("AGENTPOLICY_SET_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut checked, mut proved, mut refuted) = (0, 0, 0);
    for n in 0..cases * 4 {
        if checked == cases {
            break;
        }
        let case = case(&mut rng, n);
        match check(&case) {
            None => continue,
            Some(true) => proved += 1,
            Some(false) => refuted += 1,
        }
        checked += 1;
    }
    assert_eq!(checked, cases, "too few policies compiled");
    assert!(
        proved > cases / 10 && refuted > cases / 10,
        "{proved} proved, {refuted} refuted"
    );
}
