//! `docs/openapi.json` is the service's contract: every documented path and method is
//! served, and every served route is documented (the router is built from
//! `agentpolicy_server::routes`, so comparing with it compares with the router).

use std::collections::BTreeSet;

#[test]
fn the_openapi_document_and_the_router_have_the_same_routes() {
    let doc: serde_json::Value =
        serde_json::from_str(agentpolicy_server::OPENAPI).expect("docs/openapi.json is JSON");
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = agentpolicy_server::routes()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    assert_eq!(
        served.len(),
        agentpolicy_server::routes().len(),
        "a route listed twice"
    );
}

#[test]
fn every_operation_documents_its_refusals() {
    let doc: serde_json::Value =
        serde_json::from_str(agentpolicy_server::OPENAPI).expect("docs/openapi.json is JSON");
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            for status in ["200", "401", "403"] {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{method} {path} does not document {status}"
                );
            }
        }
    }
}
