"""What each autologging integration was last configured with, and whether it is on.

``evtrack.sklearn.autolog(log_models=False, silent=True)`` stores its arguments
here under the integration's name (``"sklearn"``); the patched ``fit`` reads them
on every call, so a second ``autolog(...)`` call reconfigures without re-patching
semantics changing under a running fit. ``disable_autologging()`` turns every
integration off for a block (as MLflow's ``mlflow.utils.autologging_utils``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_configs: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()
_disabled_depth = 0  # process-wide, as MLflow: worker threads of a disabled call stay quiet too


def set_config(integration: str, config: dict[str, Any]) -> None:
    """Record the arguments ``integration``'s ``autolog`` was called with (replacing earlier ones)."""
    with _lock:
        _configs[integration] = dict(config)


def get_config(integration: str, key: str, default: Any = None) -> Any:
    """One argument of ``integration``'s last ``autolog`` call, or ``default`` if never configured."""
    return _configs.get(integration, {}).get(key, default)


def is_configured(integration: str) -> bool:
    """Whether ``integration``'s ``autolog`` has been called in this process."""
    return integration in _configs


def is_disabled(integration: str) -> bool:
    """Whether ``integration`` logs nothing now: never enabled, ``disable=True``, or inside ``disable_autologging()``."""
    if _disabled_depth:
        return True
    return get_config(integration, "disable", True)


def configured_integrations() -> list[str]:
    """The integrations whose ``autolog`` has been called, enabled or not."""
    return sorted(_configs)


@contextlib.contextmanager
def disable_autologging() -> Iterator[None]:
    """Within this block, no autologging integration logs anything (process-wide, as MLflow's)."""
    global _disabled_depth
    with _lock:
        _disabled_depth += 1
    try:
        yield
    finally:
        with _lock:
            _disabled_depth -= 1


def reset() -> None:
    """Forget every integration's configuration (tests; patches are reverted by ``patching.revert_all``)."""
    with _lock:
        _configs.clear()
