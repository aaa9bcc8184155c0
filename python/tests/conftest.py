"""Fixtures of the Python package's tests: the test policy (tests/policies/shop), an
engine on a manual clock, and the real `agentpolicy` CLI binary for `audit verify`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import agentpolicy

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SHOP = REPO / "python" / "examples" / "shop"
LAW_FIRM = REPO / "examples" / "law_firm"
ASSISTANT = REPO / "examples" / "personal_assistant"

# 2026-11-25T09:00:00Z: the engine's clock in tests, moved by hand.
START_MS = 1_795_597_200_000


@pytest.fixture
def clock() -> agentpolicy.ManualClock:
    return agentpolicy.ManualClock(START_MS)


@pytest.fixture
def engine(clock: agentpolicy.ManualClock) -> agentpolicy.Engine:
    e = agentpolicy.Engine(policy=SHOP, clock=clock, sets={"trusted_payees": ["ACME-BANK-1"]})
    yield e
    e.close()


def find_cli() -> Path | None:
    """The `agentpolicy` binary: $AGENTPOLICY_BIN, then the workspace's target
    directories (debug, then release; $CARGO_TARGET_DIR first), then $PATH."""
    if os.environ.get("AGENTPOLICY_BIN"):
        return Path(os.environ["AGENTPOLICY_BIN"])
    targets = [Path(os.environ["CARGO_TARGET_DIR"])] if os.environ.get("CARGO_TARGET_DIR") else []
    targets.append(REPO / "target")
    for target in targets:
        for profile in ("debug", "release"):
            candidate = target / profile / "agentpolicy"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    found = shutil.which("agentpolicy")
    return Path(found) if found else None


@pytest.fixture(scope="session")
def cli() -> Path:
    path = find_cli()
    if path is None:
        pytest.skip(
            "the `agentpolicy` binary is not built: run `cargo build -p agentpolicy-cli` "
            "(python/run-tests.sh does) or set AGENTPOLICY_BIN"
        )
    return path
