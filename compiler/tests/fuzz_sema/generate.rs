//! Generated policies over a small shared vocabulary, so that names mostly resolve and
//! analysis is often clean enough to reach code generation, with extreme values mixed in.

use proptest::prelude::*;

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
pub(crate) fn generated_policy() -> impl Strategy<Value = String> {
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
