//! Differential test of the verifier's text encodings (sets, globs, `list<text>`
//! quantifiers, argument provenance, session taint): random small policies whose only
//! assert is `assert never a calls t`, checked against brute force through the runtime's
//! `decide` over a finite domain of requests. A request found by brute force that gets
//! through means the assert must not be proved (soundness of the string encoding); a
//! counterexample the verifier reports must replay as a request that gets through
//! (which the verifier already checks; here it is checked again from the outside). When
//! brute force finds nothing, a counterexample is still possible (the domain is finite),
//! but then it must replay.
//!
//! The alphabet has characters of every plane of Unicode: Z3 4.8.12's strings stop at
//! U+2FFFF, so characters above it (tag characters, plane 16) are where an encoding can
//! go wrong; requests also carry characters no policy mentions (U+0000, U+E007F).
//!
//! `AGENTPOLICY_TEXT_CASES` sets the number of policies (default 40).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use agentpolicy::codegen;
use agentpolicy::db::Database;
use agentpolicy::diagnostics::FileId;
use agentpolicy_runtime::{
    ArgValue, DecisionTable, KeyValueInterner, Outcome, SessionView, decide,
};
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

/// Characters policies mention: ASCII, Latin-1, the BMP (U+FFFD), planes 1 and 2, the
/// last character of Z3's strings (U+2FFFF), plane 3, a tag character (plane 14) and
/// plane 16.
const POLICY_CHARS: [char; 10] = [
    'a',
    '@',
    '\u{E9}',
    '\u{FFFD}',
    '\u{1F600}',
    '\u{2A6D6}',
    '\u{2FFFF}',
    '\u{30000}',
    '\u{E0001}',
    '\u{10FFFD}',
];

/// Characters only requests carry.
const REQUEST_CHARS: [char; 3] = ['\u{0}', '\u{E007F}', '\u{10FFFF}'];

/// Every string up to length 2 over `alphabet`.
fn strings(alphabet: &[char]) -> Vec<String> {
    let mut out = vec![String::new()];
    for x in alphabet {
        out.push(x.to_string());
        for y in alphabet {
            out.push(format!("{x}{y}"));
        }
    }
    out
}

/// Texts of the policies: every string up to length 2 over [`POLICY_CHARS`].
fn texts() -> Vec<String> {
    strings(&POLICY_CHARS)
}

fn glob(rng: &mut Rng) -> String {
    let mut tokens: Vec<String> = POLICY_CHARS.iter().map(char::to_string).collect();
    tokens.extend([
        "*".to_string(),
        "*".to_string(),
        "?".to_string(),
        "?".to_string(),
    ]);
    (0..1 + rng.below(3))
        .map(|_| tokens[rng.below(tokens.len())].clone())
        .collect()
}

fn literal(rng: &mut Rng) -> String {
    // Single characters half of the time, so that rules overlap.
    if rng.chance(50) {
        return POLICY_CHARS[rng.below(POLICY_CHARS.len())].to_string();
    }
    let t = texts();
    t[rng.below(t.len())].clone()
}

/// A random condition over `s: text`, `xs: list<text>`, provenance and taint.
fn cond(rng: &mut Rng, depth: u32) -> String {
    if depth > 0 && rng.chance(35) {
        let a = cond(rng, depth - 1);
        let b = cond(rng, depth - 1);
        return match rng.below(3) {
            0 => format!("({a} and {b})"),
            1 => format!("({a} or {b})"),
            _ => format!("not ({a})"),
        };
    }
    let not = if rng.chance(30) { "not " } else { "" };
    match rng.below(9) {
        0 => format!("s {not}in small"),
        1 => format!("s {not}matches \"{}\"", glob(rng)),
        2 => format!("s == \"{}\"", literal(rng)),
        3 => format!("all xs {not}matches \"{}\"", glob(rng)),
        4 => format!("any xs {not}matches \"{}\"", glob(rng)),
        5 => format!("any xs {not}in small"),
        6 => format!("all xs == \"{}\"", literal(rng)),
        7 => "s from untrusted".to_string(),
        _ => "tainted".to_string(),
    }
}

fn policy(rng: &mut Rng, n: u64) -> String {
    let members: Vec<String> = (0..rng.below(4))
        .map(|_| format!("\"{}\"", literal(rng)))
        .collect();
    let mut p = format!(
        "policy texts{n} version \"1\"\ntiers public < internal\n\
         escalation ops {{ notify \"q\" timeout 1m then deny }}\n\
         set small = [{}]\n\
         tool t(s: text, xs: list<text>) {{ effect write }}\n\
         agent a {{\n  owner \"o@x.example\"\n",
        members.join(", ")
    );
    // An escalate rule lets a request with a missing value through (fail safe), so
    // most rules allow or deny; a deny that repeats an allow's condition makes proofs.
    let allowed = cond(rng, 2);
    p.push_str(&format!("  allow t when {allowed}\n"));
    for _ in 0..rng.below(3) {
        let kind = ["allow", "escalate", "deny", "deny"][rng.below(4)];
        let route = if kind == "escalate" { " to ops" } else { "" };
        p.push_str(&format!("  {kind} t{route} when {}\n", cond(rng, 2)));
    }
    if rng.chance(50) {
        p.push_str(&format!("  deny t when {allowed}\n"));
    }
    p.push_str("}\nassert never a calls t\n");
    p
}

fn compile(text: &str) -> Option<(agentpolicy::model::Model, DecisionTable)> {
    let mut db = Database::default();
    let loaded = db.load(vec![("texts.agentpolicy".into(), text.into())]);
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

/// A request that gets through (allowed or escalated), by brute force.
fn brute_force(table: &DecisionTable) -> Option<String> {
    let mut alphabet = POLICY_CHARS.to_vec();
    alphabet.extend(REQUEST_CHARS);
    let all = strings(&alphabet);
    let elements = [
        "",
        "a",
        "\u{E9}@",
        "\u{E0001}",
        "\u{10FFFD}",
        "\u{0}\u{30000}",
        "\u{E007F}",
    ];
    let mut lists: Vec<Vec<&str>> = vec![vec![]];
    for x in elements {
        lists.push(vec![x]);
        for y in elements {
            lists.push(vec![x, y]);
        }
    }
    for s in all.iter().map(|s| Some(s.as_str())).chain([None]) {
        for xs in lists.iter().map(Some).chain([None]) {
            for tainted in [false, true] {
                for untrusted in [false, true] {
                    let mut b = table.request("a", "t").expect("request");
                    if let Some(s) = s {
                        b = b.arg("s", ArgValue::Text(s)).expect("s");
                    }
                    if let Some(xs) = xs {
                        b = b.arg("xs", ArgValue::TextList(xs)).expect("xs");
                    }
                    if untrusted {
                        b = b.untrusted("s").expect("untrusted");
                    }
                    let request = b
                        .session(SessionView {
                            tainted,
                            ..SessionView::default()
                        })
                        .build();
                    if decide(table, &request).outcome != Outcome::Deny {
                        return Some(format!(
                            "s={s:?} xs={xs:?} tainted={tainted} untrusted={untrusted}"
                        ));
                    }
                }
            }
        }
    }
    None
}

/// Whether the verifier proves the policy's assert (`None` if it does not compile);
/// panics when the verdict contradicts brute force or a counterexample does not replay.
fn check(text: &str) -> Option<bool> {
    let (model, table) = compile(text)?;
    let report = verify::verify(&model, &table, &Config::default());
    let verdict = report
        .results
        .iter()
        .find(|r| r.property == Property::Assert)
        .map(|r| &r.verdict)
        .expect("the assert has a verdict");
    let found = brute_force(&table);
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
            for call in &cex.calls {
                let bound = call.table(&table).expect("sets bind");
                let request = call
                    .to_request(&bound, &mut KeyValueInterner::default())
                    .expect("valid request");
                assert_ne!(
                    decide(&bound, &request).outcome,
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
fn the_string_encoding_agrees_with_brute_force() {
    let cases: u64 = std::env::var("AGENTPOLICY_TEXT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (mut checked, mut proved, mut refuted) = (0, 0, 0);
    for n in 0..cases * 4 {
        if checked == cases {
            break;
        }
        let text = policy(&mut rng, n);
        match check(&text) {
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

/// Every character, of every plane, is one character to the verifier: `?` matches it, a
/// glob or set names it apart from every other, and a request carrying it replays.
#[test]
fn every_plane_is_one_character() {
    let mut policies: Vec<(String, bool)> = Vec::new();
    for c in POLICY_CHARS {
        let other = if c == 'a' { '@' } else { 'a' };
        let policy = |rules: &str| {
            format!(
                "policy planes version \"1\"\ntiers public < internal\n\
                 set small = [\"{c}\", \"{c}{c}\"]\n\
                 tool t(s: text, xs: list<text>) {{ effect write }}\n\
                 agent a {{\n  owner \"o@x.example\"\n{rules}\n}}\nassert never a calls t\n"
            )
        };
        policies.extend([
            // Only texts with `c` get through: the encoding must not make `?` miss it.
            (policy(&format!("  allow t when s matches \"?\"\n  deny t when not (s == \"{c}\")")), false),
            (policy(&format!("  allow t when s matches \"*{c}\"\n  deny t when s matches \"??*\"")), false),
            (policy("  allow t when s in small\n  deny t when s matches \"?\""), false),
            (policy(&format!("  allow t when any xs matches \"{c}?\"\n  deny t when all xs matches \"{other}*\"")), false),
            // `c` is one character, and no other: nothing gets through.
            (policy(&format!("  allow t when s == \"{c}\"\n  deny t when s matches \"?\"")), true),
            (policy("  allow t when s in small\n  deny t when s matches \"?\"\n  deny t when s matches \"??\""), true),
            (policy(&format!("  allow t when any xs matches \"?{c}\"\n  deny t when any xs matches \"*\"")), true),
        ]);
        for o in POLICY_CHARS.iter().filter(|o| **o != c) {
            policies.push((
                policy(&format!(
                    "  allow t when s matches \"{c}*\"\n  deny t when not (s matches \"{o}*\")"
                )),
                true,
            ));
        }
    }
    for (text, proved) in policies {
        assert_eq!(check(&text), Some(proved), "{text}");
    }
}
