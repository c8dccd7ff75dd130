"""Names a package exports but loads on first use, so that importing the package stays cheap.

A scan must not pay at start-up for what only reports, history or assessment need (SQLAlchemy,
the findings rules), and `import pacsaudit` must not build the result models before the CLI
has had its say about pydantic's plugin search.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, sources: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module `__getattr__` and `__dir__` for names loaded from `sources` (name ->
    module) on first use; a loaded name is kept in `namespace` (the package's globals)."""

    def __getattr__(name: str) -> Any:
        module = sources.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *sources})

    return __getattr__, __dir__
