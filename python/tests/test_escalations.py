"""Escalations: approve, reject, timeouts to deny and to allow, waiting from another
thread, and the errors for ids that are not pending."""

from __future__ import annotations

import threading
import time

import pytest

from agentpolicy import EscalationError, InvalidArgument


def raise_refund(engine, amount="$500"):
    s = engine.session(agent="support")
    d = s.decide("refund", {"amount": amount, "order_id": "o"})
    assert d.outcome == "escalate"
    return s, d


def test_approve(engine):
    s, d = raise_refund(engine)
    r = engine.approve(d, by="maria@shop.example", reason="loyal customer")
    assert (r.resolution, r.outcome, r.allowed) == ("approve", "allow", True)
    assert r.why == "approved by maria@shop.example (reason: loyal customer)"
    assert r.escalation.id == d.escalation and engine.pending_escalations() == []
    # The approved call ran; its result is reported like any other.
    assert s.report(d, ok=True, tokens=10, latency_ms=3) is None
    with pytest.raises(EscalationError):
        engine.approve(d, by="maria@shop.example")


def test_reject(engine):
    _, d = raise_refund(engine)
    r = engine.reject(d.escalation, by="maria@shop.example")
    assert (r.resolution, r.outcome, r.allowed) == ("reject", "deny", False)
    assert r.why == "rejected by maria@shop.example"


def test_resolve_by_word_and_by_escalation_object(engine):
    _, d = raise_refund(engine)
    pending = engine.pending_escalations()[0]
    assert engine.resolve(pending, "approve", by="m").outcome == "allow"
    _, d2 = raise_refund(engine)
    with pytest.raises(InvalidArgument):
        engine.resolve(d2, "maybe", by="m")
    assert engine.resolve(d2, "reject", by="m").outcome == "deny"


def test_timeout_to_deny(engine, clock):
    _, d = raise_refund(engine)
    clock.advance(10 * 60 * 1000 - 1)
    assert engine.expire_escalations() == []
    clock.advance(1)
    [r] = engine.expire_escalations()
    assert (r.resolution, r.outcome, r.escalation.id) == ("timeout", "deny", d.escalation)
    assert "timeout outcome is deny" in r.why


def test_timeout_to_allow(engine, clock):
    s = engine.session(agent="support")
    d = s.decide("export_report", {"name": "weekly"})
    assert d.outcome == "escalate" and d.routes == ["night_desk"]
    clock.advance(5 * 60 * 1000)
    [r] = engine.expire_escalations()
    assert (r.resolution, r.outcome) == ("timeout", "allow")


def test_closing_the_session_rejects_its_escalations(engine):
    s, d = raise_refund(engine)
    s.close()
    assert engine.pending_escalations() == []
    with pytest.raises(EscalationError):
        engine.approve(d, by="m")


def test_wait_returns_when_another_thread_answers(engine):
    _, d = raise_refund(engine)
    answered = []

    def human():
        time.sleep(0.2)
        answered.append(engine.approve(d, by="maria"))

    t = threading.Thread(target=human)
    t.start()
    started = time.monotonic()
    assert engine.wait(d, timeout=10) == "allow"
    assert time.monotonic() - started >= 0.15
    t.join()
    assert answered[0].outcome == "allow"
    # Waiting again on a resolved escalation answers at once.
    assert engine.wait(d) == "allow"


def test_wait_sees_a_timeout_on_the_engine_clock(engine, clock):
    _, d = raise_refund(engine)
    t = threading.Timer(0.1, clock.advance, args=(10 * 60 * 1000,))
    t.start()
    assert engine.wait(d.escalation, timeout=10) == "deny"
    t.join()


def test_wait_gives_up_after_its_timeout(engine):
    _, d = raise_refund(engine)
    with pytest.raises(TimeoutError):
        engine.wait(d, timeout=0.1)
    assert [e.id for e in engine.pending_escalations()] == [d.escalation]


def test_ids_that_are_not_escalations(engine):
    s = engine.session(agent="support")
    allowed = s.decide("snooze", {"delay": "1m"})
    with pytest.raises(InvalidArgument) as raised:
        engine.approve(allowed, by="m")
    assert "raised no escalation" in str(raised.value)
    for bad in ("s99:1", "nonsense", 42):
        with pytest.raises((EscalationError, InvalidArgument)):
            engine.approve(bad, by="m")
    with pytest.raises(EscalationError):
        engine.wait("s99:1", timeout=1)
