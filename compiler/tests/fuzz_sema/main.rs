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
//! form, and runs the policy's tests; codegen never reports an inconsistent table; and
//! an edit through the salsa input (the language server's path) analyses exactly as a
//! fresh database would, and so does undoing it.
//!
//! The property tests run a few hundred cases so the file stays fast in a debug build;
//! set `PROPTEST_CASES` for a longer run. Failures are persisted by proptest and replayed.
//!
//! `checks.rs` holds what must hold, `mutate.rs` the corpus and its mutations,
//! `generate.rs` the policy generator.

#![cfg(test)]

mod checks;
mod generate;
mod mutate;

use agentpolicy::diagnostics::FileId;
use agentpolicy::syntax::parse;
use proptest::prelude::*;

use checks::{Reached, check, check_incremental, one_file};
use generate::generated_policy;
use mutate::{corpus, mutated_policy};

/// `PROPTEST_CASES` overrides the default number of cases, for a longer run by hand.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
    fn mutated_real_policies_analyse_and_compile_soundly(mutated in mutated_policy()) {
        let files = &mutated.files;
        let result = check(files).and_then(|_| {
            check_incremental(&corpus()[mutated.policy], mutated.file, &files[mutated.file].1)
        });
        if let Err(e) = result {
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
