"""Engines from a policy folder or a built table; compile errors as a typed exception
with codes, messages and positions; bad tables and paths as clear errors."""

from __future__ import annotations

import pytest

import agentpolicy
from agentpolicy import PolicyCompileError, TableError
from conftest import ASSISTANT, LAW_FIRM, SHOP


def test_compile_returns_the_table_the_engine_loads(tmp_path):
    table = agentpolicy.compile(SHOP)
    assert isinstance(table, bytes) and len(table) > 100
    from_policy = agentpolicy.Engine(policy=SHOP)
    from_bytes = agentpolicy.Engine(table)
    path = tmp_path / "shop.table"
    path.write_bytes(table)
    from_file = agentpolicy.Engine.from_table(path)
    assert from_policy.table_hash == from_bytes.table_hash == from_file.table_hash
    assert agentpolicy.Engine.from_policy(str(SHOP)).table_hash == from_policy.table_hash
    # The table hash names the policy, not the path it was read from.
    assert agentpolicy.Engine(policy=SHOP / "policy.agentpolicy").table_hash == from_policy.table_hash


def test_a_policy_folder_uses_the_standard_library_and_skips_broken_variants():
    # examples/law_firm has a broken/ variant beside it and `use std.legal`.
    e = agentpolicy.Engine(policy=LAW_FIRM)
    assert set(e.agents) == {"intake", "research", "billing"}
    assert "transfer_from_trust" in e.tools and e.tools["transfer_from_trust"]["amount"] == "money"
    assert agentpolicy.Engine(policy=ASSISTANT).agents == ["assistant"]


def test_compile_errors_carry_codes_messages_and_positions(tmp_path):
    (tmp_path / "a.agentpolicy").write_text(
        'policy broken version "1"\n'
        "\n"
        "agent intake {\n"
        '  owner "ops@x.example"\n'
        "  allow send_teleport\n"
        "}\n"
    )
    with pytest.raises(PolicyCompileError) as raised:
        agentpolicy.Engine(policy=tmp_path)
    e = raised.value
    assert e.codes, e
    first = next(d for d in e.diagnostics if d.severity == "error")
    assert first.code.startswith("AP") and len(first.code) == 6
    assert first.file.endswith("a.agentpolicy")
    assert (first.line, first.column) == (5, 9)
    assert "send_teleport" in first.message
    assert str(first).startswith(f"{first.file}:5:9: error[{first.code}]")
    assert "1 error" in str(e) or "errors" in str(e)
    assert "send_teleport" in e.rendered
    assert isinstance(e, agentpolicy.AgentPolicyError)
    with pytest.raises(PolicyCompileError):
        agentpolicy.compile(tmp_path)


def test_a_syntax_error_and_bad_bytes(tmp_path):
    (tmp_path / "p.agentpolicy").write_bytes(b'policy p version "1"\nagent a {\n  allwo x\n}\n\xff\n')
    with pytest.raises(PolicyCompileError) as raised:
        agentpolicy.compile(tmp_path)
    codes = raised.value.codes
    assert "AP0004" in codes, codes


def test_missing_paths_and_bad_tables(tmp_path):
    with pytest.raises(OSError) as raised:
        agentpolicy.Engine(policy=tmp_path / "nowhere")
    assert "nowhere" in str(raised.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError) as raised:
        agentpolicy.Engine(policy=tmp_path / "empty")
    assert "no `.agentpolicy` files" in str(raised.value)
    with pytest.raises(OSError):
        agentpolicy.Engine(tmp_path / "missing.table")
    for junk in (b"", b"not a table", b"{\"format_version\": 0}", agentpolicy.compile(SHOP)[:-3]):
        with pytest.raises(TableError):
            agentpolicy.Engine(junk)
    with pytest.raises(ValueError):
        agentpolicy.Engine(3.5)
