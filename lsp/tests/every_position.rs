//! Every feature at every position of awkward texts (multi-byte characters, CRLF,
//! unterminated strings and comments, garbage, half-typed rules) answers without
//! panicking: in process, through the same functions the server calls.

use agentpolicy_lsp::state::{PolicyState, uri};
use agentpolicy_lsp::{
    code_actions, completion, diagnostics, folding, formatting, hover, inlay_hints, navigation,
    semantic_tokens, symbols,
};
use tower_lsp_server::ls_types::{Position, Range};

const TEXTS: &[&str] = &[
    "policy p version \"1\"\r\nuse std.legal\r\ntool t(a: money) { effect read }\r\nagent x {\r\n  owner \"é😀\"\r\n  allow t when a > $1\r\n}\r\n",
    "/* 🚀 unterminated block\nagent a { allow",
    "agent a { owner \"unterminated\n  escalate * to when confidence < ",
    "tiers a < b < a\nresource r { tier zz keyed q }\nsink s { clearance }\n\u{0}\u{feff}é",
    "test \"t😀\" {\n  a calls t(x: $1, ) with confidence 0.5 on r(k: \"v\")\n  expect escalate to \n}",
    "assert never a calls * when (x > 1 and not y) or\nassert every irreversible tool escalates\nthreshold = \n",
    "",
    "😀😀😀\n\n\n",
];

#[test]
fn no_feature_panics_anywhere() {
    for (i, text) in TEXTS.iter().enumerate() {
        let (mut state, _) = PolicyState::new(None);
        let u = uri(&format!("file:///t/f{i}.agentpolicy")).expect("uri");
        state.open(u.clone(), 1, (*text).to_string()).expect("open");
        let lines = text.split('\n').count() as u32 + 1;
        let world = state.world();
        let _ = diagnostics::collect(world.state, &world.analysis, Some("https://docs.example/d"));
        semantic_tokens::full(&world, &u).expect("tokens");
        symbols::document_symbols(&world, &u).expect("symbols");
        let _ = symbols::workspace_symbols(&world, "a");
        folding::folding_ranges(&world, &u).expect("folding");
        let everything = Range::new(Position::new(0, 0), Position::new(lines + 5, 0));
        inlay_hints::inlay_hints(&world, &u, everything).expect("inlay hints");
        let _ = formatting::formatting(&world, &u).expect("formatting");
        for line in 0..lines {
            for character in 0..24 {
                let p = Position::new(line, character);
                hover::hover(&world, &u, p).expect("hover");
                completion::completion(&world, &u, p, false).expect("completion");
                navigation::goto_definition(&world, &u, p).expect("definition");
                inlay_hints::document_highlights(&world, &u, p).expect("highlights");
                navigation::references(&world, &u, p, true).expect("references");
                let _ = navigation::prepare_rename(&world, &u, p);
                let _ = navigation::rename(&world, &u, p, "renamed");
                code_actions::code_actions(&world, &u, Range::new(p, Position::new(line + 1, 0)))
                    .expect("code actions");
            }
        }
        drop(world);
        // Edits anywhere, including past the end and inside a surrogate pair.
        for (v, line) in (0..lines).enumerate() {
            let r = Range::new(Position::new(line, 1), Position::new(line + 1, 3));
            state
                .change(&u, v as i32 + 2, vec![(Some(r), "x😀\n".to_string())])
                .expect("change");
            let world = state.world();
            semantic_tokens::full(&world, &u).expect("tokens after edit");
        }
    }
}
