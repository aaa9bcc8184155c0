"""Per-call time of `Session.decide` from Python against `cedarpy.is_authorized` (Cedar's
Python binding), on equivalent policies, in one process.

    python python/bench/bench_cedarpy.py [--calls 200000] [--repeats 5] [--clock wall|cpu]

Both engines get the same four requests in turn (a read, a small refund, a refund with
no rule, a refund over the cap) and must agree on allow / deny for each before any
timing. cedarpy gets its fastest path: the policy set and the (empty) entity set parsed
once, as `PolicySet` / `Entities` handles. agentpolicy decides in one session without an
audit log (the audit log's cost is the engine's, not the binding's: docs/performance.md).
Each figure is the median over `repeats` runs of the mean per call over `calls` calls.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from decimal import Decimal
from pathlib import Path

import cedarpy

import agentpolicy

POLICY = Path(__file__).resolve().parent / "policy"

CEDAR = """
permit(principal == Agent::"support", action == Action::"lookup_order", resource);
permit(principal == Agent::"support", action == Action::"refund", resource)
  when { context.amount <= 10000 };
forbid(principal == Agent::"support", action == Action::"refund", resource)
  when { context.amount > 500000 };
"""

# (tool, agentpolicy args, Cedar context with the amount in cents, expected outcome)
REQUESTS = [
    ("lookup_order", {"order_id": "o-1"}, {}, "allow"),
    ("refund", {"amount": "$50", "order_id": "o-1"}, {"amount": 5000}, "allow"),
    ("refund", {"amount": "$500", "order_id": "o-1"}, {"amount": 50000}, "deny"),
    ("refund", {"amount": "$6,000", "order_id": "o-1"}, {"amount": 600000}, "deny"),
]


def cedar_request(tool: str, context: dict) -> dict:
    return {
        "principal": 'Agent::"support"',
        "action": f'Action::"{tool}"',
        "resource": 'Order::"o-1"',
        "context": context,
    }


# Wall-clock time by default; `--clock cpu` measures this thread's CPU time instead,
# which other processes on a shared machine do not inflate.
CLOCK = time.perf_counter_ns


def per_call_ns(fn, calls: int, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = CLOCK()
        fn(calls)
        runs.append((CLOCK() - started) / calls)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    options = parser.parse_args()
    global CLOCK
    CLOCK = time.thread_time_ns if options.clock == "cpu" else time.perf_counter_ns

    engine = agentpolicy.Engine(policy=POLICY)
    session = engine.session("bench", agent="support")
    policies = cedarpy.PolicySet.from_str(CEDAR)
    entities = cedarpy.Entities.from_json_str("[]")
    cedar_requests = [cedar_request(tool, ctx) for tool, _, ctx, _ in REQUESTS]

    # Agreement first: a benchmark of engines that decide differently measures nothing.
    for (tool, args, _, expected), cedar in zip(REQUESTS, cedar_requests):
        ours = session.decide(tool, args).outcome
        theirs = "allow" if cedarpy.is_authorized(cedar, policies, entities).allowed else "deny"
        assert ours == theirs == expected, (tool, args, ours, theirs, expected)

    n = len(REQUESTS)
    decide = session.decide
    ap_requests = [(tool, args) for tool, args, _, _ in REQUESTS]

    def run_agentpolicy(calls: int) -> None:
        for i in range(calls):
            tool, args = ap_requests[i % n]
            decide(tool, args)

    is_authorized = cedarpy.is_authorized

    def run_cedarpy(calls: int) -> None:
        for i in range(calls):
            is_authorized(cedar_requests[i % n], policies, entities)

    def run_loop_only(calls: int) -> None:
        for i in range(calls):
            tool, args = ap_requests[i % n]

    cedar_calls = max(options.calls // 20, 1_000)
    ours = per_call_ns(run_agentpolicy, options.calls, options.repeats)
    theirs = per_call_ns(run_cedarpy, cedar_calls, options.repeats)
    loop = per_call_ns(run_loop_only, options.calls, options.repeats)

    # The same small refund with the amount as each Python type money takes.
    def typed(value):
        args = {"amount": value, "order_id": "o-1"}

        def run(calls: int) -> None:
            for _ in range(calls):
                decide("refund", args)

        return run

    by_type = {
        name: per_call_ns(typed(value), options.calls // 4, options.repeats)
        for name, value in [("str '$50'", "$50"), ("int 50", 50), ("Decimal('50')", Decimal("50"))]
    }

    from importlib.metadata import version

    print(
        f"python {platform.python_version()} on {platform.machine()}, agentpolicy {agentpolicy.__version__}, "
        f"cedarpy {version('cedarpy')}, {options.clock} clock"
    )
    print(f"agentpolicy Session.decide:   {ours / 1000:8.2f} µs per call ({options.calls} calls, median of {options.repeats})")
    print(f"cedarpy.is_authorized:        {theirs / 1000:8.2f} µs per call ({cedar_calls} calls, median of {options.repeats})")
    print(f"ratio (cedarpy / agentpolicy): {theirs / ours:7.1f}x")
    print(f"the Python loop alone:        {loop / 1000:8.2f} µs per call (included in both)")
    for name, ns in by_type.items():
        print(f"  refund with amount as {name:14} {ns / 1000:6.2f} µs per call")


if __name__ == "__main__":
    main()
