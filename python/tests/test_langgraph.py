"""The framework test: a LangGraph agent (a scripted chat model, no network) with its
tools guarded by agentpolicy. An injected tool output makes the agent call a denied
tool, whose side effect never happens; an allowed tool runs; an escalated one waits for
a manager and runs only after approval."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("langchain_core")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from langchain_core.messages import HumanMessage, ToolMessage  # noqa: E402

import agentpolicy  # noqa: E402
import langgraph_support as example  # noqa: E402


def run(engine, *, wait=30, approve=True):
    desk = example.SupportDesk(engine, wait=wait)
    app = example.build_graph(example.ScriptedChatModel(script=example.default_script()), desk.tools)
    manager = example.manager_approves(engine, lambda: list(desk.effects)) if approve else None
    result = app.invoke({"messages": [HumanMessage("Please handle the support inbox.")]})
    if manager:
        manager.join(timeout=10)
    tool_messages = {m.name: str(m.content) for m in result["messages"] if isinstance(m, ToolMessage)}
    return desk, result, tool_messages


def test_injection_is_refused_allowed_runs_escalated_waits(tmp_path, cli):
    import subprocess

    log = tmp_path / "audit.jsonl"
    engine = agentpolicy.Engine(policy=example.SHOP_POLICY, audit=log, sets={"trusted_payees": []})
    desk, result, tools = run(engine)

    done = [name for name, _ in desk.effects]
    # The injected calls were made by the agent, and refused: their functions never ran.
    assert "delete_account" in tools and "send_reply" in tools
    assert tools["delete_account"].startswith("Refused by policy") and "not granted" in tools["delete_account"]
    assert tools["send_reply"].startswith("Refused by policy")
    assert "delete_account" not in done and "send_reply" not in done
    # The allowed tools ran; the refund (escalated: the session read the untrusted
    # inbox) waited for the manager and then ran.
    assert done == ["read_inbox", "lookup_order", "refund"]
    assert tools["refund"] == "refunded $20 on o-1"
    assert desk.session.tainted
    assert result["messages"][-1].content.startswith("Order o-1 is refunded")
    engine.close()

    # The audit log holds every one of those decisions, and it verifies.
    verified = subprocess.run([str(cli), "audit", "verify", str(log)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    text = log.read_text()
    assert '"tool":"delete_account"' in text.replace(" ", "")
    assert "approved by maria@shop.example" in text


def test_without_an_answer_the_escalated_tool_does_not_run():
    engine = agentpolicy.Engine(policy=example.SHOP_POLICY, sets={"trusted_payees": []})
    desk, _, tools = run(engine, wait=None, approve=False)
    assert "refund" not in [name for name, _ in desk.effects]
    assert "waiting for a human" in tools["refund"]
    assert [e.tool for e in engine.pending_escalations()] == ["refund"]
