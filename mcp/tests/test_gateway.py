"""Integration tests of `agentpolicy mcp`: the real gateway binary in front of real MCP
servers (a FastMCP server written here, and @modelcontextprotocol/server-filesystem from
npm), driven by the official Python MCP client. No mocks: every decision is the engine's,
every forwarded call reaches a real server. Run by mcp/run-tests.sh.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
AP = Path(os.environ.get("AGENTPOLICY", ROOT / "target" / "debug" / "agentpolicy"))
NOTES_POLICY = HERE / "notes_policy"
FS_POLICY = ROOT / "examples" / "mcp_filesystem"
FS_SERVER = ROOT / "target" / "mcp-npm" / "node_modules" / ".bin" / "mcp-server-filesystem"


def notes_upstream():
    return [sys.executable, str(HERE / "notes_server.py")]


def gateway_params(policy, agent, upstream, *, audit=None, queue=None, env=None):
    args = ["mcp", "--policy", str(policy), "--agent", agent]
    if audit:
        args += ["--audit", str(audit), "--durability", "os-buffered"]
    if queue:
        args += ["--queue", str(queue)]
    full_env = dict(os.environ)
    full_env.update(env or {})
    return StdioServerParameters(command=str(AP), args=args + ["--"] + upstream, env=full_env)


async def with_session(params, body, elicitation_callback=None):
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, elicitation_callback=elicitation_callback) as session:
            await session.initialize()
            return await body(session)


def text_of(result):
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def log_lines(path):
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def notes(tmp_path):
    log = tmp_path / "notes.log"
    return log, {"NOTES_LOG": str(log)}


def test_tool_list_is_filtered_to_granted_tools(notes):
    _, env = notes

    async def body(s):
        return await s.list_tools()

    tools = asyncio.run(with_session(gateway_params(NOTES_POLICY, "assistant", notes_upstream(), env=env), body))
    names = sorted(t.name for t in tools.tools)
    # admin_reset is declared but granted to nobody; the rest are granted.
    assert names == ["crash", "echo", "fetch_web", "pay", "read_note", "send_email"]
    read_note = next(t for t in tools.tools if t.name == "read_note")
    assert read_note.description == "Read a note by name."
    assert read_note.inputSchema["properties"]["name"]["type"] == "string"


def test_allowed_result_is_passed_through_unchanged(notes):
    _, env = notes

    async def via(s):
        return await s.call_tool("read_note", {"name": "plan"})

    through = asyncio.run(with_session(gateway_params(NOTES_POLICY, "assistant", notes_upstream(), env=env), via))
    direct = asyncio.run(
        with_session(StdioServerParameters(command=sys.executable, args=[str(HERE / "notes_server.py")], env={**os.environ, **env}), via)
    )
    assert not through.isError
    assert through.model_dump() == direct.model_dump()
    assert text_of(through) == "ship the gateway on friday"


def test_denied_call_never_reaches_the_upstream(notes):
    log, env = notes

    async def body(s):
        return await s.call_tool("admin_reset", {})

    result = asyncio.run(with_session(gateway_params(NOTES_POLICY, "assistant", notes_upstream(), env=env), body))
    assert result.isError
    assert "denied by policy" in text_of(result)
    assert result.meta["agentpolicy/decision"]["reason"] == "not_granted"
    assert "admin_reset" not in log_lines(log)


def test_taint_from_an_untrusted_tool_changes_a_later_decision(notes, tmp_path):
    log, env = notes
    audit = tmp_path / "audit.jsonl"

    async def body(s):
        before = await s.call_tool("send_email", {"to": "bob@example.invalid", "body": "one"})
        page = await s.call_tool("fetch_web", {"url": "https://example.invalid"})
        after = await s.call_tool("send_email", {"to": "bob@example.invalid", "body": "two"})
        return before, page, after

    before, page, after = asyncio.run(
        with_session(gateway_params(NOTES_POLICY, "assistant", notes_upstream(), audit=audit, env=env), body)
    )
    assert not before.isError and text_of(before) == "sent to bob@example.invalid"
    assert not page.isError
    assert after.isError
    decision = after.meta["agentpolicy/decision"]
    # `deny send_email when tainted`, the first deny rule of send_email.
    assert decision["reason"] == "rule" and decision["rule"] == "assistant/deny/send_email#1"
    sent = [l for l in log_lines(log) if l.startswith("send_email")]
    assert sent == ["send_email bob@example.invalid one"]
    # Everything is in the audit log, which verifies, with the MCP session as the session.
    verify = subprocess.run([str(AP), "audit", "verify", str(audit)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    records = [json.loads(l) for l in audit.read_text().splitlines()]
    decisions = [r for r in records if r.get("kind") == "decision"]
    assert [d["tool"] for d in decisions] == ["send_email", "fetch_web", "send_email"]
    assert len({d["session"] for d in decisions}) == 1


def test_untrusted_argument_provenance_through_meta(notes):
    log, env = notes

    async def body(s):
        return await s.call_tool(
            "send_email",
            {"to": "evil@example.invalid", "body": "plan"},
            meta={"agentpolicy/untrusted": ["to"]},
        )

    result = asyncio.run(with_session(gateway_params(NOTES_POLICY, "assistant", notes_upstream(), env=env), body))
    # `deny send_email when to from untrusted`.
    assert result.isError and result.meta["agentpolicy/decision"]["rule"] == "assistant/deny/send_email#2"
    assert not [l for l in log_lines(log) if l.startswith("send_email")]


def test_wrong_argument_type_is_refused_before_the_upstream(notes):
    log, env = notes

    async def body(s):
        return await s.call_tool("pay", {"amount": "lots", "payee": "bob"})

    result = asyncio.run(with_session(gateway_params(NOTES_POLICY, "assistant", notes_upstream(), env=env), body))
    assert result.isError and "argument `amount`" in text_of(result)
    assert not [l for l in log_lines(log) if l.startswith("pay")]


def test_escalation_approved_by_elicitation(notes):
    log, env = notes
    asked = []

    async def approve(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": True})

    async def body(s):
        return await s.call_tool("pay", {"amount": 25, "payee": "bob"})

    result = asyncio.run(
        with_session(gateway_params(NOTES_POLICY, "assistant", notes_upstream(), env=env), body, elicitation_callback=approve)
    )
    assert len(asked) == 1 and "pay" in asked[0] and "approvers" in asked[0]
    assert not result.isError and text_of(result) == "paid 25.0 to bob"
    assert "pay 25.0 bob" in log_lines(log)


def test_escalation_declined_by_elicitation(notes):
    log, env = notes

    async def decline(context, params):
        return types.ElicitResult(action="decline")

    async def body(s):
        return await s.call_tool("pay", {"amount": 25, "payee": "bob"})

    result = asyncio.run(
        with_session(gateway_params(NOTES_POLICY, "assistant", notes_upstream(), env=env), body, elicitation_callback=decline)
    )
    assert result.isError and "escalation" in text_of(result)
    assert not [l for l in log_lines(log) if l.startswith("pay")]


def test_escalation_resolved_through_the_queue(notes, tmp_path):
    log, env = notes
    queue = tmp_path / "queue"

    async def body(s):
        call = asyncio.create_task(s.call_tool("pay", {"amount": 40, "payee": "carol"}))
        for _ in range(100):
            pending = list(queue.glob("*.json")) if queue.exists() else []
            if pending:
                break
            await asyncio.sleep(0.05)
        assert len(pending) == 1
        waiting = json.loads(pending[0].read_text())
        assert waiting["tool"] == "pay" and waiting["routes"] == ["approvers"]
        done = subprocess.run(
            [str(AP), "mcp", "resolve", str(queue), pending[0].stem, "approve", "--by", "alice"],
            capture_output=True, text=True,
        )
        assert done.returncode == 0, done.stderr
        return await call

    # This client does not advertise elicitation: the call waits in the queue.
    result = asyncio.run(with_session(gateway_params(NOTES_POLICY, "assistant", notes_upstream(), queue=queue, env=env), body))
    assert not result.isError and text_of(result) == "paid 40.0 to carol"
    assert "pay 40.0 carol" in log_lines(log)
    assert not list(queue.glob("*.json"))


def test_escalation_times_out_with_the_routes_outcome(notes):
    log, env = notes

    async def body(s):
        started = time.monotonic()
        result = await s.call_tool("pay", {"amount": 40, "payee": "carol"})
        return result, time.monotonic() - started

    result, waited = asyncio.run(with_session(gateway_params(NOTES_POLICY, "assistant", notes_upstream(), env=env), body))
    # `approvers` times out after 4s, then deny.
    assert result.isError and "timed out" in text_of(result)
    assert 3.5 <= waited < 15
    assert not [l for l in log_lines(log) if l.startswith("pay")]


def test_upstream_crash_mid_call_is_an_error_and_the_gateway_stays_up(notes):
    log, env = notes

    async def body(s):
        crashed = await s.call_tool("crash", {})
        after = await s.call_tool("read_note", {"name": "lunch"})
        return crashed, after

    crashed, after = asyncio.run(with_session(gateway_params(NOTES_POLICY, "assistant", notes_upstream(), env=env), body))
    assert crashed.isError and "upstream failed" in text_of(crashed)
    # The upstream was started again for the next call.
    assert not after.isError and text_of(after) == "soup"


def test_malformed_client_messages_get_errors_and_the_session_goes_on(notes):
    _, env = notes
    cmd = [str(AP), "mcp", "--policy", str(NOTES_POLICY), "--agent", "assistant", "--"] + notes_upstream()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, **env})

    def send(msg):
        proc.stdin.write((msg if isinstance(msg, str) else json.dumps(msg)) + "\n")
        proc.stdin.flush()

    def receive():
        return json.loads(proc.stdout.readline())

    try:
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
        assert receive()["id"] == 1
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        # A request whose params are not an object: a JSON-RPC error comes back.
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": "not an object"})
        bad = receive()
        assert "error" in bad and bad["error"]["code"] in (-32600, -32602), bad
        assert bad["id"] == 2
        # A line that is not JSON at all gets a JSON-RPC parse error (id null); the
        # session goes on.
        send("this is not json")
        garbage = receive()
        assert garbage["error"]["code"] == -32700 and garbage["id"] is None, garbage
        # JSON that is no message at all: an invalid request.
        send([1, 2, 3])
        assert receive()["error"]["code"] == -32600
        send({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
        listed = receive()
        assert listed["id"] == 3 and "read_note" in [t["name"] for t in listed["result"]["tools"]]
        send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "read_note", "arguments": {"name": "plan"}}})
        called = receive()
        assert called["id"] == 4 and called["result"]["content"][0]["text"] == "ship the gateway on friday"
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def test_startup_names_undeclared_tools_and_misfit_types(tmp_path):
    policy = tmp_path / "p.agentpolicy"
    policy.write_text(
        'policy partial version "1"\n'
        "tool read_note(name: bool) { effect read }\n"
        "tool echo(text: text, loud: bool) { effect read }\n"
        'agent assistant {\n  owner "t@example.invalid"\n  allow read_note\n}\n'
    )
    done = subprocess.run([str(AP), "mcp", "--policy", str(policy), "--agent", "assistant", "--"] + notes_upstream(),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 1
    err = done.stderr
    assert "MCP tool `send_email` is not declared by the policy" in err
    assert "parameter `name` is declared `bool`, but the MCP tool's input schema says type \"string\"" in err
    assert "tool `echo`: the policy declares parameter `loud`" in err


def test_init_writes_a_policy_that_checks(tmp_path):
    out = tmp_path / "notes.agentpolicy"
    done = subprocess.run([str(AP), "mcp", "init", "-o", str(out), "--"] + notes_upstream(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "tool read_note(name: text) { effect read }" in text
    assert "tool fetch_web(url: text) { effect read, external  untrusted }" in text
    assert "tool pay(amount: number, payee: text) { effect write, irreversible, external  untrusted }" in text
    assert "  allow read_note\n" in text and "allow pay" not in text
    check = subprocess.run([str(AP), "check", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


# ---------------------------------------------------------------- the filesystem server


@pytest.fixture
def fs_root(tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    (root / "notes.txt").write_text("line one\nline two\n")
    return root


def fs_params(root):
    return gateway_params(FS_POLICY, "reader", [str(FS_SERVER), str(root)])


def test_filesystem_tool_list_is_the_read_only_tools(fs_root):
    async def body(s):
        return await s.list_tools()

    names = {t.name for t in asyncio.run(with_session(fs_params(fs_root), body)).tools}
    assert "read_text_file" in names and "list_directory" in names
    assert not names & {"write_file", "edit_file", "move_file", "create_directory"}


def test_filesystem_denied_write_is_never_written(fs_root):
    target = fs_root / "injected.txt"

    async def body(s):
        return await s.call_tool("write_file", {"path": str(target), "content": "pwned"})

    result = asyncio.run(with_session(fs_params(fs_root), body))
    assert result.isError and "denied by policy" in text_of(result)
    assert not target.exists()


def test_filesystem_read_passes_through_unchanged(fs_root):
    async def body(s):
        return await s.call_tool("read_text_file", {"path": str(fs_root / "notes.txt")})

    through = asyncio.run(with_session(fs_params(fs_root), body))
    direct = asyncio.run(with_session(StdioServerParameters(command=str(FS_SERVER), args=[str(fs_root)]), body))
    assert not through.isError
    assert through.model_dump() == direct.model_dump()
    assert "line two" in text_of(through)
