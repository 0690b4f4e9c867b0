"""The registry's state domain: registered with the core when ``evtrack.registry`` is imported.

It tells the compactor, the reader and the query engine about the registry's events
(``evtrack.registry.events``), its part of the fold state and its fold rules
(``evtrack.registry.fold``), and its tables and DuckDB views (``evtrack.registry.tables``).
"""

from __future__ import annotations

from evtrack.registry.events import RegistryEvent
from evtrack.registry.fold import REGISTRY_DOMAIN, RegistryState
from evtrack.registry.tables import REGISTRY_COLUMNS, REGISTRY_VIEWS, load_registry, registry_tables
from evtrack.state.domains import Domain, register_domain

DOMAIN = register_domain(
    Domain(
        name=REGISTRY_DOMAIN,
        event_base=RegistryEvent,
        new_part=RegistryState,
        columns=REGISTRY_COLUMNS,
        to_tables=registry_tables,
        load=load_registry,
        views=REGISTRY_VIEWS,
    )
)
