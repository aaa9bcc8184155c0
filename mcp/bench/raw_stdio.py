"""Overhead of `agentpolicy mcp` measured with as little else as possible: a raw
JSON-RPC client on pipes (no SDK) calls `echo` of mcp/bench/echo_server.py (no SDK)
directly, then through the gateway (policy mcp/bench/policy.agentpolicy), in
alternating rounds. Prints median and p99 per call of each and their difference.

    python3 mcp/bench/raw_stdio.py [--calls 20000] [--audit off|os-buffered|fsync] \\
        [--binary target/release/agentpolicy]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def run(cmd, n, warmup=500):
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    w, r = proc.stdin, proc.stdout

    def call(i, method, params):
        w.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode())
        w.flush()
        reply = json.loads(r.readline())
        assert reply.get("id") == i and "result" in reply, reply
        return reply["result"]

    call(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "bench", "version": "1"}})
    w.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    w.flush()
    params = {"name": "echo", "arguments": {"text": "hello"}}
    for i in range(warmup):
        call(i + 1, "tools/call", params)
    samples = []
    for i in range(n):
        t = time.perf_counter_ns()
        result = call(warmup + i + 1, "tools/call", params)
        samples.append((time.perf_counter_ns() - t) / 1000)
    assert result["content"][0]["text"] == "hello", result
    w.close()
    proc.wait(timeout=10)
    return samples


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--audit", choices=["off", "os-buffered", "fsync"], default="off")
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "agentpolicy"))
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    server = [sys.executable, str(HERE / "echo_server.py")]
    gateway = [args.binary, "mcp", "--policy", str(HERE / "policy.agentpolicy"), "--agent", "bench"]
    if args.audit != "off":
        gateway += ["--audit", str(Path(tmp.name) / "audit.jsonl"), "--durability", args.audit]
    gateway += ["--"] + server
    per_round = max(1, args.calls // args.rounds)
    direct, through = [], []
    for _ in range(args.rounds):
        direct += run(server, per_round)
        through += run(gateway, per_round)
    dm, gm = statistics.median(direct), statistics.median(through)
    d99, g99 = pct(direct, 99), pct(through, 99)
    load = os.getloadavg()
    print(f"calls: {len(direct)} each in {args.rounds} alternating rounds, raw stdio client and server, "
          f"binary: {args.binary}, audit: {args.audit}, load: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| path | median (µs) | p99 (µs) |")
    print("|---|---|---|")
    print(f"| direct (stdio) | {dm:.0f} | {d99:.0f} |")
    print(f"| through the gateway | {gm:.0f} | {g99:.0f} |")
    print(f"| added by the gateway | {gm - dm:.0f} | {g99 - d99:.0f} |")


if __name__ == "__main__":
    main()
