"""liftkit.stats vs gbstats on the same metrics: equal results, and time per comparison.

Run: .venv/bin/python benchmarks/stats.py [--repeats N]

Scenario 1 is the issue's: 10 metrics × 2 variations (control and one treatment), i.e. 10
comparisons, analysed by gbstats one metric at a time and by liftkit in one vectorised call.
Scenario 2 is the same experiment sliced by 50 dimension values (500 comparisons), which is
what a results page with a dimension drill-down asks for at once. Results must agree to a
relative tolerance of 1e-6 before any time is printed. Times are the best of several
interleaved repeats (the minimum is the least noisy estimate of the cost on a shared machine).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import SampleMeanStatistic

from liftkit.stats import MeanStats, compare_many

TUNING = 5000.0


def make_metrics(n_metrics: int, n_dims: int, seed: int = 0) -> tuple[MeanStats, MeanStats]:
    """Per-variation sufficient statistics drawn from realistic unit-level data."""
    rng = np.random.default_rng(seed)
    shape = (n_metrics, n_dims)
    arms = []
    for lift in (0.0, 0.03):
        n = rng.integers(2000, 6000, shape).astype(float)
        mean = rng.uniform(1.0, 50.0, (n_metrics, 1)) * (1 + lift)
        sd = mean * rng.uniform(0.5, 3.0, (n_metrics, 1))
        xbar = rng.normal(mean, sd / np.sqrt(n))
        ss = sd**2 * rng.chisquare(n - 1) + n * xbar**2
        arms.append(MeanStats(n=n, sum=n * xbar, sum_squares=ss))
    return arms[0], arms[1]


def gbstats_run(
    kind: str, pairs: list[tuple[SampleMeanStatistic, SampleMeanStatistic]]
) -> list[tuple[float, ...]]:
    out = []
    for a, b in pairs:
        if kind == "t-test":
            r = TwoSidedTTest(a, b, FrequentistConfig()).compute_result()
            out.append((r.expected, r.ci[0], r.ci[1], r.p_value))
        elif kind == "sequential":
            r = SequentialTwoSidedTTest(
                a, b, SequentialConfig(sequential_tuning_parameter=TUNING)
            ).compute_result()
            out.append((r.expected, r.ci[0], r.ci[1], r.p_value))
        else:
            r = EffectBayesianABTest(a, b, EffectBayesianConfig()).compute_result()
            out.append((r.expected, r.ci[0], r.ci[1], r.chance_to_win, *r.risk))
    return out


def liftkit_compute(kind: str, a: MeanStats, b: MeanStats) -> object:
    """The timed call: every comparison in one vectorised call."""
    if kind == "t-test":
        return compare_many(a, b)
    if kind == "sequential":
        return compare_many(a, b, sequential_tuning=TUNING)
    return compare_many(a, b, engine="bayesian")


def liftkit_run(kind: str, a: MeanStats, b: MeanStats) -> np.ndarray:
    if kind == "t-test":
        r = compare_many(a, b)
        return np.stack([r.effect, r.ci_low, r.ci_high, r.p_value], axis=-1)  # type: ignore[list-item]
    if kind == "sequential":
        r = compare_many(a, b, sequential_tuning=TUNING)
        return np.stack([r.effect, r.ci_low, r.ci_high, r.p_value], axis=-1)  # type: ignore[list-item]
    r = compare_many(a, b, engine="bayesian")
    return np.stack(
        [r.effect, r.ci_low, r.ci_high, r.chance_to_win, r.risk_control, r.risk_treatment],  # type: ignore[list-item]
        axis=-1,
    )


def best_time(fn: Callable[[], object], min_seconds: float = 0.05) -> float:
    """Seconds per call: loop until ``min_seconds`` have passed, return the mean."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def scenario(n_metrics: int, n_dims: int, repeats: int, gb_sample: int) -> None:
    a, b = make_metrics(n_metrics, n_dims)
    flat = [(i, j) for i in range(n_metrics) for j in range(n_dims)]
    pairs = [
        (
            SampleMeanStatistic(n=int(a.n[i, j]), sum=a.sum[i, j], sum_squares=a.sum_squares[i, j]),  # type: ignore[index]
            SampleMeanStatistic(n=int(b.n[i, j]), sum=b.sum[i, j], sum_squares=b.sum_squares[i, j]),  # type: ignore[index]
        )
        for i, j in flat
    ]
    count = len(pairs)
    print(
        f"\n{n_metrics} metrics × 2 variations × {n_dims} dimension value(s) = {count} comparisons"
    )
    print(f"{'test':<11} {'gbstats / comparison':>21} {'liftkit / comparison':>21} {'ratio':>8}")
    for kind in ("t-test", "sequential", "bayesian"):
        ours = liftkit_run(kind, a, b).reshape(count, -1)
        theirs = np.array(gbstats_run(kind, pairs))
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-12)
        # gbstats' cost per comparison is constant: time a sample of them if there are many.
        sample = pairs[: min(count, gb_sample)]
        gb_times, lk_times = [], []
        for _ in range(repeats):  # interleaved, so both see the same machine load
            gb_times.append(best_time(lambda k=kind, s=sample: gbstats_run(k, s)) / len(sample))
            lk_times.append(best_time(lambda k=kind: liftkit_compute(k, a, b)) / count)
        gb, lk = min(gb_times), min(lk_times)
        print(f"{kind:<11} {gb * 1e6:>18.1f} µs {lk * 1e6:>18.2f} µs {gb / lk:>7.0f}×")


def main() -> None:
    # gbstats warns (exp overflow, truncnorm moments) on some inputs; it is the peer here.
    warnings.simplefilter("ignore", RuntimeWarning)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print("liftkit.stats vs gbstats: results agree to rtol 1e-6 (checked before timing)")
    scenario(10, 1, args.repeats, gb_sample=10)
    scenario(10, 50, args.repeats, gb_sample=20)


if __name__ == "__main__":
    main()
