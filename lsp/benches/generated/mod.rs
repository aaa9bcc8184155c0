//! The generated policy both latency benchmarks edit: 150 tools, 100 thresholds and 50
//! routes, then agents of about 20 lines each until the policy has the lines asked for.
#![expect(
    clippy::expect_used,
    reason = "the generator's own output always has a rule line"
)]

use std::fmt::Write as _;

/// Declarations: tools, thresholds and routes, then agents of 20 lines each, until the
/// policy has `lines` lines; split over `files` files.
pub fn generate(lines: usize, files: usize) -> Vec<String> {
    let mut head = String::from("policy bench version \"1\"\n\nuse std.common\n\n");
    for i in 0..150 {
        let _ = writeln!(
            head,
            "tool tool_{i}(amount: money, note: text?) {{ effect financial, irreversible }}"
        );
    }
    for i in 0..100 {
        let _ = writeln!(head, "threshold limit_{i} = ${},000", i + 1);
    }
    for i in 0..50 {
        let _ = writeln!(
            head,
            "escalation route_{i} {{ notify \"queue:{i}\"  timeout 15m then deny }}"
        );
    }
    let mut agents = Vec::new();
    let mut count = head.lines().count();
    let mut a = 0;
    while count < lines {
        let mut agent = format!(
            "\n// agent {a}\nagent agent_{a} {{\n  owner \"team{a}@example.com\"\n  max tier internal\n"
        );
        for r in 0..7 {
            let t = (a * 7 + r) % 150;
            let _ = writeln!(
                agent,
                "  escalate tool_{t} to route_{} when amount > $100",
                (a + r) % 50
            );
            let _ = writeln!(
                agent,
                "  deny tool_{t} when amount > limit_{}",
                (a + r) % 100
            );
        }
        agent.push_str("  limit 100 calls per task, 20 calls per minute\n}\n");
        count += agent.lines().count();
        agents.push(agent);
        a += 1;
    }
    let mut out = vec![head];
    out.extend((1..files).map(|_| String::new()));
    let per_file = agents.len().div_ceil(files);
    for (i, agent) in agents.into_iter().enumerate() {
        let f = (i / per_file.max(1)).min(files - 1);
        out[f].push_str(&agent);
    }
    out
}

/// The line and byte column of the `1` in the first `$100` of a rule: the benchmarks flip
/// it between `$100` and `$101`, so each edit really changes the tree.
pub fn edit_position(text: &str) -> (u32, u32) {
    let line = text
        .lines()
        .position(|l| l.contains("when amount > $100"))
        .expect("a rule line");
    let col = text
        .lines()
        .nth(line)
        .and_then(|l| l.find("$100"))
        .expect("amount");
    (line as u32, col as u32)
}
