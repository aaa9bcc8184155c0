"""Every outcome the engine gives, with the rule, reason and explanation that come
with it, on the test policy and on the law firm's."""

from __future__ import annotations

from decimal import Decimal

import agentpolicy
from conftest import LAW_FIRM, SHOP


def test_allow_names_the_rule_and_where_it_is_written(engine):
    with engine.session("s-allow", agent="support") as s:
        d = s.decide("refund", {"amount": Decimal("50"), "order_id": "o-1"})
    assert d.outcome == "allow" and d.allowed and bool(d)
    assert d.reason == "rule"
    assert d.rule == "support/allow/refund#1"
    file, line, column = d.rule_location
    assert file.endswith("policy.agentpolicy") and line > 1 and column == 3
    assert d.explanation.startswith("allow by rule `support/allow/refund#1`")
    assert str(d) == d.explanation
    assert d.escalation is None and d.shadow is False
    assert d.tool == "refund" and d.agent == "support"
    assert d.table_hash == engine.table_hash and d.table_hash.startswith("sha256:")
    assert d.call == f"{s.id}:1"


def test_escalate_names_the_routes_and_the_pending_escalation(engine):
    s = engine.session(agent="support")
    d = s.decide("refund", {"amount": "$500", "order_id": "o-2"})
    assert d.outcome == "escalate" and d.escalated and not d
    assert d.routes == ["manager"]
    assert d.escalation == d.call
    pending = engine.pending_escalations()
    assert [e.id for e in pending] == [d.escalation]
    assert pending[0].tool == "refund" and pending[0].notify == ["queue:managers"]
    assert pending[0].timeout_outcome == "deny"
    assert pending[0].deadline_ms == pending[0].raised_ms + 10 * 60 * 1000


def test_deny_by_rule(engine):
    s = engine.session(agent="support")
    d = s.decide("refund", {"amount": "$6,000", "order_id": "o-3"})
    assert (d.outcome, d.reason, d.rule) == ("deny", "rule", "support/deny/refund#1")
    assert d.denied


def test_deny_not_granted(engine):
    s = engine.session(agent="support")
    d = s.decide("delete_account", {"customer_id": "c-1"})
    assert (d.outcome, d.reason, d.rule) == ("deny", "not_granted", None)
    assert "not granted" in d.explanation


def test_deny_when_no_rule_matches(engine):
    s = engine.session(agent="support")
    assert s.decide("ping", {"host": "status.shop.example"}).allowed
    d = s.decide("ping", {"host": "evil.example"})
    assert (d.outcome, d.reason) == ("deny", "no_rule")


def test_a_missing_value_fails_safe_and_is_named(engine):
    s = engine.session(agent="support")
    d = s.decide("refund", {"order_id": "o-4"})
    assert d.outcome == "deny" and d.missing == "amount"


def test_shadow_mode_reports_allow_with_the_policy_outcome(engine):
    s = engine.session(agent="auditor")
    d = s.decide("refund", {"amount": "$5", "order_id": "o-5"})
    assert d.outcome == "allow" and d.shadow
    assert d.policy_outcome == "deny" and d.rule == "auditor/deny/refund#1"
    assert "shadow" in repr(d)


def test_shadow_option_and_set_mode(clock):
    e = agentpolicy.Engine(policy=SHOP, clock=clock, shadow=["support"])
    s = e.session(agent="support")
    d = s.decide("delete_account", {"customer_id": "c-1"})
    assert (d.outcome, d.policy_outcome, d.shadow) == ("allow", "deny", True)
    e.set_mode("support", "enforce", by="ops")
    assert s.decide("delete_account", {"customer_id": "c-1"}).outcome == "deny"
    e.set_mode("support", None, by="ops")
    assert s.decide("delete_account", {"customer_id": "c-1"}).outcome == "deny"
    every = agentpolicy.Engine(policy=SHOP, clock=clock, shadow=True)
    assert every.session(agent="support").decide("delete_account", {"customer_id": "x"}).shadow


def test_the_law_firm_decides_as_its_trace_says():
    """The first lines of examples/law_firm/trace.jsonl, through the Python API."""
    engine = agentpolicy.Engine(policy=LAW_FIRM)
    assert engine.policy == ("hartwell_pike", "2026.11")
    with engine.session("research-1", agent="research") as r:
        m1 = ("matter_documents", {"matter": "M-1042"})
        assert r.decide("search_documents", {"query": "indemnity cap"}, confidence=0.95, read=m1).allowed
        d = r.decide(
            "search_documents",
            {"query": "indemnity cap"},
            confidence=0.95,
            read={"resource": "matter_documents", "keys": {"matter": "M-2077"}},
        )
        assert (d.outcome, d.reason) == ("deny", "flow")
        assert r.decide("web_search", {"query": "Acme v. Globex"}, confidence=0.95).reason == "flow"
        low = r.decide("search_case_law", {"query": "caps"}, confidence=0.6)
        assert low.outcome == "escalate" and low.routes == ["human_review"]
        unsure = r.decide("search_case_law", {"query": "caps"})
        assert unsure.outcome == "escalate" and unsure.missing == "confidence"
    with engine.session("billing-1", agent="billing") as b:
        d = b.decide("transfer_from_trust", {"amount": Decimal("30000"), "payee": "Acme Corp"}, confidence="97%")
        assert (d.outcome, d.policy_outcome, d.shadow) == ("allow", "deny", True)
    with engine.session("intake-1", agent="intake") as i:
        assert i.decide("read_work_product", {"document_id": "memo-7"}, confidence=0.97).reason == "not_granted"
