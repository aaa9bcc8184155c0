//! Glob matching on long texts: the compiled [`Glob`] (what the request builder runs)
//! against the two-pointer reference [`glob_match`], on 1,000-character globs and a
//! 1 MB text, in the shapes that matter (see `patterns`). The reference is timed on a
//! 64 KiB text (it is `O(pattern × text)`: on 1 MB it takes seconds per match, which
//! `--bench glob -- reference_1mb` measures too).
//!
//! Run: `cargo bench -p agentpolicy-runtime --bench glob`.

use std::hint::black_box;

use agentpolicy_runtime::{Glob, glob_match};
use criterion::{Criterion, criterion_group, criterion_main};

/// (name, pattern): none matches a text of `a`s. Four of 1,000 characters: a long
/// literal suffix after a star (compared from the end), a long literal segment between
/// stars (`str::find`), a long segment with `?` between stars (shift-and, 16 words of
/// state), 500 one-character segments; and a 62-character segment with `?` (shift-and
/// in one register).
fn patterns() -> Vec<(&'static str, String)> {
    vec![
        ("star_then_999", format!("*{}b", "a".repeat(998))),
        ("literal_998", format!("*{}b*", "a".repeat(997))),
        ("wild_998", format!("*{}b*", "a?".repeat(498))),
        ("stars_500", "*a".repeat(499) + "*b*"),
        ("wild_62", format!("*{}b*", "a?".repeat(30))),
    ]
}

fn bench(c: &mut Criterion) {
    let mb = "a".repeat(1 << 20);
    let kib64 = "a".repeat(64 << 10);
    let mut group = c.benchmark_group("glob");
    group.sample_size(10);
    for (name, pattern) in patterns() {
        let Ok(glob) = Glob::new(&pattern) else {
            continue;
        };
        assert!(!glob.matches(&mb));
        group.bench_function(format!("compiled_1mb/{name}"), |b| {
            b.iter(|| glob.matches(black_box(&mb)))
        });
        group.bench_function(format!("compiled_64k/{name}"), |b| {
            b.iter(|| glob.matches(black_box(&kib64)))
        });
        group.bench_function(format!("reference_64k/{name}"), |b| {
            b.iter(|| glob_match(black_box(&pattern), black_box(&kib64)))
        });
        group.bench_function(format!("reference_1mb/{name}"), |b| {
            b.iter(|| glob_match(black_box(&pattern), black_box(&mb)))
        });
        group.bench_function(format!("compile/{name}"), |b| {
            b.iter(|| Glob::new(black_box(&pattern)).is_ok())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
