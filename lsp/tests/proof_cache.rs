//! The editor's cached, per-agent proofs say what `agentpolicy check` says: for every
//! example policy and its broken variant, the diagnostics of a cold run, and of a warm run
//! served wholly from the cache, equal those of one `verify::verify` over the whole table:
//! same codes, messages, locations and help, and a counterexample exactly where the whole
//! run has one. The counterexample itself may be another witness (Z3's model depends on
//! the queries asked before), each one replayed through the runtime by the verifier.
#![expect(
    clippy::expect_used,
    reason = "a missing example or a table that cannot be built fails the test"
)]

use std::path::{Path, PathBuf};

use agentpolicy_lsp::proofs::{self, ProofCache};
use agentpolicy_lsp::state::{PolicyState, uri};
use agentpolicy_verify::{self as verify, Config};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Diagnostics in a comparable, order-free form, with the counterexample's presence but
/// not its text.
fn sorted(diagnostics: &[agentpolicy::diagnostics::Diagnostic]) -> Vec<String> {
    let mut out: Vec<String> = diagnostics
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.counterexample = d.counterexample.map(|_| "a counterexample".to_string());
            format!("{d:?}")
        })
        .collect();
    out.sort();
    out
}

fn check(state: &PolicyState, name: &str) -> usize {
    let analysis = state.analysis();
    let input = proofs::input(state, &analysis).expect("a clean front end");
    let config = Config::default();
    let mut cache = ProofCache::default();
    let cold = proofs::prove(&input, &mut cache, &config);
    assert_eq!(cold.summary.skipped, None, "{name}");
    assert_eq!(
        cold.summary.proved_agents.len(),
        analysis.model.agents.len()
    );
    let warm = proofs::prove(&input, &mut cache, &config);
    assert!(warm.summary.proved_agents.is_empty(), "{name}");
    assert!(!warm.summary.proved_asserts, "{name}");

    let sources: Vec<(String, String)> = state
        .files()
        .iter()
        .map(|d| (String::new(), state.text(d).to_string()))
        .collect();
    let table = agentpolicy::codegen::build_table(&analysis.model, &sources).expect("a table");
    let whole = verify::verify(&analysis.model, &table, &config).diagnostics();
    assert_eq!(sorted(&cold.diagnostics), sorted(&whole), "{name}");
    assert_eq!(sorted(&warm.diagnostics), sorted(&whole), "{name}");
    whole.len()
}

fn open_file(path: &Path) -> PolicyState {
    let (mut state, _) = PolicyState::new(None);
    let text = std::fs::read_to_string(path).expect("read example");
    let u = uri(&format!("file://{}", path.display())).expect("uri");
    state.open(u, 1, text).expect("open");
    state
}

#[test]
fn cached_per_agent_proofs_agree_with_one_whole_run() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(examples())
        .expect("examples")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "{dirs:?}");
    let mut findings = 0;
    for dir in dirs {
        let (mut state, _) = PolicyState::new(None);
        state.load_root(&dir);
        check(&state, &dir.display().to_string());
        // Not every example has a broken variant (the MCP filesystem example has none).
        let broken = dir.join("broken/policy.agentpolicy");
        if broken.is_file() {
            findings += check(&open_file(&broken), &broken.display().to_string());
        }
    }
    // The broken variants do fail proofs, so the comparison is not of empty lists.
    assert!(findings > 0);
}
