"""Sessions: isolation across calls, write-down, taint from an untrusted read, limits,
breakers and the kill switch, as the Rust engine keeps them."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

import agentpolicy
from agentpolicy import SessionError, UnknownName


def orders(customer: str):
    return ("orders", {"customer": customer})


def test_a_session_is_a_context_manager_that_closes(engine):
    with engine.session("case-1", agent="support", context="user:alice@shop.example") as s:
        assert (s.name, s.agent) == ("case-1", "support")
        assert s.decide("lookup_order", {"order_id": "o-1"}, read=orders("C-1")).allowed
        state = s.state()
        assert state["context"] == "user:alice@shop.example" and state["closed"] is False
    assert s.state()["closed"] is True
    with pytest.raises(SessionError):
        s.decide("lookup_order", {"order_id": "o-1"}, read=orders("C-1"))
    with pytest.raises(SessionError):
        s.close()


def test_isolation_holds_across_calls_and_not_across_sessions(engine):
    a = engine.session(agent="support")
    assert a.decide("lookup_order", {"order_id": "o-1"}, read=orders("C-1")).allowed
    assert a.state()["bound"] == {"customer": "C-1"} and a.state()["tier"] == "confidential"
    crossed = a.decide("lookup_order", {"order_id": "o-9"}, read=orders("C-2"))
    assert (crossed.outcome, crossed.reason) == ("deny", "flow")
    assert a.decide("lookup_order", {"order_id": "o-2"}, read=orders("C-1")).allowed
    # Another session is another context window.
    b = engine.session(agent="support")
    assert b.decide("lookup_order", {"order_id": "o-9"}, read=orders("C-2")).allowed
    assert a.state()["bound"] == {"customer": "C-1"}


def test_a_session_bound_at_open_reads_only_its_customer(engine):
    s = engine.session(agent="support", bind={"customer": "C-7"})
    assert s.state()["bound"] == {"customer": "C-7"}
    assert s.decide("lookup_order", {"order_id": "o"}, read=orders("C-8")).reason == "flow"
    assert s.decide("lookup_order", {"order_id": "o"}, read=orders("C-7")).allowed
    with pytest.raises(ValueError) as raised:
        engine.session(agent="support", bind={"tenant": "T-1"})
    assert "unknown isolation key `tenant`" in str(raised.value)
    with pytest.raises(ValueError):
        engine.session(agent="support", bind={"customer": 7})


def test_no_write_down_and_keyed_writes(engine):
    s = engine.session(agent="support")
    assert s.decide("send_reply", {"to": "a@b.example"}).allowed
    assert s.decide("lookup_order", {"order_id": "o"}, read=orders("C-1")).allowed
    # The session now holds confidential data; the outbox is cleared for internal only.
    down = s.decide("send_reply", {"to": "a@b.example"})
    assert (down.outcome, down.reason) == ("deny", "flow")
    note = ("customer_notes", {"customer": "C-1"})
    assert s.decide("add_note", {"text": "called back"}, write=note).allowed
    other = {"sink": "customer_notes", "keys": {"customer": "C-2"}}
    assert s.decide("add_note", {"text": "x"}, write=other).reason == "flow"


def test_unknown_agent_is_a_clear_error(engine):
    with pytest.raises(UnknownName) as raised:
        engine.session(agent="ghost")
    assert raised.value.kind == "agent" and "`support`" in str(raised.value)
    for call in (lambda: engine.kill_agent("ghost", by="ops"), lambda: engine.set_mode("ghost", "shadow", by="ops")):
        with pytest.raises(UnknownName):
            call()


def test_taint_from_an_untrusted_read(engine):
    s = engine.session(agent="support")
    assert s.tainted is False
    assert s.decide("refund", {"amount": "$20", "order_id": "o"}).allowed
    assert s.decide("read_inbox", {"folder": "INBOX"}).allowed
    assert s.tainted is True and s.state()["tainted"] is True
    # The same refund now waits for a manager: the session read text anyone could write.
    after = s.decide("refund", {"amount": "$20", "order_id": "o"})
    assert after.outcome == "escalate" and after.rule == "support/escalate/refund#2"
    # An argument copied out of the mail is refused outright.
    d = s.decide("send_reply", {"to": "attacker@evil.example"}, untrusted=["to"])
    assert (d.outcome, d.rule) == ("deny", "support/deny/send_reply#1")
    clean = engine.session(agent="support")
    assert clean.tainted is False
    assert clean.decide("refund", {"amount": "$20", "order_id": "o"}).allowed


def test_limits_per_task_and_session(engine):
    s = engine.session(agent="support")
    for _ in range(6):
        assert s.decide("snooze", {"delay": "1m"}).allowed
    d = s.decide("snooze", {"delay": "1m"})
    assert (d.outcome, d.reason) == ("deny", "limit")
    assert s.state()["limits"] == [{"limit": "6 calls per task", "used": 6}]
    # Another session has its own budget; a new task starts from zero.
    assert engine.session(agent="support").decide("snooze", {"delay": "1m"}).allowed
    assert s.new_task() == 2
    assert s.decide("snooze", {"delay": "1m"}).allowed


def test_an_error_rate_breaker_suspends_the_agent(clock):
    from conftest import SHOP

    e = agentpolicy.Engine(policy=SHOP, clock=clock, breaker_min_results=2)
    s = e.session(agent="support")
    for _ in range(2):
        d = s.decide("snooze", {"delay": "1m"})
        assert d.allowed
        s.report(d, ok=False, latency_ms=5)
    d = s.decide("snooze", {"delay": "1m"})
    assert (d.outcome, d.reason) == ("deny", "suspended")
    assert e.suspensions()["tripped"] == [("support", "error_rate > 50% over 10m then suspend agent")]
    # Other agents go on; a reset lets this one go on too.
    assert e.session(agent="auditor").decide("lookup_order", {"order_id": "o"}).allowed
    e.reset_breaker("support", by="oncall")
    assert s.decide("snooze", {"delay": "1m"}).allowed


def test_the_kill_switch(engine):
    s = engine.session(agent="support")
    auditor = engine.session(agent="auditor")
    engine.kill_agent("support", by="oncall")
    d = s.decide("snooze", {"delay": "1m"})
    assert (d.outcome, d.reason) == ("deny", "suspended")
    assert engine.suspensions()["killed"] == ["support"]
    assert auditor.decide("lookup_order", {"order_id": "o"}).allowed
    engine.resume_agent("support", by="oncall")
    assert s.decide("snooze", {"delay": "1m"}).allowed
    engine.kill_all(by="oncall")
    # Shadow mode never overrides a suspension.
    assert auditor.decide("lookup_order", {"order_id": "o"}).reason == "suspended"
    assert engine.suspensions()["kill_all"] is True
    engine.resume_all(by="oncall")
    assert auditor.decide("lookup_order", {"order_id": "o"}).allowed


def test_a_kill_from_another_thread_stops_the_next_decision(engine):
    s = engine.session(agent="support")
    t = threading.Thread(target=engine.kill_all, kwargs={"by": "other-thread"})
    t.start()
    t.join()
    assert s.decide("snooze", {"delay": "1m"}).reason == "suspended"


def test_the_kill_file(tmp_path, clock):
    from conftest import SHOP

    stop = tmp_path / "STOP"
    e = agentpolicy.Engine(policy=SHOP, clock=clock, kill_file=stop)
    s = e.session(agent="support")
    assert s.decide("snooze", {"delay": "1m"}).allowed
    stop.write_text("support\n")
    assert e.poll_kill_file() is True
    assert s.decide("snooze", {"delay": "1m"}).reason == "suspended"
    stop.unlink()
    e.poll_kill_file()
    assert s.decide("snooze", {"delay": "1m"}).allowed
    e.close()


def test_many_threads_decide_at_once(engine):
    """The engine is shared across threads and releases the GIL while deciding."""
    errors: list[BaseException] = []

    def agent_loop(n: int) -> None:
        try:
            with engine.session(f"t{n}", agent="support") as s:
                for i in range(6):
                    assert s.decide("refund", {"amount": Decimal(i), "order_id": f"o{i}"}).allowed
                assert s.decide("refund", {"amount": "$1", "order_id": "x"}).reason == "limit"
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=agent_loop, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_closed_engine_refuses_clearly(clock):
    from conftest import SHOP

    with agentpolicy.Engine(policy=SHOP, clock=clock) as e:
        s = e.session(agent="support")
    with pytest.raises(agentpolicy.EngineClosed):
        s.decide("snooze", {"delay": "1m"})
    with pytest.raises(agentpolicy.EngineClosed):
        e.session(agent="support")
    e.close()  # twice is fine
    assert repr(e) == "<Engine closed>"
