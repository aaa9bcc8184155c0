//! Glob matching on long texts: the compiled [`Glob`] (what the request builder runs)
//! against the two-pointer reference [`glob_match`], on 1,000-character globs and a
//! 1 MB text, in the three shapes that matter: a long literal suffix after a star, a long
//! segment between two stars (16 words of shift-and state), and 500 one-character
//! segments. The reference runs on a 64 KiB text only (it is `O(pattern × text)`: on
//! 1 MB it takes seconds per match; `--bench glob -- reference_1mb` measures that too).
//!
//! Run: `cargo bench -p agentpolicy-runtime --bench glob`.

use std::hint::black_box;

use agentpolicy_runtime::{Glob, glob_match};
use criterion::{Criterion, criterion_group, criterion_main};

/// (name, pattern): each 1,000 characters long, none matching a text of `a`s.
fn patterns() -> Vec<(&'static str, String)> {
    vec![
        ("star_then_999", format!("*{}b", "a".repeat(998))),
        ("segment_998", format!("*{}b*", "a".repeat(998))),
        ("stars_500", "*a".repeat(499) + "*b*"),
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
