#!/usr/bin/env bash
# The Python package's tests, from a clean clone: a virtualenv under target/, the pinned
# build and test tools, the wheel built by maturin and installed, the `agentpolicy` CLI
# (for `audit verify`), then pytest. CI runs it after the cargo tests (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
venv=$target/python-venv
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet -r python/requirements-test.txt

# The CLI the audit-log tests verify with (a no-op when `cargo test` built it already).
cargo build --quiet -p agentpolicy-cli
export AGENTPOLICY_BIN=$target/debug/agentpolicy

# The wheel, as `pip install ./python` builds it (release, abi3), then installed.
rm -rf "$target/wheels/agentpolicy-"*.whl
(cd python && CARGO_TARGET_DIR=$target "$venv/bin/maturin" build --release --quiet --out "$target/wheels")
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$target"/wheels/agentpolicy-*.whl

# From python/tests, so `import agentpolicy` is the installed wheel, not the source folder.
cd python/tests
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
