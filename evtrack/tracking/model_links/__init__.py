"""Links between MLflow 3's logged models and runs, as events: a model's metrics, a run's model
inputs and outputs (``events``), folded into a state domain of their own (``fold``, registered
with the core when this package is imported) and logged and read by the tracking client
(``client``)."""

from evtrack.tracking.model_links import fold as _fold  # noqa: F401  (registers the model links' domain)
