"""`agentpolicy mcp` over streamable HTTP, both ways: the official Python client's
streamable HTTP client against the gateway (`--listen`, bearer token), and the gateway
in front of the FastMCP notes server run by the test with the streamable-http transport
on a free loopback port. Real binary, real servers, real client; run by mcp/run-tests.sh.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
AP = Path(os.environ.get("AGENTPOLICY", ROOT / "target" / "debug" / "agentpolicy"))
NOTES_POLICY = HERE / "notes_policy"
TOKEN = "test-token-0123456789abcdef"


def notes_upstream():
    return [sys.executable, str(HERE / "notes_server.py")]


def text_of(result):
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def log_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """`agentpolicy mcp --listen 127.0.0.1:0` with the notes server behind it."""

    def __init__(self, tmp_path, *, extra=(), upstream=None, env=None):
        self.token_file = tmp_path / "token"
        self.token_file.write_text(TOKEN + "\n")
        self.audit = tmp_path / "audit.jsonl"
        cmd = [str(AP), "mcp", "--policy", str(NOTES_POLICY), "--agent", "assistant",
               "--audit", str(self.audit), "--durability", "os-buffered",
               "--listen", "127.0.0.1:0", "--token-file", str(self.token_file), *extra,
               "--", *(upstream or notes_upstream())]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        # The upstream's stderr is the gateway's too: read until the gateway says where
        # it listens, then keep draining it so no pipe fills up.
        self.stderr = []
        while True:
            line = self.proc.stderr.readline()
            assert line, "the gateway exited before listening: " + "".join(self.stderr)
            self.stderr.append(line)
            if "listening on http://" in line:
                break
        self.url = line.strip().split("listening on ")[1]
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        return self.proc.returncode

    def records(self):
        return [json.loads(l) for l in self.audit.read_text().splitlines()]


@pytest.fixture
def notes(tmp_path):
    log = tmp_path / "notes.log"
    return log, {"NOTES_LOG": str(log)}


@pytest.fixture
def gateway(tmp_path, notes):
    _, env = notes
    gw = Gateway(tmp_path, env=env)
    yield gw
    if gw.proc.poll() is None:
        gw.stop()


async def over_http(url, body, token=TOKEN, elicitation_callback=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=60)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write, elicitation_callback=elicitation_callback) as session:
                await session.initialize()
                return await body(session)


def post(url, body, headers):
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}).encode()


def test_http_client_gets_the_filtered_list_allow_deny_and_taint(gateway, notes):
    log, _ = notes

    async def body(s):
        tools = await s.list_tools()
        read = await s.call_tool("read_note", {"name": "plan"})
        reset = await s.call_tool("admin_reset", {})
        before = await s.call_tool("send_email", {"to": "bob@example.invalid", "body": "one"})
        await s.call_tool("fetch_web", {"url": "https://example.invalid"})
        after = await s.call_tool("send_email", {"to": "bob@example.invalid", "body": "two"})
        return tools, read, reset, before, after

    tools, read, reset, before, after = asyncio.run(over_http(gateway.url, body))
    assert sorted(t.name for t in tools.tools) == ["crash", "echo", "fetch_web", "pay", "read_note", "send_email"]
    assert not read.isError and text_of(read) == "ship the gateway on friday"
    assert reset.isError and reset.meta["agentpolicy/decision"]["reason"] == "not_granted"
    assert "admin_reset" not in log_lines(log)
    assert not before.isError
    assert after.isError and after.meta["agentpolicy/decision"]["rule"] == "assistant/deny/send_email#1"
    assert [l for l in log_lines(log) if l.startswith("send_email")] == ["send_email bob@example.invalid one"]
    assert gateway.stop() == 0
    verify = subprocess.run([str(AP), "audit", "verify", str(gateway.audit)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    decisions = [r for r in gateway.records() if r.get("kind") == "decision"]
    assert len(decisions) == 5 and len({d["session"] for d in decisions}) == 1


def test_each_mcp_session_is_its_own_policy_session(gateway, notes):
    async def tainted(s):
        await s.call_tool("fetch_web", {"url": "https://example.invalid"})
        return await s.call_tool("send_email", {"to": "bob@example.invalid", "body": "x"})

    async def clean(s):
        return await s.call_tool("send_email", {"to": "bob@example.invalid", "body": "y"})

    async def both():
        # The two sessions are open at once on one gateway.
        return await asyncio.gather(over_http(gateway.url, tainted), over_http(gateway.url, clean))

    first, second = asyncio.run(both())
    assert first.isError and first.meta["agentpolicy/decision"]["rule"] == "assistant/deny/send_email#1"
    assert not second.isError and text_of(second) == "sent to bob@example.invalid"
    assert gateway.stop() == 0
    records = gateway.records()
    sessions = {r["session"] for r in records if r.get("kind") == "decision"}
    assert len(sessions) == 2
    # Both policy sessions were closed when their MCP sessions ended.
    closed = [r for r in records if r.get("kind") == "session" and "close" in (r.get("detail") or "")]
    assert {r["session"] for r in closed} >= sessions, [(r.get("kind"), r.get("detail")) for r in records]


def test_requests_without_the_right_token_are_refused_and_audited(gateway, notes):
    log, _ = notes
    status, body = post(gateway.url, INIT, {})
    assert status == 401 and b"no bearer token" in body
    status, body = post(gateway.url, INIT, {"Authorization": "Bearer not-the-token-at-all"})
    assert status == 401 and b"wrong bearer token" in body
    # The official client with a wrong token fails to connect at all.
    with pytest.raises(BaseException):
        asyncio.run(over_http(gateway.url, lambda s: s.list_tools(), token="wrong-token-wrong-token"))
    # A tool call without the token never reaches the upstream.
    call = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                       "params": {"name": "read_note", "arguments": {"name": "plan"}}}).encode()
    status, _ = post(gateway.url, call, {"Mcp-Session-Id": "guessed"})
    assert status == 401
    assert not [l for l in log_lines(log) if l.startswith("read_note")]
    # The right token gets in.
    status, _ = post(gateway.url, INIT, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    assert gateway.stop() == 0
    refusals = [r for r in gateway.records() if r.get("kind") == "refusal"]
    assert len(refusals) >= 4
    assert all(r["by"] == "http:127.0.0.1" for r in refusals)
    assert any("wrong bearer token" in r["detail"] for r in refusals)
    assert any("no bearer token" in r["detail"] for r in refusals)


def test_oversized_bodies_are_refused(tmp_path, notes):
    _, env = notes
    gw = Gateway(tmp_path, extra=["--max-body", "4096"], env=env)
    try:
        big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x" * 8000, "version": "1"}}}).encode()
        status, _ = post(gw.url, big, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 413
        status, _ = post(gw.url, INIT, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
    finally:
        assert gw.stop() == 0


def test_a_short_token_or_a_missing_token_file_is_refused_at_start(tmp_path):
    short = tmp_path / "short"
    short.write_text("abc\n")
    done = subprocess.run([str(AP), "mcp", "--policy", str(NOTES_POLICY), "--agent", "assistant",
                           "--listen", "127.0.0.1:0", "--token-file", str(short), "--", *notes_upstream()],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 2 and "at least 16" in done.stderr
    done = subprocess.run([str(AP), "mcp", "--policy", str(NOTES_POLICY), "--agent", "assistant",
                           "--listen", "127.0.0.1:0", "--", *notes_upstream()],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 2 and "--token-file" in done.stderr


def test_escalation_by_elicitation_over_http(gateway, notes):
    log, _ = notes

    async def approve(context, params):
        return types.ElicitResult(action="accept", content={"approve": True})

    async def body(s):
        return await s.call_tool("pay", {"amount": 25, "payee": "bob"})

    result = asyncio.run(over_http(gateway.url, body, elicitation_callback=approve))
    assert not result.isError and text_of(result) == "paid 25.0 to bob"
    assert "pay 25.0 bob" in log_lines(log)


# ------------------------------------------------- the gateway in front of an HTTP upstream


@pytest.fixture
def http_upstream(tmp_path, notes):
    _, env = notes
    port = free_port()
    token = tmp_path / "upstream-token"
    token.write_text("upstream-secret-0123456789\n")
    proc = subprocess.Popen([*notes_upstream(), "--http", str(port), "--token-file", str(token)],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    yield url, token
    proc.terminate()
    proc.wait(timeout=10)


def stdio_gateway(url, token_file, extra=()):
    args = ["mcp", "--policy", str(NOTES_POLICY), "--agent", "assistant", *extra]
    if token_file:
        args += ["--upstream-bearer-file", str(token_file)]
    return StdioServerParameters(command=str(AP), args=args + ["--", url])


async def with_stdio(params, body):
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await body(session)


def test_gateway_fronts_a_streamable_http_upstream(http_upstream, notes):
    log, _ = notes
    url, token = http_upstream

    async def body(s):
        tools = await s.list_tools()
        read = await s.call_tool("read_note", {"name": "lunch"})
        reset = await s.call_tool("admin_reset", {})
        await s.call_tool("fetch_web", {"url": "https://example.invalid"})
        mail = await s.call_tool("send_email", {"to": "bob@example.invalid", "body": "x"})
        return tools, read, reset, mail

    tools, read, reset, mail = asyncio.run(with_stdio(stdio_gateway(url, token), body))
    assert "read_note" in [t.name for t in tools.tools] and "admin_reset" not in [t.name for t in tools.tools]
    assert not read.isError and text_of(read) == "soup"
    assert reset.isError and "admin_reset" not in log_lines(log)
    assert mail.isError and mail.meta["agentpolicy/decision"]["rule"] == "assistant/deny/send_email#1"
    assert not [l for l in log_lines(log) if l.startswith("send_email")]


def test_allowed_result_over_http_upstream_is_unchanged(http_upstream, notes):
    url, token = http_upstream

    async def via(s):
        return await s.call_tool("read_note", {"name": "plan"})

    through = asyncio.run(with_stdio(stdio_gateway(url, token), via))

    async def direct():
        headers = {"Authorization": "Bearer " + token.read_text().strip()}
        async with httpx.AsyncClient(headers=headers) as http:
            async with streamable_http_client(url, http_client=http) as (read, write, _):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await via(session)

    assert through.model_dump() == asyncio.run(direct()).model_dump()


def test_http_upstream_without_its_token_fails_at_start(http_upstream, notes):
    url, _ = http_upstream
    done = subprocess.run([str(AP), "mcp", "--policy", str(NOTES_POLICY), "--agent", "assistant", "--", url],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 2
    assert url in done.stderr and "handshake failed" in done.stderr


def test_upstream_header_values_come_from_the_environment(http_upstream, notes, tmp_path):
    url, _ = http_upstream
    done = subprocess.run([str(AP), "mcp", "--policy", str(NOTES_POLICY), "--agent", "assistant",
                           "--upstream-header", "X-Api-Key: ${AP_TEST_UNSET_KEY}", "--", url],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "AP_TEST_UNSET_KEY"})
    assert done.returncode == 2 and "`AP_TEST_UNSET_KEY` is not set" in done.stderr


def test_gateway_over_http_in_front_of_http_upstream(tmp_path, http_upstream, notes):
    log, env = notes
    url, token = http_upstream
    gw = Gateway(tmp_path, extra=["--upstream-bearer-file", str(token)], upstream=[url], env=env)
    try:
        async def body(s):
            return await s.call_tool("read_note", {"name": "lunch"}), await s.call_tool("admin_reset", {})

        read, reset = asyncio.run(over_http(gw.url, body))
        assert not read.isError and text_of(read) == "soup"
        assert reset.isError and "admin_reset" not in log_lines(log)
    finally:
        assert gw.stop() == 0
