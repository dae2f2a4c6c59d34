"""``chimera-nb demo``: a first distributed fit, end to end, in about ten seconds.

Starts local worker processes, trains a linear regression with the parameter server and a
bagged tree classifier with the aggregation master on the wine-quality data, prints each
beside scikit-learn's one-machine result, summarizes per-worker latency from
``chimera_time.log`` and writes the loss and latency charts as PNG files.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import BaggingClassifier
from sklearn.linear_model import LinearRegression
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from ._exceptions import DatasetError
from .cluster import LocalCluster
from .datasets import load_sklearn_dataset, load_wine_quality, wine_quality_available_offline
from .logs import read_time_log
from .masters import AggregationMaster, ParameterServerMaster, StepEvent
from .plots import plot_latency, plot_latency_over_rounds, plot_loss
from .workers import ClassificationWorker, SGDWorker

__all__ = ["main"]


def _datasets(offline: bool) -> tuple[str, tuple, tuple]:
    """(name, regression X/y, classification X/y): wine quality, else scikit-learn's sets.

    ``offline`` forbids a download, not wine quality: a source checkout reads the copy in
    ``data/`` and an installed kit its cache, so the numbers match an online run. Only an
    installed kit that never downloaded the data falls back to the bundled sets, saying so.
    """
    if offline and not wine_quality_available_offline():
        print(
            "  (--offline: wine quality is neither in a data/ folder beside the kit nor in the "
            "cache; run the demo once without --offline to download and cache it)"
        )
    else:
        try:
            X, y = load_wine_quality(return_X_y=True)
            return "UCI wine quality (red + white)", (X, y.astype(float)), (X, y)
        except DatasetError as error:
            print(f"  (wine quality unavailable: {str(error).splitlines()[0]})")
    X, y = load_sklearn_dataset("diabetes", return_X_y=True)
    Xc, yc = load_sklearn_dataset("wine", return_X_y=True)
    return "scikit-learn's bundled diabetes and wine data (offline)", (X, y), (Xc, yc)


def _progress(n_rounds: int):
    """An event subscriber printing one line every few rounds."""
    every = max(1, n_rounds // 10)

    def on_event(event: StepEvent) -> None:
        if event.step == "J" and (event.round_number % every == 0 or event.round_number == 1):
            print(f"  round {event.round_number:4d}  loss {event.detail['loss']:.4f}", flush=True)

    return on_event


def _latency_summary(run_dir: Path) -> pd.DataFrame:
    calls = read_time_log(run_dir)
    calls = calls[calls["status"] == "200"]
    return (
        calls.groupby(["endpoint", "worker"])["latency_ms"]
        .describe(percentiles=[0.5, 0.95])[["count", "50%", "95%", "max"]]
        .rename(columns={"50%": "median ms", "95%": "p95 ms", "max": "max ms"})
        .astype({"count": int})
    )


def main(
    *,
    n_workers: int = 3,
    max_iter: int = 200,
    output: Path = Path("demo-output"),
    offline: bool = False,
) -> None:
    output = Path(output)
    for run_dir in ("sgd-run", "bagging-run"):  # fresh logs: a re-run must not append
        shutil.rmtree(output / run_dir, ignore_errors=True)
    output.mkdir(parents=True, exist_ok=True)
    name, (X, y), (Xc, yc) = _datasets(offline)
    print(f"Dataset: {name}, {len(X)} rows, {X.shape[1]} features")

    # 1. Data parallelism: parameter-server gradient descent on shards of the training set.
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    print(f"\n1. Parameter server: linear regression on {n_workers} local workers")
    started = time.perf_counter()
    with LocalCluster.from_shards(
        SGDWorker("regressor"),
        X_train,
        y_train,
        n_workers=n_workers,
        method="random",
        random_state=0,
        name="demo-sgd",
        run_dir=output / "sgd-run",
    ) as cluster:
        print(f"  {cluster!r} ready in {time.perf_counter() - started:.2f} s")
        master = ParameterServerMaster("regressor", max_iter=max_iter)
        master.events.subscribe(_progress(max_iter))
        started = time.perf_counter()
        master.fit(cluster)
        elapsed = time.perf_counter() - started
    one_machine = LinearRegression().fit(X_train, y_train)
    print(
        f"  {len(master.history_)} rounds in {elapsed:.2f} s "
        f"({1e3 * elapsed / len(master.history_):.1f} ms per round)"
    )
    print(
        f"  test R^2: distributed {r2_score(y_test, master.predict(X_test)):.4f}   "
        f"scikit-learn LinearRegression {r2_score(y_test, one_machine.predict(X_test)):.4f}"
    )

    # 2. Model parallelism: bagging of trees, each worker bootstraps the same data.
    Xc_train, Xc_test, yc_train, yc_test = train_test_split(Xc, yc, test_size=0.2, random_state=0)
    tree = DecisionTreeClassifier(max_depth=10)
    print(
        f"\n2. Aggregation master: bagging {n_workers} trees (bootstrap, soft vote over "
        f"{len(np.unique(yc))} classes)"
    )
    workers = [
        ClassificationWorker(tree, bootstrap=True).with_data(Xc_train, yc_train)
        for _ in range(n_workers)
    ]
    with LocalCluster(workers, name="demo-bagging", run_dir=output / "bagging-run") as cluster:
        bagging = AggregationMaster(random_state=0).fit(cluster)
        accuracy = accuracy_score(yc_test, bagging.predict(Xc_test).astype(yc_test.dtype))
    reference = BaggingClassifier(tree, n_estimators=n_workers, random_state=0).fit(
        Xc_train, yc_train
    )
    print(
        f"  test accuracy: distributed {accuracy:.4f}   scikit-learn BaggingClassifier "
        f"{accuracy_score(yc_test, reference.predict(Xc_test)):.4f}"
    )

    # 3. What the time log says, and the charts.
    print("\n3. Per-worker latency (from chimera_time.log)")
    print(_latency_summary(output / "sgd-run").round(2).to_string())
    time_log = read_time_log(output / "sgd-run")
    charts = {
        "loss.png": plot_loss(
            master.loss_curve_,
            title="Parameter server: loss per round",
            # half the MSE of standardized targets is (1 - R^2) / 2 at the one-machine optimum
            reference=(1 - r2_score(y_train, one_machine.predict(X_train))) / 2,
        ),
        "latency.png": plot_latency(time_log),
        "latency_over_rounds.png": plot_latency_over_rounds(time_log),
    }
    for filename, figure in charts.items():
        figure.savefig(output / filename, dpi=110)
    print(f"\nCharts written to {output.resolve()}: {', '.join(charts)}")
