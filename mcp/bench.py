"""Overhead of `agentpolicy mcp`: the latency one tool call gains through the gateway.

The same `echo` call of the FastMCP server in mcp/tests/notes_server.py, made N times in
a row by the official Python MCP client, directly and through the gateway (policy
mcp/tests/notes_policy, which allows it):

- `--transport stdio`: client → server over stdio, against client → gateway (stdio) →
  server (stdio);
- `--transport http`: client → server over streamable HTTP, against client → gateway
  (`--listen`, bearer token) → server (streamable HTTP upstream).

`--audit off|os-buffered|fsync` sets the gateway's audit log. The direct and gateway
runs alternate in blocks (`--rounds`), so a change in the machine's load touches both.
Prints median and p99 of each and their differences. Run with the venv of
mcp/run-tests.sh:

    target/mcp-venv/bin/python mcp/bench.py [--calls 2000] [--transport stdio|http] \\
        [--audit off|os-buffered|fsync] [--binary target/release/agentpolicy]
"""

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOKEN = "bench-token-0123456789abcdef"


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def calls(session, n, warmup):
    await session.initialize()
    for _ in range(warmup):
        await session.call_tool("echo", {"text": "hello"})
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        await session.call_tool("echo", {"text": "hello"})
        samples.append((time.perf_counter_ns() - t) / 1000)
    return samples


async def run_stdio(params, n, warmup):
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            return await calls(session, n, warmup)


async def run_http(url, n, warmup, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                return await calls(session, n, warmup)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(400):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--audit", choices=["off", "os-buffered", "fsync"], default="off")
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "agentpolicy"))
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    gw_args = ["mcp", "--policy", str(HERE / "tests" / "notes_policy"), "--agent", "assistant"]
    if args.audit != "off":
        gw_args += ["--audit", str(Path(tmp.name) / "audit.jsonl"), "--durability", args.audit]
    server = [sys.executable, str(HERE / "tests" / "notes_server.py")]
    per_round = max(1, args.calls // args.rounds)
    direct, through = [], []
    procs = []
    try:
        if args.transport == "stdio":
            d_params = StdioServerParameters(command=server[0], args=server[1:])
            g_params = StdioServerParameters(command=args.binary, args=gw_args + ["--"] + server)
            for _ in range(args.rounds):
                direct += asyncio.run(run_stdio(d_params, per_round, 200))
                through += asyncio.run(run_stdio(g_params, per_round, 200))
        else:
            up_port = free_port()
            procs.append(subprocess.Popen(server + ["--http", str(up_port)], stderr=subprocess.DEVNULL))
            wait_port(up_port)
            up_url = f"http://127.0.0.1:{up_port}/mcp"
            token_file = Path(tmp.name) / "token"
            token_file.write_text(TOKEN + "\n")
            gw_port = free_port()
            procs.append(subprocess.Popen(
                [args.binary, *gw_args, "--listen", f"127.0.0.1:{gw_port}", "--token-file", str(token_file),
                 "--", up_url], stderr=subprocess.DEVNULL))
            wait_port(gw_port)
            gw_url = f"http://127.0.0.1:{gw_port}/mcp"
            for _ in range(args.rounds):
                direct += asyncio.run(run_http(up_url, per_round, 200))
                through += asyncio.run(run_http(gw_url, per_round, 200, TOKEN))
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
    dm, gm = statistics.median(direct), statistics.median(through)
    d99, g99 = pct(direct, 99), pct(through, 99)
    print(f"calls: {len(direct)} each in {args.rounds} alternating rounds, transport: {args.transport}, "
          f"binary: {args.binary}, audit: {args.audit}")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print("| path | median (µs) | p99 (µs) |")
    print("|---|---|---|")
    print(f"| direct ({args.transport}) | {dm:.0f} | {d99:.0f} |")
    print(f"| through the gateway | {gm:.0f} | {g99:.0f} |")
    print(f"| added by the gateway | {gm - dm:.0f} | {g99 - d99:.0f} |")


if __name__ == "__main__":
    main()
