"""The audit log written from Python is the engine's hash-chained log: the real
`agentpolicy audit verify` accepts it, and finds an edit; an engine restarts from it."""

from __future__ import annotations

import json
import subprocess

import agentpolicy
from conftest import SHOP


def run_session(engine):
    with engine.session("case-9", agent="support", context="user:alice") as s:
        ok = s.decide("refund", {"amount": "$20", "order_id": "o-1"}, reasoning="small refund")
        s.report(ok, ok=True, tokens=12, latency_ms=4)
        esc = s.decide("refund", {"amount": "$900", "order_id": "o-2"})
        engine.approve(esc, by="maria")
        s.decide("delete_account", {"customer_id": "c-1"})
        s.record_human(ok, "allow", by="clerk")
    engine.kill_agent("support", by="oncall")
    engine.resume_agent("support", by="oncall")
    return ok, esc


def verify(cli, path):
    return subprocess.run(
        [str(cli), "audit", "verify", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_audit_log_verifies_with_the_cli(tmp_path, clock, cli):
    log = tmp_path / "audit.jsonl"
    engine = agentpolicy.Engine(policy=SHOP, audit=log, clock=clock)
    ok, esc = run_session(engine)
    assert ok.audit_seq is not None and esc.audit_seq > ok.audit_seq
    assert engine.audit_head >= esc.audit_seq
    engine.close()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [r["kind"] for r in records]
    for kind in ("decision", "result", "resolution", "human", "control", "session"):
        assert kind in kinds, kinds
    decisions = [r for r in records if r["kind"] == "decision"]
    assert decisions[0]["agent"] == "support" and decisions[0]["session"] == "case-9"
    assert decisions[0]["context"] == "user:alice"
    result = verify(cli, log)
    assert result.returncode == 0, result.stdout + result.stderr
    # The human action recorded from Python pairs with its decision in the shadow report.
    report = subprocess.run(
        [str(cli), "audit", "shadow-report", str(log)], capture_output=True, text=True, timeout=60
    )
    assert report.returncode == 0, report.stdout + report.stderr
    assert "support" in report.stdout

    # One edited byte in a decision breaks the chain, and the CLI says so.
    lines = log.read_text().splitlines(keepends=True)
    i = next(n for n, line in enumerate(lines) if '"kind":"decision"' in line.replace(" ", ""))
    lines[i] = lines[i].replace("support", "supp0rt", 1)
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("".join(lines))
    result = verify(cli, tampered)
    assert result.returncode == 1, result.stdout + result.stderr


def test_an_engine_restarts_from_its_audit_log(tmp_path, clock):
    log = tmp_path / "audit.jsonl"
    first = agentpolicy.Engine(policy=SHOP, audit=log, clock=clock, durability="buffered")
    s = first.session("case-1", agent="support")
    assert s.decide("lookup_order", {"order_id": "o"}, read=("orders", {"customer": "C-1"})).allowed
    pending = s.decide("refund", {"amount": "$700", "order_id": "o"})
    first.kill_agent("auditor", by="oncall")
    first.close()

    second = agentpolicy.Engine(policy=SHOP, audit=log, clock=clock, restore=True)
    assert [e.id for e in second.pending_escalations()] == [pending.escalation]
    assert second.suspensions()["killed"] == ["auditor"]
    assert second.approve(pending.escalation, by="maria").outcome == "allow"
    second.close()
