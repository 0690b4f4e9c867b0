"""The sampler interface: one group of system readings, averaged over the samples before logging."""

from __future__ import annotations

from collections import defaultdict


class Sampler:
    """A group of system metrics (names without the ``system/`` prefix, as MLflow's monitors).

    ``sample()`` takes one reading of every metric of the group; ``aggregate()`` is what is
    logged after ``samples_before_logging`` readings (the mean, rounded to 0.1, as MLflow);
    ``clear()`` starts the next round. ``prime()`` runs once on the sampling thread before the
    first reading, ``close()`` once after the last.
    """

    name = "sampler"

    def __init__(self) -> None:
        self._readings: defaultdict[str, list[float]] = defaultdict(list)

    def prime(self) -> None:
        """Prepare readings that are measured between two calls (CPU utilization)."""

    def sample(self) -> None:
        """Take one reading of every metric of the group."""
        raise NotImplementedError

    def record(self, key: str, value: float) -> None:
        """Keep one reading of metric ``key``."""
        self._readings[key].append(float(value))

    def aggregate(self) -> dict[str, float]:
        """The mean of each metric's readings since the last ``clear()``, rounded to 0.1."""
        return {key: round(sum(values) / len(values), 1) for key, values in self._readings.items() if values}

    def clear(self) -> None:
        """Forget the readings (after they have been logged)."""
        self._readings.clear()

    def close(self) -> None:
        """Release what the sampler holds (a GPU library handle)."""
