"""Autologging machinery shared by the flavors: configuration, safe patches, import hooks.

A flavor's ``autolog()`` (``evtrack.sklearn.autolog``) records its arguments with
``config.set_config`` and patches its library's training functions with
``patching.safe_patch``; ``evtrack.autolog()`` turns on every flavor whose library
is imported now or later (``import_hooks.when_imported``). The rules a patch keeps
are in ``evtrack.autologging.patching``.
"""

from evtrack.autologging.config import disable_autologging, get_config, is_disabled, set_config
from evtrack.autologging.patching import AUTOLOGGING_TAG, TrainingSession, revert, safe_patch

__all__ = [
    "AUTOLOGGING_TAG",
    "TrainingSession",
    "disable_autologging",
    "get_config",
    "is_disabled",
    "revert",
    "safe_patch",
    "set_config",
]
