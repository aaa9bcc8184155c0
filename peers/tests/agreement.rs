//! The three engines agree: agentpolicy's `decide` on the compiled table, cedar-policy
//! on the Cedar translation and regorus on the Rego translation give the same outcome
//! (allow, escalate or deny) for every benchmark request on each policy size, and that
//! outcome is the one the decision contract gives. A sweep over agents, tools, amounts
//! around each threshold and confidences (missing values included) checks the
//! translations beyond the fixed requests.

use std::collections::BTreeSet;

use agentpolicy_peers::spec::{Call, SHAPES};
use agentpolicy_peers::{Peers, cedar};
use agentpolicy_runtime::{Outcome, Why, decide};

#[test]
fn engines_agree_on_every_benchmark_request() {
    for shape in SHAPES {
        let mut peers = Peers::new(shape).expect("the policy builds in all three engines");
        assert_eq!(peers.spec.rules.len(), shape.rules());
        assert_eq!(peers.table.data().rules.len(), shape.rules());
        assert_eq!(peers.cedar.policies.policies().count(), shape.rules());
        for request in peers.requests() {
            let call = peers.prepare(&request.call).expect("the request builds");
            let outcomes = peers.outcomes(&call).expect("regorus evaluates");
            let name = format!("{} rules, {}", shape.rules(), request.name);
            assert_eq!(outcomes.ours, request.expected, "agentpolicy: {name}");
            assert_eq!(outcomes.cedar, request.expected, "cedar: {name}");
            assert_eq!(
                outcomes.cedar_sliced, request.expected,
                "cedar, agent's slice: {name}"
            );
            assert_eq!(outcomes.rego, request.expected, "rego: {name}");
            assert_eq!(
                cedar::errors(&peers.cedar, &call.cedar),
                0,
                "cedar evaluation errors: {name}"
            );
        }
    }
}

#[test]
fn benchmark_requests_take_every_path() {
    for shape in SHAPES {
        let peers = Peers::new(shape).expect("the policy builds in all three engines");
        let mut seen = BTreeSet::new();
        for request in peers.requests() {
            let call = peers.prepare(&request.call).expect("the request builds");
            let decision = decide(&peers.table, &call.ours);
            seen.insert((decision.outcome, format!("{:?}", decision.why)));
        }
        for path in [
            (Outcome::Allow, Why::RuleMatched),
            (Outcome::Escalate, Why::RuleMatched),
            (Outcome::Deny, Why::RuleMatched),
            (Outcome::Deny, Why::RuleMatchedOnMissingValue),
            (Outcome::Deny, Why::NoRuleMatched),
            (Outcome::Deny, Why::NotGranted),
        ] {
            assert!(
                seen.contains(&(path.0, format!("{:?}", path.1))),
                "{} rules: no request takes {path:?}; seen {seen:?}",
                shape.rules()
            );
        }
    }
}

#[test]
fn engines_agree_across_a_sweep() {
    for shape in SHAPES {
        let mut peers = Peers::new(shape).expect("the policy builds in all three engines");
        // Rego evaluates every rule body on each call, which is slow in a debug build:
        // the largest policy is swept for its middle agent only.
        let mut agents = if shape.rules() >= 1_000 {
            vec![shape.agents / 2]
        } else {
            vec![0, shape.agents / 2, shape.agents - 1]
        };
        agents.dedup();
        let mut seen = BTreeSet::new();
        let mut calls = 0;
        for &agent in &agents {
            for tool in 0..shape.tools() {
                let small = shape.small_limit(agent, tool);
                let amounts = [
                    None,
                    Some(small / 2),
                    Some(small),
                    Some(small + 1),
                    Some(2 * small + 1),
                    Some(10 * small + 1),
                ];
                let confidences = [
                    None,
                    Some(100_000),
                    Some(600_000),
                    Some(850_000),
                    Some(950_000),
                ];
                for amount in amounts {
                    for confidence in confidences {
                        let call = Call {
                            agent,
                            tool,
                            amount,
                            confidence,
                        };
                        let prepared = peers.prepare(&call).expect("the request builds");
                        let outcomes = peers.outcomes(&prepared).expect("regorus evaluates");
                        let expected = peers.spec.expected(&call);
                        assert_eq!(
                            (
                                outcomes.ours,
                                outcomes.cedar,
                                outcomes.cedar_sliced,
                                outcomes.rego
                            ),
                            (expected, expected, expected, expected),
                            "{} rules: (ours, cedar, cedar sliced, rego) on {call:?}",
                            shape.rules()
                        );
                        seen.insert(format!("{expected:?}"));
                        calls += 1;
                    }
                }
            }
        }
        assert_eq!(seen.len(), 3, "the sweep reaches allow, escalate and deny");
        assert!(calls > 0);
    }
}
