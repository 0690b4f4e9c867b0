"""Run a callback once a module is imported: now if it already is, else right after its import.

``evtrack.autolog()`` uses this so that ``import sklearn`` after ``autolog()`` still
turns scikit-learn autologging on, without importing scikit-learn itself (which
takes ~0.5 s) in programs that never use it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

_log = logging.getLogger("evtrack.autologging")
_callbacks: dict[str, list[Callable[[Any], None]]] = {}
_lock = threading.Lock()


def _fire(name: str, module: Any) -> None:
    with _lock:
        callbacks = _callbacks.pop(name, [])
    for callback in callbacks:
        try:
            callback(module)
        except Exception as exc:  # noqa: BLE001 - an integration failing must not break the user's import
            _log.warning("Could not turn on autologging after importing %s: %s", name, exc)


class _Loader(importlib.abc.Loader):
    """The module's own loader, followed by the callbacks waiting for it."""

    def __init__(self, name: str, inner: importlib.abc.Loader) -> None:
        self.name, self.inner = name, inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)  # type: ignore[attr-defined]
        module.__spec__.loader = self.inner
        _fire(self.name, module)

    def __getattr__(self, attr: str) -> Any:  # get_resource_reader, is_package, … of the real loader
        return getattr(self.inner, attr)


class _Finder(importlib.abc.MetaPathFinder):
    """Watches for imports of the modules that have callbacks waiting."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _callbacks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(fullname, spec.loader)
                return spec
        return None


_finder = _Finder()


def when_imported(name: str, callback: Callable[[Any], None]) -> None:
    """Call ``callback(module)`` once module ``name`` is imported (at once if it already is)."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    with _lock:
        _callbacks.setdefault(name, []).append(callback)
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)


def cancel(name: str) -> None:
    """Forget the callbacks waiting for ``name`` (``autolog(disable=True)`` before the import)."""
    with _lock:
        _callbacks.pop(name, None)
