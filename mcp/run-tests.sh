#!/usr/bin/env bash
# The MCP gateway's integration tests (mcp/tests/test_gateway.py over stdio, test_service.py
# deciding through a real `agentpolicy serve`, test_http.py
# over streamable HTTP both ways): the real
# `agentpolicy mcp` binary between the official Python MCP client and real MCP servers
# (a FastMCP server written in the tests, and @modelcontextprotocol/server-filesystem).
# Runs from a clean clone: makes a venv under target/ with the pinned `mcp` and pytest,
# npm-installs the pinned filesystem server under target/, builds the binary, runs pytest.
# Needs python3 (with venv), node and npm. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

MCP_PY_VERSION=1.30.0
PYTEST_VERSION=9.2.0
FS_SERVER_VERSION=2026.8.31

venv=target/mcp-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import mcp, pytest, importlib.metadata as m; assert m.version('mcp') == '$MCP_PY_VERSION'" 2>/dev/null; then
  "$venv/bin/pip" install --quiet "mcp==$MCP_PY_VERSION" "pytest==$PYTEST_VERSION"
fi

npm_dir=target/mcp-npm
if [ ! -x "$npm_dir/node_modules/.bin/mcp-server-filesystem" ] \
  || ! grep -q "\"version\": \"$FS_SERVER_VERSION\"" "$npm_dir/node_modules/@modelcontextprotocol/server-filesystem/package.json"; then
  mkdir -p "$npm_dir"
  [ -f "$npm_dir/package.json" ] || echo '{"private": true}' > "$npm_dir/package.json"
  (cd "$npm_dir" && npm install --silent --no-audit --no-fund "@modelcontextprotocol/server-filesystem@$FS_SERVER_VERSION")
fi

cargo build --quiet -p agentpolicy-cli
"$venv/bin/python" -m pytest -q mcp/tests "$@"
