"""The model registry: registered models and their numbered versions, as events in the log.

Every registry change is an event (``evtrack.registry.events``) folded by pure
rules (``evtrack.registry.fold``) into single-partition state tables, like
experiments. Names and version numbers are made unique by put-if-absent claims
in the catalog (``evtrack.registry.claims``). The client API is
``evtrack.registry.client.RegistryMixin``, part of ``EvtrackClient``.

This package's ``__init__`` imports nothing: ``evtrack.events`` and
``evtrack.fold`` import its submodules while they initialise.
"""
