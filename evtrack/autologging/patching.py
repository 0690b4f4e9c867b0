"""Patching a library's functions for autologging, safely: the user's call always runs as written.

``safe_patch(integration, owner, name, patch)`` replaces ``owner.name`` with a
wrapper that calls ``patch(original, *args, **kwargs)``. The rules, as MLflow's:

- an exception raised by ``original`` (the user's training failed) propagates
  unchanged; an exception raised by the autologging code around it is caught,
  logged as one warning naming the integration, and ``original``'s result is
  returned (or ``original`` is called, if the patch failed before calling it);
- while the integration is disabled (``disable=True``, ``disable_autologging()``,
  or ``exclusive=True`` with a run the user started), only ``original`` runs;
- with ``manage_run=True`` and no active run, a run is started for the call
  (tagged ``mlflow.autologging=<integration>`` plus ``extra_tags``) and ended
  FINISHED, or FAILED if the call raised — except in a worker thread of a fit
  already being logged, which logs nothing;
- with ``silent=True``, the autologging code's warnings and log records are
  hidden; the library's own warnings during ``original`` still show.

Descriptors are patched so that ``hasattr`` keeps its answer: a ``property``
becomes a property, and scikit-learn's ``available_if`` descriptors get their
wrapped ``fn`` patched, so ``hasattr(SVC(), "predict_proba")`` stays False.
``revert(integration)`` restores every attribute it patched.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from evtrack.autologging import config
from evtrack.tracking import fluent

AUTOLOGGING_TAG = "mlflow.autologging"
_log = logging.getLogger("evtrack.autologging")
_MISSING = object()


@dataclass
class _Patch:
    owner: Any
    name: str
    previous: Any  # the owner's own attribute before patching, or _MISSING if it inherited it


_patches: dict[str, list[_Patch]] = {}
_patch_lock = threading.Lock()


class TrainingSession:
    """The stack of fits being logged (process-wide, as MLflow's), for nested ``fit`` calls.

    A fit inside another one (a Pipeline fitting its steps, a search fitting its
    candidates) logs only when every enclosing session allows children and no
    enclosing session is fitting the same estimator (``super().fit()``).
    """

    _stack: list["TrainingSession"] = []

    def __init__(self, estimator: Any, allow_children: bool = True) -> None:
        self.estimator = estimator
        self.allow_children = allow_children
        self._parent: TrainingSession | None = None

    def __enter__(self) -> "TrainingSession":
        if TrainingSession._stack:
            self._parent = TrainingSession._stack[-1]
            self.allow_children = self._parent.allow_children and self.allow_children
        TrainingSession._stack.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        TrainingSession._stack.remove(self)

    def should_log(self) -> bool:
        """Whether this fit is the one to log (see the class docstring)."""
        for session in TrainingSession._stack:
            if session is self:
                break
            if session.estimator is self.estimator:
                return False
        return self._parent is None or self._parent.allow_children

    @staticmethod
    def is_active() -> bool:
        """Whether any fit is being logged right now."""
        return bool(TrainingSession._stack)


def _evtrack_loggers() -> list[logging.Logger]:
    names = [n for n in logging.Logger.manager.loggerDict if n == "evtrack" or n.startswith("evtrack.")]
    return [logging.getLogger(n) for n in names]


@contextlib.contextmanager
def _set_logging(disabled: bool) -> Iterator[None]:
    loggers = _evtrack_loggers()
    saved = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = disabled
    try:
        yield
    finally:
        for lg, was in zip(loggers, saved):
            lg.disabled = was


@contextlib.contextmanager
def _quiet(silent: bool) -> Iterator[None]:
    """Hide warnings and evtrack's log records while autologging code runs (``silent=True``)."""
    if not silent:
        yield
        return
    with warnings.catch_warnings(), _set_logging(True):
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _loud(filters: list[Any], silent: bool) -> Iterator[None]:
    """Restore the user's warning filters and evtrack's logging while the original function runs."""
    if not silent:
        yield
        return
    saved_filters = warnings.filters[:]
    warnings.filters[:] = filters
    try:
        with _set_logging(False):
            yield
    finally:
        warnings.filters[:] = saved_filters


def _managed(integration: str, patch: Callable[..., Any], extra_tags: dict[str, Any] | None) -> Callable[..., Any]:
    """``patch`` run inside a run of its own when none is active (see the module docstring)."""

    def run_managed(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        run = None
        if fluent.active_run() is None and not TrainingSession.is_active():
            tags = {**(extra_tags or {}), AUTOLOGGING_TAG: integration}
            run = fluent.start_run(tags=tags)
            _log.info("Created an autologging run %s for this %s fit", run.info.run_id, integration)
        try:
            result = patch(original, *args, **kwargs)
        except BaseException:
            if run is not None:
                fluent.end_run("FAILED")
            raise
        if run is not None:
            fluent.end_run("FINISHED")
        return result

    return run_managed


def _should_skip(integration: str, user_run_active: bool) -> bool:
    if config.is_disabled(integration):
        return True
    return user_run_active and bool(config.get_config(integration, "exclusive", False))


def _safe(integration: str, original: Callable[..., Any], patch: Callable[..., Any]) -> Callable[..., Any]:
    """The wrapper installed in place of ``original`` (see the module docstring)."""

    def patched(*args: Any, **kwargs: Any) -> Any:
        user_run_active = fluent.active_run() is not None and not _Session.active()
        if _should_skip(integration, user_run_active):
            return original(*args, **kwargs)
        silent = bool(config.get_config(integration, "silent", False))
        user_filters = warnings.filters[:]
        state = {"called": False, "failed": False, "result": None}

        def call_original(*og_args: Any, **og_kwargs: Any) -> Any:
            state["called"] = True
            try:
                with _loud(user_filters, silent):
                    state["result"] = original(*og_args, **og_kwargs)
            except BaseException:
                state["failed"] = True
                raise
            return state["result"]

        functools.update_wrapper(call_original, original)
        with _Session(), _quiet(silent):
            try:
                patch(call_original, *args, **kwargs)
            except BaseException as exc:
                if state["failed"] or not isinstance(exc, Exception):
                    raise
                _log.warning("Encountered unexpected error during %s autologging: %s", integration, exc)
        if state["called"]:
            return state["result"]
        return original(*args, **kwargs)

    return patched


class _Session:
    """Marks the code of an autologging call, so runs it starts are not taken for the user's."""

    _depth = threading.local()

    def __enter__(self) -> "_Session":
        _Session._depth.value = getattr(_Session._depth, "value", 0) + 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        _Session._depth.value -= 1

    @staticmethod
    def active() -> bool:
        return getattr(_Session._depth, "value", 0) > 0


def _record(integration: str, owner: Any, name: str, value: Any) -> None:
    previous = owner.__dict__.get(name, _MISSING) if hasattr(owner, "__dict__") else getattr(owner, name)
    with _patch_lock:
        _patches.setdefault(integration, []).append(_Patch(owner, name, previous))
    setattr(owner, name, value)


def safe_patch(
    integration: str,
    owner: Any,
    name: str,
    patch: Callable[..., Any],
    manage_run: bool = False,
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Replace ``owner.name`` (a function, method, property or ``available_if``) with a safe wrapper of ``patch``."""
    raw = inspect.getattr_static(owner, name)
    if manage_run:
        patch = _managed(integration, patch, extra_tags)
    if isinstance(raw, property):
        getter = raw.fget

        def get_patched(self: Any) -> Callable[..., Any]:
            getter(self)  # keeps hasattr's answer: raises AttributeError where the original would

            def original(*args: Any, **kwargs: Any) -> Any:
                return getter(self)(*args, **kwargs)

            return functools.partial(_safe(integration, lambda _self, *a, **k: original(*a, **k), patch), self)

        _record(integration, owner, name, property(functools.wraps(getter)(get_patched)))
        return
    if hasattr(raw, "fn") and hasattr(raw, "check"):  # scikit-learn's available_if descriptor
        _record(integration, raw, "fn", functools.wraps(raw.fn)(_safe(integration, raw.fn, patch)))
        return
    if isinstance(raw, (staticmethod, classmethod)):
        raise TypeError(f"cannot autolog-patch {owner!r}.{name}: static and class methods are not supported")
    original = getattr(owner, name) if inspect.ismodule(owner) or not inspect.isclass(owner) else raw
    # a method inherited from a class patched already: wrap the library's function, not that wrapper
    original = getattr(original, "_evtrack_original", original)
    wrapper = functools.wraps(original)(_safe(integration, original, patch))
    wrapper._evtrack_original = original  # type: ignore[attr-defined]
    _record(integration, owner, name, wrapper)


def patched_attributes(integration: str) -> int:
    """How many attributes ``integration`` has patched (0 after ``revert``)."""
    return len(_patches.get(integration, []))


def revert(integration: str) -> None:
    """Restore every attribute ``integration`` patched, newest first."""
    with _patch_lock:
        patches = _patches.pop(integration, [])
    for p in reversed(patches):
        if p.previous is _MISSING:
            with contextlib.suppress(AttributeError):
                delattr(p.owner, p.name)
        else:
            setattr(p.owner, p.name, p.previous)


def revert_all() -> None:
    """Restore everything every integration patched (``evtrack.autolog(disable=True)``, tests)."""
    for integration in list(_patches):
        revert(integration)
