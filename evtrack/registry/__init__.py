"""The model registry: registered models and their numbered versions, as events in the log.

Every registry change is an event (``evtrack.registry.events``) folded by pure
rules (``evtrack.registry.fold``) into single-partition state tables, like
experiments. Names and version numbers are made unique by put-if-absent claims
in the catalog (``evtrack.registry.claims``). The client API is
``evtrack.registry.client.RegistryClient``, which ``evtrack.MlflowClient`` holds.

Importing the package registers the registry with the core (``evtrack.registry.domain``):
its event types for decoding, its fold rules, its tables and views. The core never
imports this package; ``evtrack/__init__`` does, so every process that uses evtrack has it.
"""

from evtrack.registry import domain as _domain  # noqa: F401  (registers the registry's state domain)
