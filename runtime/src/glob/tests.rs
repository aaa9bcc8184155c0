//! The glob matchers against a brute-force reference and against each other.

use super::*;

/// A slow, obviously right matcher to compare against.
fn reference(tokens: &[GlobToken], text: &[char]) -> bool {
    match tokens.split_first() {
        None => text.is_empty(),
        Some((GlobToken::Star, rest)) => (0..=text.len()).any(|i| reference(rest, &text[i..])),
        Some((GlobToken::One, rest)) => !text.is_empty() && reference(rest, &text[1..]),
        Some((GlobToken::Char(c), rest)) => text.first() == Some(c) && reference(rest, &text[1..]),
    }
}

#[test]
fn agrees_with_a_reference_matcher_on_every_short_case() {
    let alphabet = ['a', 'b', '*', '?', 'é'];
    let texts = ['a', 'b', 'é'];
    let mut patterns = vec![String::new()];
    for _ in 0..4 {
        let longer: Vec<String> = patterns
            .iter()
            .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
            .collect();
        patterns.extend(longer);
    }
    patterns.sort();
    patterns.dedup();
    let mut inputs = vec![String::new()];
    for _ in 0..4 {
        let longer: Vec<String> = inputs
            .iter()
            .flat_map(|p| texts.iter().map(move |c| format!("{p}{c}")))
            .collect();
        inputs.extend(longer);
    }
    inputs.sort();
    inputs.dedup();
    for p in &patterns {
        let tokens = glob_tokens(p).unwrap();
        let compiled = Glob::new(p).unwrap();
        for t in &inputs {
            let chars: Vec<char> = t.chars().collect();
            let expected = reference(&tokens, &chars);
            assert_eq!(glob_match(p, t), expected, "{p:?} on {t:?}");
            assert_eq!(compiled.matches(t), expected, "compiled {p:?} on {t:?}");
        }
    }
}

#[test]
fn many_stars_on_a_long_text_stay_fast() {
    // Exponential for a naive backtracker; here a few hundred thousand steps.
    let pattern = "*a*a*a*a*a*a*a*a*a*a*b";
    let text = "a".repeat(400);
    assert!(!glob_match(pattern, &text));
}

#[test]
fn escapes() {
    assert!(glob_match(r"\*", "*"));
    assert!(!glob_match(r"\*", "x"));
    assert!(glob_match(r"a\\b", r"a\b"));
    assert_eq!(glob_tokens(r"\x"), Err(GlobError::NeedlessEscape('x')));
}

#[test]
fn compiled_many_stars_on_a_long_text() {
    let text = "a".repeat(100_000);
    assert!(!Glob::new("*a*a*a*a*a*a*a*a*a*a*b").unwrap().matches(&text));
    assert!(Glob::new("*a*a*a*a*a*a*a*a*a*a*").unwrap().matches(&text));
}

#[test]
fn segments_longer_than_one_word_and_than_the_stack() {
    // 70 and 600 atoms between two stars: two words, and more than STACK_WORDS words.
    for n in [63usize, 64, 65, 70, 128, 129, 600] {
        let seg: String = (0..n)
            .map(|i| {
                if i % 7 == 3 {
                    '?'
                } else {
                    if i % 2 == 0 { 'a' } else { 'b' }
                }
            })
            .collect();
        let pattern = format!("x*{seg}*y");
        let g = Glob::new(&pattern).unwrap();
        let body: String = (0..n)
            .map(|i| {
                if i % 7 == 3 {
                    'é'
                } else {
                    if i % 2 == 0 { 'a' } else { 'b' }
                }
            })
            .collect();
        for text in [
            format!("x{body}y"),
            format!("xzz{body}zzy"),
            format!("x{}y", &body[..body.len() - 1]),
            format!("x{body}"),
            format!("xab{body}bay"),
        ] {
            assert_eq!(
                g.matches(&text),
                glob_match(&pattern, &text),
                "{n} {text:?}"
            );
        }
    }
}

#[test]
fn prefix_and_suffix_may_not_overlap() {
    let g = Glob::new("ab*ba").unwrap();
    assert!(!g.matches("aba"));
    assert!(g.matches("abba"));
    assert!(Glob::new("a*a").unwrap().matches("aa"));
    assert!(!Glob::new("a*a").unwrap().matches("a"));
    assert!(Glob::new("*").unwrap().matches(""));
    assert!(Glob::new("").unwrap().matches(""));
    assert!(!Glob::new("").unwrap().matches("x"));
    assert!(Glob::new("**").unwrap().matches("xyz"));
}

/// A glob from random tokens, written with escapes so it parses back to them.
fn pattern_of(tokens: &[GlobToken]) -> String {
    tokens
        .iter()
        .map(|t| match t {
            GlobToken::Star => "*".to_owned(),
            GlobToken::One => "?".to_owned(),
            GlobToken::Char(c @ ('*' | '?' | '\\')) => format!("\\{c}"),
            GlobToken::Char(c) => c.to_string(),
        })
        .collect()
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A small alphabet so matches happen, with non-ASCII (two-, three- and four-byte)
    /// characters and the escaped metacharacters.
    fn character() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => prop::sample::select(vec!['a', 'b', 'c']),
            1 => prop::sample::select(vec!['é', '→', '𝄞', '*', '?', '\\', '\n']),
            1 => any::<char>(),
        ]
    }

    fn token() -> impl Strategy<Value = GlobToken> {
        prop_oneof![
            2 => Just(GlobToken::Star),
            2 => Just(GlobToken::One),
            6 => character().prop_map(GlobToken::Char),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        #[test]
        fn compiled_agrees_with_the_two_pointer_matcher(
            tokens in prop::collection::vec(token(), 0..12),
            text in prop::collection::vec(character(), 0..24),
        ) {
            let pattern = pattern_of(&tokens);
            prop_assert_eq!(glob_tokens(&pattern).unwrap(), tokens);
            let text: String = text.into_iter().collect();
            let g = Glob::new(&pattern).unwrap();
            prop_assert_eq!(g.matches(&text), glob_match(&pattern, &text), "{:?} on {:?}", pattern, text);
        }

        #[test]
        fn compiled_agrees_on_texts_built_to_match(
            tokens in prop::collection::vec(token(), 0..20),
            fill in prop::collection::vec(character(), 0..8),
            flip in any::<prop::sample::Index>(),
        ) {
            // A text that matches: each token replaced by a character it accepts (stars
            // by a short fill); then one character changed, which may break the match.
            let pattern = pattern_of(&tokens);
            let mut text: Vec<char> = Vec::new();
            for t in &tokens {
                match t {
                    GlobToken::Star => text.extend(fill.iter().copied()),
                    GlobToken::One => text.push('é'),
                    GlobToken::Char(c) => text.push(*c),
                }
            }
            let g = Glob::new(&pattern).unwrap();
            let whole: String = text.iter().collect();
            prop_assert!(g.matches(&whole), "{:?} on {:?}", pattern, whole);
            prop_assert!(glob_match(&pattern, &whole));
            if !text.is_empty() {
                let i = flip.index(text.len());
                text[i] = 'b';
                let changed: String = text.into_iter().collect();
                prop_assert_eq!(g.matches(&changed), glob_match(&pattern, &changed), "{:?} on {:?}", pattern, changed);
            }
        }
    }
}
