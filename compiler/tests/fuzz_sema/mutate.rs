//! The real policies (examples and fixtures) and their mutations: tokens and lines
//! deleted, duplicated or swapped, names replaced by other names of the file, values made
//! extreme, keywords inserted, the text truncated.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use agentpolicy::syntax::lexer::{KEYWORDS, TokenKind, lex};
use proptest::prelude::*;
use proptest::sample::Index;

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
pub(crate) fn corpus() -> &'static [Vec<(String, String)>] {
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
    /// A line of another policy of the corpus inserted before a line.
    Splice(Index, Index, Index),
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
        3 => (i(), i(), i()).prop_map(|(a, b, c)| Mutation::Splice(a, b, c)),
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
        Mutation::Splice(at, policy, line) => {
            let donor = policy.get(corpus());
            let donor_lines: Vec<&str> = donor.iter().flat_map(|(_, t)| t.lines()).collect();
            if donor_lines.is_empty() {
                return text.to_string();
            }
            let inserted = format!("{}\n", line.get(&donor_lines));
            let k = at.index(lines.len() + 1);
            let mut out: String = lines[..k].concat();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&inserted);
            out.push_str(&lines[k..].concat());
            out
        }
        _ => text.to_string(),
    }
}

/// A policy of the corpus with one of its files mutated.
#[derive(Debug, Clone)]
pub(crate) struct Mutated {
    /// Index of the original in `corpus()`.
    pub policy: usize,
    /// Index of the mutated file.
    pub file: usize,
    pub files: Vec<(String, String)>,
}

pub(crate) fn mutated_policy() -> impl Strategy<Value = Mutated> {
    (
        any::<Index>(),
        any::<Index>(),
        prop::collection::vec(mutation(), 1..5),
    )
        .prop_map(|(policy, file, mutations)| {
            let policy = policy.index(corpus().len());
            let mut files = corpus()[policy].clone();
            let k = file.index(files.len());
            for m in &mutations {
                files[k].1 = apply(&files[k].1, m);
            }
            Mutated {
                policy,
                file: k,
                files,
            }
        })
}
