"""``evtrack.autolog()``: autologging for every library evtrack has an integration for.

=============  ========================  =====================================
library        integration               what a fit logs
=============  ========================  =====================================
scikit-learn   ``evtrack.sklearn``       ``evtrack.sklearn.autologging``
=============  ========================  =====================================

A library imported already is patched at once; one imported later is patched
right after its import (``evtrack.autologging.import_hooks``), so ``autolog()``
never imports a library the program does not use.
"""

from __future__ import annotations

import logging
from typing import Any

from evtrack.autologging import import_hooks

_log = logging.getLogger("evtrack.autologging")

# library module → the evtrack integration that logs its fits
_LIBRARIES = {"sklearn": "sklearn"}


def _turn_on(integration: str, arguments: dict[str, Any]) -> None:
    if integration == "sklearn":
        from evtrack.sklearn.autologging import autolog as sklearn_autolog

        sklearn_autolog(**arguments)


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: dict[str, Any] | None = None,
    exclude_flavors: list[str] | None = None,
) -> None:
    """Turn autologging on (or off) for every supported library (but ``exclude_flavors``), with
    MLflow's common arguments."""
    arguments = {k: v for k, v in locals().items() if k != "exclude_flavors"}
    for module, integration in _LIBRARIES.items():
        if integration in (exclude_flavors or ()):
            continue
        import_hooks.cancel(module)

        def turn_on(_module: Any, integration: str = integration) -> None:
            _turn_on(integration, arguments)

        if disable:
            from evtrack.autologging import config

            if config.is_configured(integration):
                _turn_on(integration, arguments)
            continue
        import_hooks.when_imported(module, turn_on)
