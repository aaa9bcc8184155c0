"""Overhead of `agentpolicy mcp`: the latency one tool call gains through the gateway.

The same `echo` call of the FastMCP server in mcp/tests/notes_server.py, made N times in
a row by the official Python MCP client: directly over stdio, then through the gateway
(policy mcp/tests/notes_policy, which allows it; no audit log unless --audit). Prints
median and p99 of each and their differences. Run with the venv of mcp/run-tests.sh:

    target/mcp-venv/bin/python mcp/bench.py [--calls 2000] [--binary target/release/agentpolicy]
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def run(params, calls, warmup=200):
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for _ in range(warmup):
                await session.call_tool("echo", {"text": "hello"})
            samples = []
            for _ in range(calls):
                t = time.perf_counter_ns()
                await session.call_tool("echo", {"text": "hello"})
                samples.append((time.perf_counter_ns() - t) / 1000)
            return samples


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--binary", default=str(ROOT / "target" / "debug" / "agentpolicy"))
    parser.add_argument("--audit", action="store_true", help="with an OS-buffered audit log")
    args = parser.parse_args()
    server = [sys.executable, str(HERE / "tests" / "notes_server.py")]
    direct = StdioServerParameters(command=server[0], args=server[1:])
    gw_args = ["mcp", "--policy", str(HERE / "tests" / "notes_policy"), "--agent", "assistant"]
    tmp = tempfile.TemporaryDirectory()
    if args.audit:
        gw_args += ["--audit", str(Path(tmp.name) / "audit.jsonl"), "--durability", "os-buffered"]
    gateway = StdioServerParameters(command=args.binary, args=gw_args + ["--"] + server)
    d = asyncio.run(run(direct, args.calls))
    g = asyncio.run(run(gateway, args.calls))
    dm, gm = statistics.median(d), statistics.median(g)
    d99, g99 = pct(d, 99), pct(g, 99)
    print(f"calls: {args.calls} each, binary: {args.binary}, audit: {'os-buffered' if args.audit else 'off'}")
    print("| path | median (µs) | p99 (µs) |")
    print("|---|---|---|")
    print(f"| direct (client → server, stdio) | {dm:.0f} | {d99:.0f} |")
    print(f"| through the gateway | {gm:.0f} | {g99:.0f} |")
    print(f"| added by the gateway | {gm - dm:.0f} | {g99 - d99:.0f} |")


if __name__ == "__main__":
    main()
