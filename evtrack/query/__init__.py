"""Query support: MLflow's search filter and order_by grammar (see ``search_grammar``).

Importing this package imports nothing; use ``evtrack.query.search_grammar``.
"""
