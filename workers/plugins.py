"""Build a pluggable collaborator (debate executor, explain generator) from a dotted path."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import cast


async def build_from_factory(dotted_path: str, what: str) -> Callable[..., object]:
    """Call the factory at ``package.module.factory`` and return the callable it builds.

    The factory takes no arguments and returns the callable, or an awaitable of it. ``what``
    names the collaborator in error messages ("executor", "explain generator").

    Raises:
        ImportError: ``dotted_path`` does not name a callable in an importable module.
        TypeError: the factory did not return a callable.
    """
    built = _import_factory(dotted_path, what)()
    if inspect.isawaitable(built):
        built = await built
    if not callable(built):
        raise TypeError(f"{what} factory {dotted_path!r} returned {type(built).__name__}")
    return cast(Callable[..., object], built)


def _import_factory(dotted_path: str, what: str) -> Callable[[], object]:
    """Import the callable named by ``package.module.attribute``."""
    module_name, _, attribute = dotted_path.rpartition(".")
    if not module_name or not attribute:
        raise ImportError(f"{what} path {dotted_path!r} is not of the form 'module.factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(
            f"{what} path {dotted_path!r}: cannot import module {module_name!r} ({error})"
        ) from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ImportError(
            f"{what} path {dotted_path!r}: {module_name!r} has no callable {attribute!r}"
        )
    return cast(Callable[[], object], factory)
