"""Each Lua script takes the shared definitions it uses, and only those."""

from __future__ import annotations

import pytest

from queue_app.queue.redis.keys import lua_prelude
from queue_app.queue.redis.scripts import (
    _LUA_DIR,
    NAMES,
    SCRIPTS,
    definitions,
    names_used,
    used_definitions,
)

SHARED = {name: lua_prelude(name) + (_LUA_DIR / "lib.lua").read_text() for name in NAMES}


def test_definitions_split_locals_with_their_comments_and_statements() -> None:
    lua = (
        "local A, B = 1, 2\n"
        "if B then A = 3 end\n"
        "-- doubles x\n"
        "local function twice(x)\n"
        "  return 2 * x\n"
        "end\n"
    )
    assert definitions(lua) == [
        (frozenset({"A", "B"}), "local A, B = 1, 2\nif B then A = 3 end\n"),
        (frozenset({"twice"}), "-- doubles x\nlocal function twice(x)\n  return 2 * x\nend\n"),
    ]


def test_names_in_strings_and_comments_are_not_uses() -> None:
    assert names_used("f('g', \"h\") -- i j\nk = 1") == {"f", "k"}


def test_a_definition_comes_with_those_it_uses_in_their_order() -> None:
    shared = "local A = 1\nlocal B = 2\nlocal function f() return A end\n"
    assert (
        used_definitions(shared, "return f()") == "local A = 1\nlocal function f() return A end\n"
    )


@pytest.mark.parametrize("name", NAMES)
def test_a_script_names_no_shared_definition_it_left_out(name: str) -> None:
    source = SCRIPTS[name].source
    left_out = {
        defined
        for names, text in definitions(SHARED[name])
        if text not in source
        for defined in names
    }
    assert not left_out & names_used(source)


def test_only_scripts_that_read_the_clock_call_time() -> None:
    without_clock = {name for name in NAMES if "redis.call('TIME')" not in SCRIPTS[name].source}
    assert without_clock == {"heartbeat", "ledger_jobs", "scoped"}


def test_enqueue_leaves_out_the_helpers_of_delivered_jobs() -> None:
    source = SCRIPTS["enqueue"].source
    for helper in ("dead_letter", "deliver", "promote_due", "count_minute", "job_values"):
        assert f"local function {helper}(" not in source
