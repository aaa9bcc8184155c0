//! End-to-end tests of the language server: each starts the real `agentpolicy-lsp`
//! binary and talks to it over stdio as an editor would.
#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected protocol answers"
)]

mod support;

use serde_json::{Value, json};
use support::{Client, file_uri, position_of, temp_dir};

const TOOLS: &str = r#"policy acme version "1"

use std.common

tool search_docs(query: text) { effect read }
tool wire_funds(amount: money, memo: text?) { effect financial, irreversible }

threshold large_payment = $10,000

escalation ops_leads { notify "queue:ops-leads"  timeout 15m then deny }
"#;

const AGENTS: &str = r#"// The intake agent.
agent intake {
  owner "ops@acme.example"
  max tier internal
  allow search_docs
  escalate wire_funds to ops_leads when amount > $100
  deny wire_funds when amount > large_payment
}
"#;

fn codes(diagnostics: &[Value]) -> Vec<String> {
    diagnostics
        .iter()
        .map(|d| d["code"].as_str().unwrap_or("").to_string())
        .collect()
}

fn has_version(v: i64) -> impl Fn(&Value) -> bool {
    move |p: &Value| p["version"] == json!(v)
}

#[test]
fn diagnostics_follow_edits_and_the_server_exits_cleanly() {
    let dir = temp_dir("lifecycle");
    let mut client = Client::start(&dir);
    let init = client.initialize(None);
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-16");
    assert_eq!(init["capabilities"]["textDocumentSync"]["change"], 2);

    let uri = file_uri(&dir.join("policy.agentpolicy"));
    let text = format!(
        "{TOOLS}{}",
        AGENTS.replace("allow search_docs", "allow search_doc")
    );
    client.open(&uri, &text);
    let diagnostics = client.diagnostics(&uri, has_version(1));
    assert_eq!(codes(&diagnostics), vec!["AP0011"], "{diagnostics:#?}");
    let d = &diagnostics[0];
    assert_eq!(d["severity"], 1);
    assert_eq!(d["source"], "agentpolicy");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `search_docs`?")
    );
    let start = position_of(&text, "search_doc\n", 0);
    assert_eq!(d["range"]["start"], start);

    // Fix it with a ranged edit: insert the missing `s`.
    let end =
        json!({"line": start["line"], "character": start["character"].as_u64().unwrap() + 10});
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"range": {"start": end, "end": end}, "text": "s"}]
        }),
    );
    let diagnostics = client.diagnostics(&uri, has_version(2));
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");

    // Break it again with a whole-text change: a syntax error and a semantic error.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 3},
            "contentChanges": [{"text": format!("{TOOLS}agent a {{ owner \"x\" allow nope }}\ntool {{\n")}]
        }),
    );
    let diagnostics = client.diagnostics(&uri, has_version(3));
    let found = codes(&diagnostics);
    assert!(found.contains(&"AP0001".to_string()), "{found:?}");
    assert!(found.contains(&"AP0011".to_string()), "{found:?}");
    client.shutdown();
}

#[test]
fn multi_file_workspace_navigates_and_renames_across_files() {
    let dir = temp_dir("workspace");
    let root = dir.join("policy");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.agentpolicy"), TOOLS).unwrap();
    std::fs::write(root.join("b.agentpolicy"), AGENTS).unwrap();
    // Broken variants kept beside a policy are not part of it, like the CLI.
    std::fs::create_dir_all(root.join("broken")).unwrap();
    std::fs::write(root.join("broken/x.agentpolicy"), "garbage {").unwrap();
    let a = file_uri(&root.join("a.agentpolicy"));
    let b = file_uri(&root.join("b.agentpolicy"));

    let mut client = Client::start(&dir);
    client.initialize(Some(&root));
    client.open(&b, AGENTS);
    // Both files are analysed together (b uses a's tools): no diagnostics in either,
    // and the file that is only on disk gets its (empty) list too.
    assert!(client.diagnostics(&b, has_version(1)).is_empty());
    assert!(client.diagnostics(&a, |_| true).is_empty());

    // Definition of a tool used in b is in a.
    let at = position_of(AGENTS, "wire_funds", 0);
    let def = client.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": b}, "position": at}),
    );
    assert_eq!(def["uri"], a);
    assert_eq!(def["range"]["start"], position_of(TOOLS, "wire_funds", 0));

    // Definition of an argument in `when` is the tool's parameter.
    let amount = position_of(AGENTS, "amount", 0);
    let def = client.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": b}, "position": amount}),
    );
    assert_eq!(def["uri"], a);
    assert_eq!(def["range"]["start"], position_of(TOOLS, "amount", 0));

    // References of the tool: its declaration in a and two rules in b.
    let refs = client.request(
        "textDocument/references",
        json!({"textDocument": {"uri": b}, "position": at, "context": {"includeDeclaration": true}}),
    );
    let refs = refs.as_array().unwrap();
    assert_eq!(refs.len(), 3, "{refs:#?}");
    assert_eq!(refs.iter().filter(|r| r["uri"] == a).count(), 1);
    assert_eq!(refs.iter().filter(|r| r["uri"] == b).count(), 2);

    // Rename the tool from its declaration: edits in both files.
    let edit = client.request(
        "textDocument/rename",
        json!({"textDocument": {"uri": a}, "position": position_of(TOOLS, "wire_funds", 0), "newName": "send_wire"}),
    );
    let changes = edit["changes"].as_object().unwrap();
    assert_eq!(changes[&a].as_array().unwrap().len(), 1);
    assert_eq!(changes[&b].as_array().unwrap().len(), 2);
    assert!(
        changes[&b]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["newText"] == "send_wire")
    );

    // Renaming to a name already taken is refused.
    let refused = client.request_raw(
        "textDocument/rename",
        json!({"textDocument": {"uri": b}, "position": at, "newName": "search_docs"}),
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already declared")
    );

    // Hover on the agent summarises its grants; on a threshold, its value.
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": b}, "position": position_of(AGENTS, "intake {", 0)}),
    );
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(text.contains("ops@acme.example"), "{text}");
    assert!(
        text.contains("`wire_funds` → `ops_leads` when `amount > $100`"),
        "{text}"
    );
    assert!(
        text.contains("deny: `wire_funds` when `amount > large_payment`"),
        "{text}"
    );
    assert!(
        text.contains("Max tier: `internal` (rank 2 of 3)"),
        "{text}"
    );
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": b}, "position": position_of(AGENTS, "large_payment", 0)}),
    );
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("threshold large_payment = $10,000")
    );
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": b}, "position": position_of(AGENTS, "ops_leads", 0)}),
    );
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(
        text.contains("queue:ops-leads") && text.contains("15m, then deny"),
        "{text}"
    );

    // Workspace symbols search every file.
    let symbols = client.request("workspace/symbol", json!({"query": "wire"}));
    let names: Vec<&str> = symbols
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["wire_funds"]);

    // An edit in b that breaks a reference to a: the error appears, a stays clean.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": b, "version": 2},
            "contentChanges": [{"text": AGENTS.replace("to ops_leads", "to ops_lead")}]
        }),
    );
    let diagnostics = client.diagnostics(&b, has_version(2));
    // The escalation no longer grants the tool, so the `deny` is now dead (AP0045).
    assert_eq!(codes(&diagnostics), vec!["AP0011", "AP0045"]);
    assert_eq!(
        diagnostics[1]["tags"],
        json!([1]),
        "a dead rule is marked unnecessary"
    );

    // Closing b reverts it to the disk text: clean again.
    client.notify("textDocument/didClose", json!({"textDocument": {"uri": b}}));
    let diagnostics = client.diagnostics(&b, |p| p["version"].is_null());
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");

    // A file created on disk joins the policy when the client reports it; deleting it
    // clears its diagnostics.
    let c_path = root.join("c.agentpolicy");
    std::fs::write(
        &c_path,
        "agent helper {\n  owner \"x@y\"\n  allow search_doc\n}\n",
    )
    .unwrap();
    let c = file_uri(&c_path);
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": c, "type": 1}]}),
    );
    let diagnostics = client.diagnostics(&c, |p| !p["diagnostics"].as_array().unwrap().is_empty());
    assert_eq!(codes(&diagnostics), vec!["AP0011"]);
    std::fs::remove_file(&c_path).unwrap();
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": c, "type": 3}]}),
    );
    assert!(client.diagnostics(&c, |_| true).is_empty());

    // An editor buffer that was never saved (`untitled:`) joins the policy too.
    let untitled = "untitled:Untitled-1";
    client.open(
        untitled,
        "agent scratch {\n  owner \"x@y\"\n  allow wire_fund\n}\n",
    );
    let diagnostics = client.diagnostics(untitled, has_version(1));
    assert_eq!(codes(&diagnostics), vec!["AP0011"]);
    assert!(
        diagnostics[0]["message"]
            .as_str()
            .unwrap()
            .contains("wire_funds")
    );
    client.shutdown();
}

#[test]
fn positions_are_utf16_code_units() {
    let dir = temp_dir("utf16");
    let uri = file_uri(&dir.join("p.agentpolicy"));
    // An emoji (two UTF-16 units, four UTF-8 bytes) and an accent before a name.
    let text =
        format!("{TOOLS}agent intake {{\n  owner \"ops\"\n  /* 🚀 é */ allow serch_docs\n}}\n");
    let mut client = Client::start(&dir);
    client.initialize(None);
    client.open(&uri, &text);
    let diagnostics = client.diagnostics(&uri, has_version(1));
    assert_eq!(codes(&diagnostics), vec!["AP0011"]);
    let start = position_of(&text, "serch_docs", 0);
    // "  /* " is 5 units, the rocket 2, " é */ allow " 12.
    assert_eq!(start["character"], 19);
    assert_eq!(diagnostics[0]["range"]["start"], start);
    assert_eq!(diagnostics[0]["range"]["end"]["character"], 29);

    // Hover on a keyword after the emoji explains that keyword, at UTF-16 columns.
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": position_of(&text, "allow", 0)}),
    );
    let keyword = hover["contents"]["value"].as_str().unwrap();
    assert!(keyword.contains("grants the tool"), "{hover}");
    assert_eq!(hover["range"]["start"], position_of(&text, "allow", 0));
    assert_eq!(hover["range"]["start"]["character"], 13);

    // Replace the misspelt name by its UTF-16 range.
    let end = json!({"line": start["line"], "character": 29});
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"range": {"start": start, "end": end}, "text": "search_docs"}]
        }),
    );
    assert!(client.diagnostics(&uri, has_version(2)).is_empty());
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": start}),
    );
    assert_eq!(hover["range"]["start"], start);
    assert_eq!(hover["range"]["end"]["character"], 30);
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("tool search_docs(query: text)")
    );
    client.shutdown();
}

#[test]
fn editing_features_answer_in_context() {
    let dir = temp_dir("features");
    let uri = file_uri(&dir.join("p.agentpolicy"));
    let text = format!("{TOOLS}{AGENTS}");
    let mut client = Client::start(&dir);
    client.initialize(None);
    client.open(&uri, &text);
    assert!(client.diagnostics(&uri, has_version(1)).is_empty());

    // Completion after `allow ` offers tools and `*`.
    let at = position_of(&text, "search_docs\n  escalate", 0);
    let items = client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": at}),
    );
    let labels: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"wire_funds") && labels.contains(&"*"),
        "{labels:?}"
    );
    assert!(!labels.contains(&"ops_leads"), "{labels:?}");

    // A space typed at the start of a clause does not pop up a keyword list; after
    // `allow ` it offers tools.
    let at_clause = position_of(&text, "allow search_docs", 0);
    let quiet = client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": at_clause, "context": {"triggerKind": 2, "triggerCharacter": " "}}),
    );
    assert!(quiet.is_null(), "{quiet}");
    let by_space = client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": position_of(&text, "search_docs\n  escalate", 0), "context": {"triggerKind": 2, "triggerCharacter": " "}}),
    );
    assert!(
        by_space
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["label"] == "search_docs")
    );

    // Inside `when`, the rule's tool's arguments, `confidence` and thresholds.
    let at = position_of(&text, "amount > large_payment", 0);
    let items = client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": at}),
    );
    let labels: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"amount") && labels.contains(&"memo"),
        "{labels:?}"
    );
    assert!(
        labels.contains(&"confidence") && labels.contains(&"large_payment"),
        "{labels:?}"
    );
    assert!(!labels.contains(&"query"), "{labels:?}");

    // After `to `: routes, from the file and the standard library.
    let at = position_of(&text, "ops_leads when", 0);
    let items = client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": at}),
    );
    let labels: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"ops_leads") && labels.contains(&"human_review"),
        "{labels:?}"
    );

    // Document symbols: the items, with the agent's rules as children.
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    let symbols = symbols.as_array().unwrap();
    let agent = symbols.iter().find(|s| s["name"] == "intake").unwrap();
    assert_eq!(agent["kind"], 5);
    let children: Vec<&str> = agent["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        children,
        vec![
            "allow search_docs",
            "escalate wire_funds",
            "deny wire_funds"
        ]
    );
    assert!(
        symbols
            .iter()
            .any(|s| s["name"] == "large_payment" && s["detail"] == "$10,000")
    );

    // Semantic tokens: decode and look at a few.
    let tokens = client.request(
        "textDocument/semanticTokens/full",
        json!({"textDocument": {"uri": uri}}),
    );
    let decoded = decode_tokens(tokens["data"].as_array().unwrap());
    let kind_at = |needle: &str, n: usize| {
        let p = position_of(&text, needle, n);
        decoded
            .iter()
            .find(|t| t.0 == p["line"].as_u64().unwrap() && t.1 == p["character"].as_u64().unwrap())
            .map(|t| (t.3, t.4))
    };
    assert_eq!(kind_at("policy", 0), Some((0, 0)), "keyword");
    assert_eq!(kind_at("wire_funds", 0), Some((5, 1)), "tool declaration");
    assert_eq!(kind_at("wire_funds", 1), Some((5, 0)), "tool reference");
    assert_eq!(kind_at("intake {", 0), Some((6, 1)), "agent declaration");
    assert_eq!(kind_at("internal", 0), Some((7, 4)), "library tier");
    assert_eq!(kind_at("ops_leads", 1), Some((14, 0)), "route");
    assert_eq!(kind_at("large_payment", 1), Some((8, 2)), "threshold");
    assert_eq!(kind_at("amount", 1), Some((9, 0)), "argument");
    assert_eq!(kind_at("$10,000", 0), Some((3, 0)), "number");
    assert_eq!(kind_at("// The intake", 0), Some((1, 0)), "comment");
    assert_eq!(kind_at("\"ops@", 0), Some((2, 0)), "string");

    // Inlay hints: a threshold's value where a rule names it.
    let hints = client.request(
        "textDocument/inlayHint",
        json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 99, "character": 0}}}),
    );
    let hints = hints.as_array().unwrap();
    assert_eq!(hints.len(), 1, "{hints:#?}");
    assert_eq!(hints[0]["label"], "= $10,000");
    let after = position_of(&text, "large_payment\n}", 0);
    assert_eq!(hints[0]["position"]["line"], after["line"]);
    assert_eq!(
        hints[0]["position"]["character"].as_u64().unwrap(),
        after["character"].as_u64().unwrap() + "large_payment".len() as u64
    );

    // Highlights: the tool's declaration (write) and its two uses (read).
    let highlights = client.request(
        "textDocument/documentHighlight",
        json!({"textDocument": {"uri": uri}, "position": position_of(&text, "wire_funds", 1)}),
    );
    let kinds: Vec<u64> = highlights
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_u64().unwrap())
        .collect();
    assert_eq!(kinds, vec![3, 2, 2]);

    // Folding: the agent block.
    let folds = client.request(
        "textDocument/foldingRange",
        json!({"textDocument": {"uri": uri}}),
    );
    let agent_line = position_of(&text, "agent intake", 0)["line"]
        .as_u64()
        .unwrap();
    assert!(
        folds
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["startLine"] == agent_line)
    );

    // Go to definition into the standard library: a real file with the module's text.
    let def = client.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": uri}, "position": position_of(&text, "internal", 0)}),
    );
    let lib = def["uri"].as_str().unwrap();
    assert!(lib.ends_with("stdlib/common.agentpolicy"), "{lib}");
    let lib_text = std::fs::read_to_string(lib.trim_start_matches("file://")).unwrap();
    assert!(lib_text.contains("tiers public < internal < confidential"));

    // Rename refuses keywords and standard-library names.
    let refused = client.request_raw(
        "textDocument/prepareRename",
        json!({"textDocument": {"uri": uri}, "position": position_of(&text, "agent", 0)}),
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("keyword"),
        "{refused}"
    );
    let refused = client.request_raw(
        "textDocument/rename",
        json!({"textDocument": {"uri": uri}, "position": position_of(&text, "internal", 0), "newName": "inside"}),
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("standard library"),
        "{refused}"
    );
    let ok = client.request(
        "textDocument/prepareRename",
        json!({"textDocument": {"uri": uri}, "position": position_of(&text, "large_payment", 1)}),
    );
    assert_eq!(ok["placeholder"], "large_payment");
    client.shutdown();
}

/// (line, start, length, type, modifiers) per token.
fn decode_tokens(data: &[Value]) -> Vec<(u64, u64, u64, u64, u64)> {
    let mut out = Vec::new();
    let (mut line, mut start) = (0, 0);
    for chunk in data.chunks(5) {
        let n: Vec<u64> = chunk.iter().map(|v| v.as_u64().unwrap()).collect();
        if n[0] > 0 {
            line += n[0];
            start = n[1];
        } else {
            start += n[1];
        }
        out.push((line, start, n[2], n[3], n[4]));
    }
    out
}

#[test]
fn quick_fixes_repair_what_the_compiler_explains() {
    let dir = temp_dir("fixes");
    let uri = file_uri(&dir.join("p.agentpolicy"));
    let text = r#"policy acme version "1"

tool search_docs(query: text) { effect read }
tool wire_funds(amount: money) { effect financial, irreversible }

escalation ops_leads { notify "queue:ops" }

agent intake {
  allow serch_docs
  escalate wire_funds to ops_leads when amount > $100
}

agent payer {
  owner "pay@acme.example"
  escalate wire_funds
}
"#;
    let mut client = Client::start(&dir);
    client.initialize(None);
    client.open(&uri, text);
    let diagnostics = client.diagnostics(&uri, has_version(1));
    let mut found = codes(&diagnostics);
    found.sort();
    assert_eq!(
        found,
        vec!["AP0011", "AP0040", "AP0041", "AP0042"],
        "{diagnostics:#?}"
    );

    let whole = json!({"start": {"line": 0, "character": 0}, "end": {"line": 99, "character": 0}});
    let actions = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": whole, "context": {"diagnostics": []}}),
    );
    let actions = actions.as_array().unwrap();
    let titles: Vec<&str> = actions
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"Replace with `search_docs`"), "{titles:?}");
    assert!(
        titles.contains(&"Add an `owner` to agent `intake`"),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"Add `timeout 15m then deny` to `ops_leads`"),
        "{titles:?}"
    );
    assert!(titles.contains(&"Escalate to `ops_leads`"), "{titles:?}");

    // Apply every preferred fix (edits do not overlap), then the file is clean.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for action in actions.iter().filter(|a| a["isPreferred"] == true) {
        assert_eq!(action["kind"], "quickfix");
        for e in action["edit"]["changes"][&uri].as_array().unwrap() {
            let start = offset(text, &e["range"]["start"]);
            let end = offset(text, &e["range"]["end"]);
            edits.push((start, end, e["newText"].as_str().unwrap().to_string()));
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut fixed = text.to_string();
    for (start, end, new_text) in edits {
        fixed.replace_range(start..end, &new_text);
    }
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    let diagnostics = client.diagnostics(&uri, has_version(2));
    assert!(diagnostics.is_empty(), "{fixed}\n{diagnostics:#?}");
    assert!(fixed.contains("timeout 15m then deny }"), "{fixed}");
    assert!(
        fixed.contains("agent intake {\n  owner \"team@example.com\"\n  allow search_docs"),
        "{fixed}"
    );
    client.shutdown();
}

/// Byte offset of an LSP position in ASCII text.
fn offset(text: &str, position: &Value) -> usize {
    let line = position["line"].as_u64().unwrap() as usize;
    let character = position["character"].as_u64().unwrap() as usize;
    let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
    start + character
}

#[test]
fn bad_input_gets_an_error_or_a_log_line_never_a_crash() {
    let dir = temp_dir("robust");
    let uri = file_uri(&dir.join("p.agentpolicy"));
    let text = format!("{TOOLS}{AGENTS}");
    let mut client = Client::start(&dir);

    // Before `initialize`: an error, not a crash.
    let early = client.request_raw("textDocument/hover", json!({}));
    assert!(early["error"].is_object(), "{early}");
    client.initialize(None);

    // Malformed JSON and a malformed request: the server carries on.
    client.send_raw("{this is not json");
    let bad = client.request_raw("textDocument/hover", json!({"textDocument": 3}));
    assert!(bad["error"].is_object(), "{bad}");
    let unknown = client.request_raw("agentpolicy/unknownMethod", json!({}));
    assert_eq!(unknown["error"]["code"], -32601);

    // A file the server was never told about.
    let missing = client.request_raw(
        "textDocument/hover",
        json!({"textDocument": {"uri": "file:///nowhere/x.agentpolicy"}, "position": {"line": 0, "character": 0}}),
    );
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not part of the policy")
    );

    client.open(&uri, &text);
    assert!(client.diagnostics(&uri, has_version(1)).is_empty());

    // Positions past the end of a line or the file clamp.
    for position in [
        json!({"line": 2, "character": 9999}),
        json!({"line": 9999, "character": 3}),
    ] {
        for method in [
            "textDocument/hover",
            "textDocument/definition",
            "textDocument/completion",
            "textDocument/references",
        ] {
            let mut params = json!({"textDocument": {"uri": uri}, "position": position});
            if method == "textDocument/references" {
                params["context"] = json!({"includeDeclaration": true});
            }
            let r = client.request_raw(method, params);
            assert!(r.get("error").is_none(), "{method}: {r}");
        }
    }

    // An out-of-order change (older version) is refused with a log line; the text stays.
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 5}, "contentChanges": [{"text": text.replace("allow search_docs", "allow nope")}]}),
    );
    assert_eq!(
        codes(&client.diagnostics(&uri, has_version(5))),
        vec!["AP0011"]
    );
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 4}, "contentChanges": [{"text": text.clone()}]}),
    );
    let log = client.wait_for(|m| {
        m["method"] == "window/logMessage"
            && m["params"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("out-of-order")
    });
    assert_eq!(log["params"]["type"], 2);
    // A change to a file never opened: a log line too.
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": "file:///nowhere/y.agentpolicy", "version": 1}, "contentChanges": [{"text": "x"}]}),
    );
    client.wait_for(|m| {
        m["method"] == "window/logMessage"
            && m["params"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("never opened")
    });
    // A ranged change far out of range clamps to the end of the text.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 6},
            "contentChanges": [{"range": {"start": {"line": 500, "character": 0}, "end": {"line": 900, "character": 4}}, "text": "\n// trailing\n"}]
        }),
    );
    assert_eq!(
        codes(&client.diagnostics(&uri, has_version(6))),
        vec!["AP0011"]
    );
    client.shutdown();
}

#[test]
fn formatting_matches_the_cli_formatter() {
    let dir = temp_dir("format");
    let uri = file_uri(&dir.join("p.agentpolicy"));
    let messy = "policy acme   version \"1\"\ntool   search_docs( query : text ) {effect read}\n// the agent\nagent intake {   owner \"ops@x\"\n allow    search_docs }\n";
    let expected = agentpolicy::format::format(messy).expect("formats");
    assert_ne!(expected, messy);
    let mut client = Client::start(&dir);
    client.initialize(None);
    client.open(&uri, messy);
    client.diagnostics(&uri, has_version(1));
    let edits = client.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let mut formatted = messy.to_string();
    let mut edits: Vec<(usize, usize, String)> = edits
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                offset(messy, &e["range"]["start"]),
                offset(messy, &e["range"]["end"]),
                e["newText"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (start, end, text) in edits {
        formatted.replace_range(start..end, &text);
    }
    assert_eq!(formatted, expected);

    // Already formatted: no edits. Syntax errors: no edits, and a log line says why.
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": expected}]}),
    );
    client.diagnostics(&uri, has_version(2));
    let none = client.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert_eq!(none, json!([]));
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": "tool {"}]}),
    );
    client.diagnostics(&uri, has_version(3));
    let refused = client.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert!(refused.is_null());
    client.wait_for(|m| {
        m["method"] == "window/logMessage"
            && m["params"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("not formatted")
    });
    client.shutdown();
}

const SETS: &str = r#"policy home version "1"

set payees = ["GB29NWBK60161331926819", "DE89370400440532013000"]
set partners from deploy
set nobody = []

tool pay(payee: text, amount: money) { effect financial, irreversible }
tool send(recipients: list<text>) { effect external }

escalation approver { notify "push:owner" timeout 1h then deny }

agent assistant {
  owner "owner@home.example"
  allow pay when payee in payees and amount < $100
  escalate pay to approver when payee in partners
  allow send when all recipients matches "*@home.example"
}
"#;

#[test]
fn sets_complete_hover_and_report_their_diagnostics() {
    let dir = temp_dir("sets");
    let uri = file_uri(&dir.join("p.agentpolicy"));
    let mut client = Client::start(&dir);
    client.initialize(None);
    client.open(&uri, SETS);
    // The empty set is the only finding.
    let diagnostics = client.diagnostics(&uri, has_version(1));
    assert_eq!(codes(&diagnostics), vec!["AP0035"], "{diagnostics:#?}");

    // Completion after `in ` offers the sets, with their size or origin.
    let at = position_of(SETS, "payees and amount", 0);
    let items = client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": at}),
    );
    let items = items.as_array().unwrap();
    let payees = items.iter().find(|i| i["label"] == "payees").unwrap();
    assert_eq!(payees["detail"], "set of 2 texts");
    let partners = items.iter().find(|i| i["label"] == "partners").unwrap();
    assert_eq!(partners["detail"], "set, bound at deploy");
    assert!(!items.iter().any(|i| i["label"] == "amount"), "{items:?}");

    // Hover on a use of a set: its size and members, or where its members come from.
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": position_of(SETS, "payees and amount", 0)}),
    );
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(
        text.contains("2 distinct members") && text.contains("GB29NWBK60161331926819"),
        "{text}"
    );
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": position_of(SETS, "partners\n", 0)}),
    );
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(text.contains("set partners from deploy"), "{text}");

    // A set used with money, and a pattern no member of a set can match.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"text": SETS
                .replace("set nobody = []\n", "")
                .replace("payee in partners", "amount in partners")
                .replace("payee in payees and amount", "payee in payees and payee matches \"FR*\" and amount")}]
        }),
    );
    let diagnostics = client.diagnostics(&uri, has_version(2));
    let mut found = codes(&diagnostics);
    found.sort();
    assert_eq!(found, vec!["AP0034", "AP0036"], "{diagnostics:#?}");
    client.shutdown();
}
