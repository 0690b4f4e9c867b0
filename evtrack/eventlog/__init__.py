"""The event log: event types and their wire format, the writer that appends them to the inbox,
the spool that keeps unsent segments, the catalog's put-if-absent claims, and the validation
of what may be logged. Imports only ``evtrack.errors``, ``evtrack.entities`` and ``evtrack.store``."""
