//! Proofs in the editor, end to end over stdio: a save (or the `agentpolicy.verify`
//! command) runs the verifier, its counterexamples show at the rule at fault, an edit
//! clears them until the next save, and a save re-proves only the agents an edit touched.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected protocol answers"
)]

mod support;

use serde_json::{Value, json};
use support::{Client, file_uri, position_of, temp_dir};

/// `treasurer` allows an irreversible tool without escalation (AP0103); `clerk` escalates
/// every call and is fine. `clerk` comes last, so editing it moves nothing of `treasurer`.
const POLICY: &str = r#"policy firm version "1"

tool wire_funds(amount: money) { effect financial, irreversible }

escalation treasury { notify "queue:treasury" timeout 1h then deny }

agent treasurer {
  owner "treasury@firm.example"
  escalate wire_funds to treasury when amount > $100
  allow wire_funds
}

agent clerk {
  owner "clerk@firm.example"
  escalate wire_funds to treasury
}
"#;

const FIX: &str = r#"allow wire_funds when amount <= $100
  autonomy wire_funds when amount <= $100 because "petty cash, reconciled daily""#;

fn codes(diagnostics: &[Value]) -> Vec<String> {
    diagnostics
        .iter()
        .map(|d| d["code"].as_str().unwrap_or("").to_string())
        .collect()
}

fn save(client: &mut Client, uri: &str) {
    client.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": uri}}),
    );
}

/// Replaces the whole text (version `version`).
fn change(client: &mut Client, uri: &str, version: i64, text: &str) {
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"text": text}]
        }),
    );
}

/// The next `agentpolicy/proofsRun` notification's parameters.
fn proofs_run(client: &mut Client) -> Value {
    client.wait_for(|m| m["method"] == "agentpolicy/proofsRun")["params"].clone()
}

fn names(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v
        .as_array()
        .expect("a list of agents")
        .iter()
        .map(|n| n.as_str().unwrap_or("").to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn proofs_run_on_save_and_show_the_counterexample_at_the_rule() {
    let dir = temp_dir("proofs-on-save");
    let mut client = Client::start(&dir);
    let init = client.initialize(None);
    assert_eq!(init["capabilities"]["textDocumentSync"]["save"], true);
    assert_eq!(
        init["capabilities"]["executeCommandProvider"]["commands"],
        json!(["agentpolicy.verify"])
    );
    let uri = file_uri(&dir.join("firm.agentpolicy"));
    client.open(&uri, POLICY);
    let front = client.diagnostics(&uri, |p| p["version"] == 1);
    assert!(front.is_empty(), "the front end is clean: {front:#?}");

    // First save: every agent and the asserts are proved.
    save(&mut client, &uri);
    let run = proofs_run(&mut client);
    assert_eq!(names(&run["provedAgents"]), vec!["clerk", "treasurer"]);
    assert_eq!(run["provedAsserts"], true);
    assert_eq!(run["skipped"], Value::Null);
    let diagnostics = client.diagnostics(&uri, |p| {
        p["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
    });
    assert_eq!(codes(&diagnostics), vec!["AP0103"], "{diagnostics:#?}");
    let d = &diagnostics[0];
    assert_eq!(d["severity"], 1);
    // The rule at fault, not the agent: the `allow` that lets the call through.
    assert_eq!(
        d["range"]["start"],
        position_of(POLICY, "allow wire_funds", 0)
    );
    let message = d["message"].as_str().unwrap();
    assert!(
        message.contains(
            "agent `treasurer` can call irreversible tool `wire_funds` without escalation"
        ),
        "{message}"
    );
    assert!(message.contains("counterexample: "), "{message}");
    let request = &d["data"]["counterexample"]["request"];
    assert_eq!(request["agent"], "treasurer", "{d:#?}");
    assert_eq!(request["tool"], "wire_funds");
    assert_eq!(d["data"]["counterexample"]["outcome"], "allow");
    let related = d["relatedInformation"]
        .as_array()
        .expect("related information");
    assert_eq!(related[0]["message"], "declared irreversible here");
    assert_eq!(
        related[0]["location"]["range"]["start"],
        position_of(POLICY, "wire_funds(", 0)
    );

    // An edit clears the proof diagnostics until the next save.
    let edited = POLICY.replace(
        "owner \"clerk@",
        "purpose \"files requests\"\n  owner \"clerk@",
    );
    change(&mut client, &uri, 2, &edited);
    let cleared = client.diagnostics(&uri, |p| p["version"] == 2);
    assert!(cleared.is_empty(), "{cleared:#?}");

    // Saving after editing `clerk` re-proves `clerk` alone; `treasurer`'s counterexample
    // comes back from the cache.
    save(&mut client, &uri);
    let run = proofs_run(&mut client);
    assert_eq!(names(&run["provedAgents"]), vec!["clerk"]);
    assert_eq!(names(&run["cachedAgents"]), vec!["treasurer"]);
    let diagnostics = client.diagnostics(&uri, |p| {
        p["version"] == 2 && p["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
    });
    assert_eq!(codes(&diagnostics), vec!["AP0103"]);
    assert_eq!(
        diagnostics[0]["range"]["start"],
        position_of(&edited, "allow wire_funds", 0)
    );

    // The command with nothing changed proves nothing and answers with the summary.
    let summary = client.request(
        "workspace/executeCommand",
        json!({"command": "agentpolicy.verify", "arguments": []}),
    );
    assert_eq!(names(&summary["provedAgents"]), Vec::<String>::new());
    assert_eq!(names(&summary["cachedAgents"]), vec!["clerk", "treasurer"]);
    assert_eq!(summary["provedAsserts"], false);
    assert_eq!(summary["diagnostics"], 1);
    assert_eq!(
        proofs_run(&mut client),
        summary,
        "the command's run is announced too"
    );

    // Fix `treasurer` and save: the counterexample is gone.
    let fixed = edited.replace("allow wire_funds", FIX);
    change(&mut client, &uri, 3, &fixed);
    let front = client.diagnostics(&uri, |p| p["version"] == 3);
    assert!(front.is_empty(), "{front:#?}");
    save(&mut client, &uri);
    let run = proofs_run(&mut client);
    assert!(
        names(&run["provedAgents"]).contains(&"treasurer".to_string()),
        "{run}"
    );
    assert_eq!(run["diagnostics"], 0, "{run}");
    // Nothing newer than the clean list was published for the fixed text.
    let summary = client.request(
        "workspace/executeCommand",
        json!({"command": "agentpolicy.verify"}),
    );
    assert_eq!(summary["diagnostics"], 0);
    assert!(
        !client.seen.iter().any(|m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["version"] == 3
                && !codes(m["params"]["diagnostics"].as_array().unwrap()).is_empty()
        }),
        "{:#?}",
        client.seen
    );
    client.shutdown();
}

#[test]
fn proofs_wait_for_a_clean_front_end_and_unknown_commands_are_refused() {
    let dir = temp_dir("proofs-front-end");
    let mut client = Client::start(&dir);
    client.initialize(None);
    let uri = file_uri(&dir.join("firm.agentpolicy"));
    let broken = POLICY.replace("allow wire_funds", "allow wire_fund");
    client.open(&uri, &broken);
    let front = client.diagnostics(&uri, |p| p["version"] == 1);
    assert_eq!(codes(&front), vec!["AP0011"], "{front:#?}");
    save(&mut client, &uri);
    let run = proofs_run(&mut client);
    assert!(run["skipped"].as_str().unwrap().contains("errors"), "{run}");
    assert_eq!(run["provedAgents"], json!([]));

    let refused = client.request_raw(
        "workspace/executeCommand",
        json!({"command": "agentpolicy.nothing"}),
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("agentpolicy.verify")
    );
    client.shutdown();
}

/// Texts with characters above Z3 4.8.12's last string character (tag characters, plane
/// 14) are proved in the editor like any other: the counterexample shows, where the
/// verifier used to panic and the proofs vanished.
#[test]
fn proofs_of_tag_characters_show_their_counterexample() {
    const TAGS: &str =
        include_str!("../../tests/fixtures/verify/assert_tag_characters.agentpolicy");
    let dir = temp_dir("proofs-tag-characters");
    let mut client = Client::start(&dir);
    client.initialize(None);
    let uri = file_uri(&dir.join("tags.agentpolicy"));
    client.open(&uri, TAGS);
    let front = client.diagnostics(&uri, |p| p["version"] == 1);
    assert!(front.is_empty(), "the front end is clean: {front:#?}");
    save(&mut client, &uri);
    let run = proofs_run(&mut client);
    assert_eq!(names(&run["provedAgents"]), vec!["a"]);
    assert_eq!(run["provedAsserts"], true);
    let diagnostics = client.diagnostics(&uri, |p| {
        p["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
    });
    assert_eq!(codes(&diagnostics), vec!["AP0108"], "{diagnostics:#?}");
    let body = diagnostics[0]["data"]["counterexample"]["request"]["args"]["body"]
        .as_str()
        .expect("the counterexample's body");
    assert!(
        body.contains('\u{E007F}') && !body.contains('\u{E0001}'),
        "{body:?}"
    );
    client.shutdown();
}
