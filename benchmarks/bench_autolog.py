"""What scikit-learn autologging costs beyond logging the same items by hand (issue 14).

Three ways of fitting the same small estimators (Lasso on the diabetes data, a decision
tree on breast cancer), each inside its own run on a local store, repeated:

  (a) the fit alone, no run (for scale);
  (b) the fit, then by hand what autologging logs: ``get_params`` as params, the
      estimator tags, the training metrics (computed with the same sklearn.metrics
      calls), the model with a signature, ``estimator.html`` and, for the classifier,
      the confusion-matrix plot;
  (c) ``evtrack.sklearn.autolog()`` and the bare fit.

Target: (c) <= 1.10x (b). Medians over the repeats; no timing is asserted.

Usage::

    python benchmarks/bench_autolog.py [--repeats 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Report, machine_line  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    from sklearn.datasets import load_breast_cancer, load_diabetes
    from sklearn.linear_model import Lasso
    from sklearn.tree import DecisionTreeClassifier

    import evtrack
    from evtrack.entities import Metric, Param, RunTag
    from evtrack.models.inference import infer_signature
    from evtrack.sklearn import training_content as content

    store = tempfile.mkdtemp(prefix="evtrack-bench-autolog-")
    evtrack.set_tracking_uri(store)
    X, y = load_diabetes(return_X_y=True)
    Xb, yb = load_breast_cancer(return_X_y=True)
    cases = {
        "Lasso (regressor)": (lambda: Lasso(alpha=0.1), X, y),
        "DecisionTree (classifier)": (lambda: DecisionTreeClassifier(max_depth=4, random_state=0), Xb, yb),
    }

    def by_hand(make, x, y_true) -> None:
        with evtrack.start_run() as run:
            est = make().fit(x, y_true)
            client = run.client
            client.log_batch(
                run.info.run_id,
                params=[Param(k, str(v)) for k, v in est.get_params(deep=True).items()],
                tags=[RunTag(k, v) for k, v in content.estimator_tags(est).items()],
            )
            values = content.estimator_content(
                client, run.info.run_id, est, content.TRAINING_PREFIX, x, y_true, None, None
            )
            ts = int(time.time() * 1000)
            client.log_batch(run.info.run_id, metrics=[Metric(k, float(v), ts, 0) for k, v in values.items()])
            evtrack.log_input(evtrack.data.from_numpy(x, targets=y_true), context="train")
            sig = infer_signature(x[:5], est.predict(x[:5]))
            evtrack.sklearn.log_model(est, name="model", signature=sig, serialization_format="cloudpickle")

    def autologged(make, x, y_true) -> None:
        make().fit(x, y_true)

    def timed(fn) -> float:
        samples = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        return statistics.median(samples) * 1000

    report = Report("scikit-learn autologging vs logging the same items by hand")
    for label, (make, x, y_true) in cases.items():
        bare = timed(lambda: make().fit(x, y_true))
        hand = timed(lambda: by_hand(make, x, y_true))
        evtrack.sklearn.autolog()
        auto = timed(lambda: autologged(make, x, y_true))
        evtrack.sklearn.autolog(disable=True)
        report.add(
            f"{label}: autologged fit",
            auto,
            "ms",
            baseline=hand,
            baseline_name="fit + the same items logged by hand",
            higher_is_better=False,
            target=">= 0.91x",
            note=f"the bare fit: {bare:.1f} ms",
        )
    evtrack.flush()
    report.note(machine_line())
    report.note("ratio = by hand / autologged; >= 0.91x means autologging adds at most 10%")
    report.print()
    report.save(args.json)


if __name__ == "__main__":
    main()
