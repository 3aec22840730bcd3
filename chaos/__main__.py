"""``python -m chaos``: run the chaos test (``make chaos``); exit 1 on any violation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaos.plan import Plan
from chaos.run import run


def main(argv: list[str] | None = None) -> int:
    """Parse the plan from the command line and run it."""
    default = Plan()
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    for name in default.__dataclass_fields__:
        value = getattr(default, name)
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=type(value), default=value, help=f"default {value}")
    parser.add_argument("--json", type=Path, default=None, help="where to write the record")
    options = vars(parser.parse_args(argv))
    json_path = options.pop("json")
    return run(Plan(**options), json_path)


if __name__ == "__main__":
    sys.exit(main())
