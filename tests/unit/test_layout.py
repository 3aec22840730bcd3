"""The module map of docs/architecture.md matches the tree, and no module imports a private name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("aragora_site", "queue_app", "workers")


def python_modules() -> set[str]:
    """Return every module of the project's packages (migrations files aside)."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts and path.name != "__init__.py":
                continue
            found.add(relative.as_posix())
    return found


def test_architecture_map_lists_every_module_and_only_those() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"^- `([\w/]+\.py)` — ", text, flags=re.MULTILINE))
    modules = python_modules()
    assert sorted(modules - listed) == [], "modules missing from docs/architecture.md"
    assert sorted(listed - modules) == [], "docs/architecture.md lists modules that do not exist"


def test_no_module_imports_a_private_name_of_another() -> None:
    offenders = []
    for module in sorted(python_modules()):
        tree = ast.parse((ROOT / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private and node.module != "__future__":
                    offenders.append(f"{module}: from {node.module} import {private}")
    assert offenders == []
