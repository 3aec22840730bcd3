"""Lazy re-exports of a package (PEP 562): a public name's submodule is imported on first use.

``import workers`` then costs only the package itself, and a worker process imports only the
kinds it runs, with their libraries (httpx, cryptography...): ``queue_worker --queues tasks``
never loads the HTTP clients of the debate or webhook kinds.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` of ``package`` that import its exports on use.

    Args:
        package: the package's ``__name__``.
        exports: each submodule, relative (``".adapters"``), with the public names it defines.
    """
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)  # the next lookup finds it without this call
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *module_of})

    return __getattr__, __dir__
