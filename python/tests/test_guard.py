"""`guard`: deny raises PolicyDenied and the function never runs; escalate raises
EscalationPending, asks a resolver or waits; allow runs it and reports its result or
its error to the engine."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

import pytest

import agentpolicy
from agentpolicy import EscalationPending, InvalidArgument, PolicyDenied, guard


def test_allow_runs_and_reports(engine):
    s = engine.session(agent="support")
    ran = []

    @guard(s)
    def refund(amount: Decimal, order_id: str, note: str = "") -> str:
        ran.append((amount, order_id, note))
        return "refunded"

    assert refund(Decimal("20"), "o-1", note="not in the policy") == "refunded"
    assert ran == [(Decimal("20"), "o-1", "not in the policy")]
    assert refund.__name__ == "refund"
    assert s.state()["calls"] == 1


def test_deny_never_calls_the_function(engine):
    s = engine.session(agent="support")
    ran = []

    @guard(s, tool="refund")
    def big_refund(amount, order_id):
        ran.append(amount)

    with pytest.raises(PolicyDenied) as raised:
        big_refund("$9,000", order_id="o-2")
    assert ran == []
    assert raised.value.decision.rule == "support/deny/refund#1"
    assert "refund" in str(raised.value)


def test_escalate_raises_pending_without_a_resolver(engine):
    s = engine.session(agent="support")
    ran = []

    @guard(s)
    def refund(amount, order_id):
        ran.append(amount)

    with pytest.raises(EscalationPending) as raised:
        refund("$500", "o-3")
    assert ran == []
    assert raised.value.escalation == raised.value.decision.escalation
    assert [e.id for e in engine.pending_escalations()] == [raised.value.escalation]


def test_a_resolver_answers_escalations(engine):
    s = engine.session(agent="support")
    @guard(s, resolver=lambda d: True, by="maria")
    def refund(amount, order_id):
        return f"refunded {amount}"

    assert refund("$500", "o-4") == "refunded $500"

    @guard(s, tool="refund", resolver=lambda d: "reject")
    def refused(amount, order_id):
        raise AssertionError("must not run")

    with pytest.raises(PolicyDenied) as raised:
        refused("$500", "o-5")
    assert raised.value.resolution.resolution == "reject"

    @guard(s, tool="refund", resolver=lambda d: None)
    def unanswered(amount, order_id):
        raise AssertionError("must not run")

    with pytest.raises(EscalationPending):
        unanswered("$500", "o-6")

    @guard(s, tool="refund", resolver=lambda d: "perhaps")
    def confused(amount, order_id):
        raise AssertionError("must not run")

    with pytest.raises(InvalidArgument):
        confused("$500", "o-7")


def test_wait_blocks_until_a_human_answers(engine):
    s = engine.session(agent="support")

    @guard(s, wait=10)
    def refund(amount, order_id):
        return "refunded"

    def human():
        for _ in range(200):
            pending = engine.pending_escalations()
            if pending:
                engine.approve(pending[0], by="maria")
                return
            time.sleep(0.01)

    t = threading.Thread(target=human)
    t.start()
    assert refund("$500", "o-8") == "refunded"
    t.join()


def test_errors_are_reported_and_trip_the_breaker(clock):
    from conftest import SHOP

    engine = agentpolicy.Engine(policy=SHOP, clock=clock, breaker_min_results=2)
    s = engine.session(agent="support")

    @guard(s)
    def snooze(delay):
        raise RuntimeError("the scheduler is down")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            snooze("5m")
    with pytest.raises(PolicyDenied) as raised:
        snooze("5m")
    assert raised.value.decision.reason == "suspended"


def test_options_from_the_arguments_and_a_session_function(engine):
    current = {"s": engine.session(agent="support")}

    @guard(lambda: current["s"], read=lambda a: ("orders", {"customer": a["customer"]}))
    def lookup_order(order_id, customer):
        return order_id

    assert lookup_order("o-1", customer="C-1") == "o-1"
    with pytest.raises(PolicyDenied) as raised:
        lookup_order("o-2", customer="C-2")
    assert raised.value.decision.reason == "flow"
    current["s"] = engine.session(agent="support")
    assert lookup_order("o-2", customer="C-2") == "o-2"

    @guard(current["s"], untrusted=["to"])
    def send_reply(to):
        raise AssertionError("must not run")

    with pytest.raises(PolicyDenied):
        send_reply("attacker@evil.example")

    @guard(lambda: None)
    def snooze(delay):
        return delay

    with pytest.raises(InvalidArgument):
        snooze("1m")
    with pytest.raises(InvalidArgument):
        lookup_order()


def test_async_tools(engine):
    s = engine.session(agent="support")

    @guard(s)
    async def refund(amount, order_id):
        await asyncio.sleep(0)
        return "async refunded"

    assert asyncio.run(refund("$10", "o-9")) == "async refunded"
    with pytest.raises(PolicyDenied):
        asyncio.run(refund("$10,000", "o-9"))
