"""The scripts' library: one function per script, the clock read only by scripts that use it."""

from __future__ import annotations

import re

from queue_app.queue.redis.keys import SCRIPT_KEYS
from queue_app.queue.redis.scripts import (
    LIBRARY,
    NAMES,
    SCRIPTS,
    SOURCE,
    definitions,
    names_used,
    used_definitions,
)

#: The first line of each function: begin(keys, args, key_of, always, single, clock).
_BEGIN = re.compile(r"begin\(keys, args, key_(\w+), (\d+), (\d+), (true|false)\)")


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


def test_each_script_is_a_function_of_the_library_named_by_its_code() -> None:
    assert SOURCE.startswith(f"#!lua name={LIBRARY}\n")
    registered = re.findall(r"redis\.register_function\('(\w+)'", SOURCE)
    assert registered == [SCRIPTS[name].function for name in NAMES]
    assert all(function.startswith(LIBRARY + "_") for function in registered)


def test_each_function_begins_with_its_own_keys_and_only_clock_readers_read_the_clock() -> None:
    begins = {
        name: (int(a), int(s), clock == "true") for name, a, s, clock in _BEGIN.findall(SOURCE)
    }
    assert set(begins) == set(NAMES)
    for name, (always, single, _) in begins.items():
        assert always + single == len(SCRIPT_KEYS[name])
    without_clock = {name for name, (_, _, clock) in begins.items() if not clock}
    assert without_clock == {"heartbeat", "ledger_jobs", "scoped"}
