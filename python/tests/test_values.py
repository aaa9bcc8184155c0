"""Python values map exactly onto the engine's: money as Decimal, int dollars or policy
strings, never a float; every bad value a clear exception naming the argument."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

import agentpolicy
from agentpolicy import InvalidArgument, UnknownName


@pytest.mark.parametrize(
    "amount, outcome",
    [
        (Decimal("100"), "allow"),
        (Decimal("100.00"), "allow"),
        (Decimal("1E+2"), "allow"),
        (Decimal("100.01"), "escalate"),
        ("$100", "allow"),
        ("$100.01", "escalate"),
        ("100", "allow"),
        ("$1,000", "escalate"),
        ("$5K", "escalate"),
        ("$5,000.01", "deny"),
        ("$1.5M", "deny"),
        (100, "allow"),
        (101, "escalate"),
        ("-$0.01", "allow"),
        (Decimal("-5"), "allow"),
    ],
)
def test_money_is_exact_at_the_threshold(engine, amount, outcome):
    s = engine.session(agent="support")
    assert s.decide("refund", {"amount": amount, "order_id": "o"}).outcome == outcome


@pytest.mark.parametrize(
    "amount, words",
    [
        (100.0, "float is not an exact amount"),
        (99.99, 'Decimal("99.99")'),
        ("$0.001", "whole number of cents"),
        (Decimal("0.001"), "whole number of cents"),
        (Decimal("NaN"), "money"),
        (Decimal("Infinity"), "money"),
        ("a lot", "whole number of cents"),
        ("$99999999999999999999", "within range"),
        (10**30, "within range"),
        (True, "found bool"),
        (None, "found NoneType"),
        ([100], "found list"),
    ],
)
def test_bad_money_is_a_value_error_naming_the_argument(engine, amount, words):
    s = engine.session(agent="support")
    with pytest.raises(ValueError) as raised:
        s.decide("refund", {"amount": amount, "order_id": "o"})
    e = raised.value
    assert isinstance(e, InvalidArgument) and e.argument == "amount"
    assert "argument `amount` of tool `refund` is money" in str(e)
    assert words in str(e)
    # Nothing was decided: the session made no call.
    assert s.state()["calls"] == 0


def test_durations_percentages_numbers_and_booleans(engine):
    s = engine.session(agent="support")
    for delay in ("15m", 900_000, datetime.timedelta(minutes=15), datetime.timedelta(days=1)):
        assert s.decide("snooze", {"delay": delay}).allowed
    s.new_task()
    for share in ("85%", 0.85, Decimal("0.85"), 1, "0.5"):
        assert s.decide("snooze", {"delay": "1h", "share": share}).allowed
    s.new_task()
    assert s.decide("snooze", {"delay": "1h", "weight": 2.5, "urgent": True}).allowed
    bad = [
        ({"delay": "soon"}, "delay", "duration"),
        ({"delay": 1.5}, "delay", "duration"),
        ({"delay": datetime.timedelta(microseconds=1)}, "delay", "whole number of milliseconds"),
        ({"delay": "1h", "share": "lots"}, "share", "percent"),
        ({"delay": "1h", "weight": 0.0000001}, "weight", "at most 6 decimals"),
        ({"delay": "1h", "weight": float("nan")}, "weight", "number"),
        ({"delay": "1h", "weight": float("inf")}, "weight", "number"),
        ({"delay": "1h", "urgent": "yes"}, "urgent", "True or False"),
        ({"delay": "1h", "urgent": 1}, "urgent", "True or False"),
    ]
    for args, argument, words in bad:
        with pytest.raises(InvalidArgument) as raised:
            s.decide("snooze", args)
        assert raised.value.argument == argument, args
        assert words in str(raised.value), (args, str(raised.value))


def test_texts_and_lists(engine):
    s = engine.session(agent="support")
    assert s.decide("send_reply", {"to": "a@b.example", "cc": ["c@d.example"]}).allowed
    assert s.decide("send_reply", {"to": "a@b.example", "cc": ()}).allowed
    for args, argument in [
        ({"to": 5}, "to"),
        ({"to": b"bytes"}, "to"),
        ({"to": "a", "cc": "c@d.example"}, "cc"),
        ({"to": "a", "cc": ["ok", 3]}, "cc"),
    ]:
        with pytest.raises(InvalidArgument) as raised:
            s.decide("send_reply", args)
        assert raised.value.argument == argument


def test_confidence_takes_numbers_and_percentages(clock):
    from conftest import LAW_FIRM

    e = agentpolicy.Engine(policy=LAW_FIRM, clock=clock)
    s = e.session(agent="research")
    for c in (0.95, "95%", Decimal("0.95"), 1):
        assert s.decide("search_case_law", {"query": "q"}, confidence=c).allowed
    assert s.decide("search_case_law", {"query": "q"}, confidence=0.5).escalated
    for c in ("sure", [0.9], 0.123_456_7, True):
        with pytest.raises(InvalidArgument) as raised:
            s.decide("search_case_law", {"query": "q"}, confidence=c)
        assert raised.value.argument == "confidence"


def test_unknown_tool_is_denied_audited_and_raised(engine):
    s = engine.session(agent="support")
    with pytest.raises(UnknownName) as raised:
        s.decide("launch_rockets", {"count": 3})
    assert raised.value.kind == "tool" and raised.value.name == "launch_rockets"
    assert "unknown tool `launch_rockets`" in str(raised.value) and "`refund`" in str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert s.state()["calls"] == 1  # the engine decided it (a deny) first


def test_unknown_parameter_resource_and_key_are_denied_then_raised(engine):
    s = engine.session(agent="support")
    with pytest.raises(InvalidArgument) as raised:
        s.decide("refund", {"amount": "$5", "order_id": "o", "memo": "x"})
    e = raised.value
    assert e.argument == "memo" and "tool `refund` has no parameter `memo`" in str(e)
    assert "its parameters: `amount` and `order_id`" in str(e)
    assert e.decision.outcome == "deny" and e.decision.reason == "request"
    with pytest.raises(InvalidArgument) as raised:
        s.decide("lookup_order", {"order_id": "o"}, read=("warehouse", {"customer": "c"}))
    assert raised.value.argument == "read" and "unknown resource `warehouse`" in str(raised.value)
    for read in (5, ("orders",), {"resource": "orders", "keys": {"customer": 7}}, {"table": "orders"}):
        with pytest.raises(InvalidArgument) as raised:
            s.decide("lookup_order", {"order_id": "o"}, read=read)
        assert raised.value.argument == "read"
    for args in ({1: "x"}, ):
        with pytest.raises(InvalidArgument):
            s.decide("lookup_order", args)
    with pytest.raises(TypeError):
        s.decide("lookup_order", ["order_id", "o"])


def test_deploy_time_sets_are_bound_or_fail_closed(clock):
    from conftest import SHOP

    unbound = agentpolicy.Engine(policy=SHOP, clock=clock)
    with pytest.raises(InvalidArgument) as raised:
        unbound.session(agent="support").decide("pay", {"payee": "ACME-BANK-1", "amount": "$10"})
    assert "never bound" in str(raised.value) and raised.value.argument == "payee"
    bound = agentpolicy.Engine(policy=SHOP, clock=clock, sets={"trusted_payees": ["ACME-BANK-1"]})
    s = bound.session(agent="support")
    assert s.decide("pay", {"payee": "ACME-BANK-1", "amount": "$10"}).outcome == "escalate"
    assert s.decide("pay", {"payee": "MALLORY", "amount": "$10"}).outcome == "deny"
    for sets, words in [
        ({"nope": ["x"]}, "no set `nope`"),
        ({"trusted_payees": "ACME"}, "list of str"),
        ({"trusted_payees": [1]}, "list of str"),
    ]:
        with pytest.raises(InvalidArgument) as raised:
            agentpolicy.Engine(policy=SHOP, clock=clock, sets=sets)
        assert words in str(raised.value)


def test_bad_engine_options_are_clear(clock):
    from conftest import SHOP

    cases = [
        (dict(policy=SHOP, durability="sometimes"), "durability"),
        (dict(policy=SHOP, shadow=["ghost"]), "unknown agent `ghost`"),
        (dict(policy=SHOP, shadow=5), "shadow"),
        (dict(policy=SHOP, restore=True), "restore"),
        (dict(policy=SHOP, housekeeping=-1.0), "housekeeping"),
        (dict(), "pass `table`"),
        (dict(table=b"x", policy=SHOP), "either"),
    ]
    for kwargs, words in cases:
        with pytest.raises(ValueError) as raised:
            agentpolicy.Engine(**kwargs)
        assert words in str(raised.value), kwargs
    with pytest.raises(TypeError):
        agentpolicy.Engine(policy=SHOP, clock="now")


def test_junk_of_every_kind_raises_and_never_crashes(engine):
    """Every parameter type, option and method fed values of every Python kind: each
    call decides or raises a Python exception; the interpreter survives to assert it."""
    import itertools

    junk = [
        None, True, 0, -1, 2**70, 1.5, float("nan"), "", "x" * 10_000, "\udcff", b"\x00",
        Decimal("sNaN"), [], ["a", 1], {}, {"a": object()}, (1, 2), object(), datetime.date(2026, 1, 1),
        datetime.timedelta(days=10**8), "$", "-$", "$-", "1e999", "85%%", "--1",
    ]
    s = engine.session(agent="support")
    tools = engine.tools
    outcomes = 0
    for tool, params in tools.items():
        for param, value in itertools.product(list(params) + ["nope"], junk):
            try:
                s.decide(tool, {param: value})
                outcomes += 1
            except (agentpolicy.AgentPolicyError, ValueError, TypeError):
                pass
            s.new_task()
    for option in ("confidence", "untrusted", "read", "write", "reasoning"):
        for value in junk:
            try:
                s.decide("lookup_order", {"order_id": "o"}, **{option: value})
            except (agentpolicy.AgentPolicyError, ValueError, TypeError):
                pass
            s.new_task()
    for value in junk:
        for call in (engine.approve, engine.reject, engine.wait):
            with pytest.raises((agentpolicy.AgentPolicyError, ValueError, TypeError, TimeoutError)):
                if call is engine.wait:
                    call(value, timeout=0.01)
                else:
                    call(value, by="m")
        for fn in (s.report, engine.report):
            with pytest.raises((agentpolicy.AgentPolicyError, ValueError, TypeError)):
                fn(value)
    assert outcomes > 0
