"""`agentpolicy mcp --service`: the real gateway deciding through the real
`agentpolicy serve` (started here on a free loopback port with a tokens file written
here), in front of the FastMCP notes server, driven by the official Python MCP client.
Run by mcp/run-tests.sh.
"""

import asyncio
import hashlib
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from test_gateway import AP, NOTES_POLICY, log_lines, notes_upstream, text_of

AGENT_TOKEN = "agent-token-0123456789abcdef"
OPERATOR_TOKEN = "operator-token-0123456789abcdef"


def sha(t):
    return hashlib.sha256(t.encode()).hexdigest()


@pytest.fixture
def service(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [
        {"name": "gateway", "sha256": sha(AGENT_TOKEN), "role": "agent", "agents": ["assistant"]},
        {"name": "oncall", "sha256": sha(OPERATOR_TOKEN), "role": "operator", "agents": ["*"], "routes": ["*"]},
    ]}))
    audit = tmp_path / "serve-audit.jsonl"
    proc = subprocess.Popen(
        [str(AP), "serve", "--policy", str(NOTES_POLICY), "--listen", "127.0.0.1:0",
         "--tokens", str(tokens), "--audit", str(audit), "--durability", "os-buffered"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on http://"), line
    url = line.removeprefix("listening on ")
    token_file = tmp_path / "agent.token"
    token_file.write_text(AGENT_TOKEN + "\n")
    yield proc, url, token_file, audit
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


def api(url, method, path, token, body=None):
    req = urllib.request.Request(url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def params(url, token_file, env):
    args = ["mcp", "--policy", str(NOTES_POLICY), "--agent", "assistant", "--service", url,
            "--service-token-file", str(token_file), "--service-timeout-ms", "2000", "--"] + notes_upstream()
    return StdioServerParameters(command=str(AP), args=args, env={**os.environ, **env})


async def with_session(p, body):
    async with stdio_client(p) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await body(session)


def resolve_when_pending(url, answer, seen):
    """An operator resolving the first pending escalation through serve's API."""
    for _ in range(100):
        status, body = api(url, "GET", "/v1/escalations", OPERATOR_TOKEN)
        items = body if isinstance(body, list) else body.get("escalations", [])
        if status == 200 and items:
            esc = items[0]["id"]
            # The agent's own token may not resolve it.
            seen["agent"] = api(url, "POST", f"/v1/escalations/{esc}/approve", AGENT_TOKEN, {"reason": "self"})[0]
            seen["operator"] = api(url, "POST", f"/v1/escalations/{esc}/{answer}", OPERATOR_TOKEN, {"reason": "checked by oncall"})[0]
            return
        time.sleep(0.05)


def test_allow_deny_and_escalations_through_the_service(service, tmp_path):
    proc, url, token_file, audit = service
    log = tmp_path / "notes.log"
    env = {"NOTES_LOG": str(log)}
    seen_ok, seen_no = {}, {}

    async def body(s):
        allowed = await s.call_tool("read_note", {"name": "plan"})
        denied = await s.call_tool("admin_reset", {})
        t = threading.Thread(target=resolve_when_pending, args=(url, "approve", seen_ok))
        t.start()
        approved = await s.call_tool("pay", {"amount": 10, "payee": "bob"})
        t.join()
        t = threading.Thread(target=resolve_when_pending, args=(url, "reject", seen_no))
        t.start()
        rejected = await s.call_tool("pay", {"amount": 20, "payee": "eve"})
        t.join()
        return allowed, denied, approved, rejected

    allowed, denied, approved, rejected = asyncio.run(with_session(params(url, token_file, env), body))
    assert not allowed.isError and text_of(allowed) == "ship the gateway on friday"
    assert denied.isError and "denied by policy" in text_of(denied)
    assert not any("admin_reset" in l for l in log_lines(log))
    assert seen_ok == {"agent": 403, "operator": 200}
    assert not approved.isError, text_of(approved)
    assert seen_no == {"agent": 403, "operator": 200}
    assert rejected.isError and "ended in deny" in text_of(rejected)
    paid = [l for l in log_lines(log) if l.startswith("pay")]
    assert len(paid) == 1 and "bob" in paid[0]
    records = [json.loads(l) for l in audit.read_text().splitlines()]
    kinds = [r.get("kind") for r in records]
    assert "decision" in kinds and "resolution" in kinds, kinds
    assert any("checked by oncall" in json.dumps(r) for r in records)


def test_service_stopped_mid_session_denies_and_the_gateway_stays_up(service, tmp_path):
    proc, url, token_file, audit = service
    log = tmp_path / "notes.log"
    env = {"NOTES_LOG": str(log)}

    async def body(s):
        first = await s.call_tool("read_note", {"name": "plan"})
        proc.terminate()
        proc.wait(timeout=10)
        second = await s.call_tool("read_note", {"name": "two"})
        third = await s.call_tool("read_note", {"name": "three"})
        tools = await s.list_tools()
        return first, second, third, tools

    first, second, third, tools = asyncio.run(with_session(params(url, token_file, env), body))
    assert not first.isError
    for r in (second, third):
        assert r.isError
        assert "decision service" in text_of(r) and "fails closed" in text_of(r), text_of(r)
        assert r.meta["agentpolicy/decision"]["reason"] == "service"
    assert not any("two" in l or "three" in l for l in log_lines(log))
    assert tools.tools
