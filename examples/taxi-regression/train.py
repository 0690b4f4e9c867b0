"""Elastic-net regression of NYC taxi trip durations (synthetic trips), with numpy only.

Run it through the project (``evtrack run examples/taxi-regression -P alpha=0.5``) or
directly (``python train.py --alpha 0.5``): ``evtrack.start_run()`` joins the run that
``evtrack run`` created (through ``EVTRACK_RUN_ID``), or starts a new one.
"""

from __future__ import annotations

import argparse

import numpy as np

import evtrack


def make_trips(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (distance km, hour of day, passengers) and trip duration in minutes."""
    rng = np.random.default_rng(seed)
    distance = rng.gamma(2.0, 1.8, n)
    hour = rng.integers(0, 24, n).astype(float)
    passengers = rng.integers(1, 5, n).astype(float)
    rush = ((hour >= 7) & (hour <= 9)) | ((hour >= 16) & (hour <= 19))
    duration = 3.0 + 2.6 * distance + 4.0 * rush + 0.2 * passengers + rng.normal(0, 2.0, n)
    features = np.column_stack([distance, hour, passengers, rush.astype(float)])
    return features, duration


def train(x: np.ndarray, y: np.ndarray, alpha: float, l1_ratio: float, epochs: int,
          fail_after: int | None) -> np.ndarray:
    """Full-batch (sub)gradient descent on the elastic-net loss; logs train RMSE every epoch."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-12
    xs = np.column_stack([np.ones(len(x)), (x - mean) / std])
    w = np.zeros(xs.shape[1])
    for epoch in range(epochs):
        if fail_after is not None and epoch >= fail_after:
            raise RuntimeError(f"failing on purpose at epoch {epoch}")
        residual = xs @ w - y
        grad = xs.T @ residual / len(y)
        penalty = alpha * (l1_ratio * np.sign(w) + (1 - l1_ratio) * w)
        penalty[0] = 0.0  # no penalty on the intercept
        w -= 0.1 * (grad + penalty)
        evtrack.log_metric("train_rmse", float(np.sqrt(np.mean(residual ** 2))), step=epoch)
    return w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--l1-ratio", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--n-trips", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--fail-after", type=int, default=None)
    args = parser.parse_args()

    x, y = make_trips(args.n_trips, args.seed)
    split = int(0.8 * len(y))
    with evtrack.start_run():
        evtrack.log_input(evtrack.data.from_numpy(x[:split], targets=y[:split], name="taxi-trips-train"),
                          context="training")
        w = train(x[:split], y[:split], args.alpha, args.l1_ratio, args.epochs, args.fail_after)
        mean, std = x[:split].mean(axis=0), x[:split].std(axis=0) + 1e-12
        pred = np.column_stack([np.ones(len(y) - split), (x[split:] - mean) / std]) @ w
        rmse = float(np.sqrt(np.mean((pred - y[split:]) ** 2)))
        evtrack.log_metrics({"rmse": rmse, "mae": float(np.mean(np.abs(pred - y[split:])))})
        print(f"alpha={args.alpha} l1_ratio={args.l1_ratio}: test rmse {rmse:.3f}")


if __name__ == "__main__":
    main()
