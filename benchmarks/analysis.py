"""Experiment analysis end to end: liftkit against one hand-written DuckDB query and pandas.

Workload (the issue's): 10M users exposed 50/50 to experiment ``bench``, 50M events
(``page_view``, ``purchase`` with revenue) in liftkit's embedded event store, three metrics:
purchase (proportion), revenue (mean) and revenue per view (ratio). Every method computes the
same per-variation sufficient statistics — n, Σpurchased, Σrevenue, Σrevenue², Σviews, Σviews²,
Σrevenue·views — over each unit's events from its first exposure to the analysis end, with
units seen in two variations excluded (and counted):

- ``handwritten``: one DuckDB query over the file, as an analyst would write it (the ceiling);
- ``pandas``: the needed columns read into DataFrames, then merge / filter / groupby;
- ``liftkit``: ``liftkit.analysis.run(platform, "bench")`` with fact table, metrics and
  experiment saved in the registry (setup is not timed).

Each run of each method is its own process, so peak RSS is per method; runs are interleaved
(round-robin) so every method sees the same machine load. Before any ratio is printed the
methods' statistics must agree (counts exactly, sums to a relative 1e-9). The data are generated
once into ``--data-dir`` (seeded numpy, see ``_analysis_data.py``) and reused.

    .venv/bin/python benchmarks/analysis.py                                  # 10M users, 50M events
    .venv/bin/python benchmarks/analysis.py --users 100000 --events 500000   # smoke test
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

try:
    import _analysis_data as data
except ImportError:  # imported as a module from elsewhere
    sys.path.insert(0, str(Path(__file__).parent))
    import _analysis_data as data

METHODS = ("handwritten", "pandas", "liftkit")
#: Canonical statistics of one variation; counts must match exactly, sums to RTOL.
COUNTS = ("n", "purchase_sum", "views_sum", "views_sum_squares")
SUMS = ("revenue_sum", "revenue_sum_squares", "revenue_views_sum")
RTOL = 1e-9
END = "2026-01-15 00:00:00"  # data.ANALYSIS_END as a naive UTC TIMESTAMP (the store's type)

#: Canonical statistics: {"excluded": units in two variations, "variations": {"0": {...}, ...}}.
Stats = dict[str, Any]

HANDWRITTEN_SQL = f"""
WITH units AS (
    SELECT hash_value AS unit,
           CASE WHEN MIN(variation_id) = MAX(variation_id) THEN MIN(variation_id) END
               AS variation,
           MIN(timestamp) AS first_exposure
    FROM exposures
    WHERE experiment_key = '{data.EXPERIMENT}'
    GROUP BY hash_value
),
per_unit AS (
    SELECT u.variation,
           MAX(CASE WHEN e.name = 'purchase' THEN 1 ELSE 0 END) AS purchased,
           COALESCE(SUM(e.value) FILTER (WHERE e.name = 'purchase'), 0) AS revenue,
           COUNT(*) FILTER (WHERE e.name = 'page_view') AS views
    FROM units u
    LEFT JOIN events e
           ON e.user_id = u.unit
          AND e.timestamp >= u.first_exposure
          AND e.timestamp < TIMESTAMP '{END}'
    GROUP BY u.unit, u.variation
)
SELECT variation, COUNT(*) AS n, SUM(purchased), SUM(revenue), SUM(revenue * revenue),
       SUM(views), SUM(views * views), SUM(revenue * views)
FROM per_unit
GROUP BY variation
ORDER BY variation NULLS LAST
"""


# -- the three methods (each runs in its own child process) ------------------------------------


def _connect(path: Path, threads: int) -> Any:
    import duckdb

    con = duckdb.connect(str(path), read_only=True, config={"threads": threads})
    con.execute("SET enable_progress_bar = false")
    return con


def run_handwritten(data_dir: Path, threads: int) -> tuple[float, Stats]:
    """The ceiling: one query, the way a competent analyst writes it."""
    start = time.perf_counter()
    with _connect(data_dir / "events.duckdb", threads) as con:
        rows = con.execute(HANDWRITTEN_SQL).fetchall()
    seconds = time.perf_counter() - start
    stats: Stats = {"excluded": 0, "variations": {}}
    for variation, *values in rows:
        if variation is None:  # units seen in more than one variation
            stats["excluded"] = int(values[0])
            continue
        n, purchased, revenue, revenue2, views, views2, product = values
        stats["variations"][str(variation)] = {
            "n": int(n),
            "purchase_sum": int(purchased),
            "revenue_sum": float(revenue),
            "revenue_sum_squares": float(revenue2),
            "views_sum": int(views),
            "views_sum_squares": int(views2),
            "revenue_views_sum": float(product),
        }
    return seconds, stats


def run_pandas(data_dir: Path, threads: int) -> tuple[float, Stats]:
    """The dataframe route: read the columns, then do every step in pandas.

    Written to be fast, not naive, so the comparison flatters no one: columns come through
    Arrow (``.df()`` builds 100M Python strings: 4× slower to read, 14 GB instead of 10), events
    are cut to the window before the 50M-row merge, and ``n`` comes from the units, so units
    without events need no reindex (their zeros add nothing to any sum).
    """
    import pandas as pd

    start = time.perf_counter()
    with _connect(data_dir / "events.duckdb", threads) as con:
        exposures = (
            con.sql("SELECT experiment_key, hash_value, variation_id, timestamp FROM exposures")
            .to_arrow_table()
            .to_pandas()
        )
        events = con.sql("SELECT user_id, timestamp, name, value FROM events").to_arrow_table()
        events = events.to_pandas()
    exposures = exposures[exposures["experiment_key"] == data.EXPERIMENT]
    units = exposures.groupby("hash_value", sort=False).agg(
        variation=("variation_id", "min"),
        high=("variation_id", "max"),
        first_exposure=("timestamp", "min"),
    )
    mixed = units["variation"] != units["high"]
    excluded = int(mixed.sum())
    units = units[~mixed]
    n = units["variation"].value_counts()

    in_window = (events["timestamp"] >= units["first_exposure"].min()) & (
        events["timestamp"] < pd.Timestamp(END)
    )
    joined = events[in_window].merge(
        units[["variation", "first_exposure"]], left_on="user_id", right_index=True
    )
    joined = joined[joined["timestamp"] >= joined["first_exposure"]]
    purchase = joined["name"] == "purchase"
    per_unit = (
        pd.DataFrame(
            {
                "variation": joined["variation"],
                "unit": joined["user_id"],
                "purchased": purchase.astype("int64"),
                "revenue": joined["value"].where(purchase, 0.0),
                "views": (joined["name"] == "page_view").astype("int64"),
            }
        )
        .groupby(["variation", "unit"], sort=False)
        .agg(purchased=("purchased", "max"), revenue=("revenue", "sum"), views=("views", "sum"))
    )
    per_unit["revenue2"] = per_unit["revenue"] ** 2
    per_unit["views2"] = per_unit["views"] ** 2
    per_unit["product"] = per_unit["revenue"] * per_unit["views"]
    sums = per_unit.groupby(level="variation").sum()
    seconds = time.perf_counter() - start
    stats: Stats = {"excluded": excluded, "variations": {}}
    for variation, count in n.items():
        row = sums.loc[variation] if variation in sums.index else dict.fromkeys(sums, 0)
        stats["variations"][str(variation)] = {
            "n": int(count),
            "purchase_sum": int(row["purchased"]),
            "revenue_sum": float(row["revenue"]),
            "revenue_sum_squares": float(row["revenue2"]),
            "views_sum": int(row["views"]),
            "views_sum_squares": int(row["views2"]),
            "revenue_views_sum": float(row["product"]),
        }
    return seconds, stats


#: What liftkit's registry holds for the benchmark (saved before timing, only when changed).
ACTOR = "user:bench@example.com"
REVENUE = {
    "fact_table": "events",
    "column": "value",
    "aggregation": "sum",
    "filters": ["name = 'purchase'"],
}
REGISTRY_OBJECTS: list[tuple[str, dict[str, Any]]] = [
    (
        "fact-tables",
        {
            "key": "events",
            "name": "Events",
            "sql": "SELECT user_id, timestamp, name, value FROM events",
            "columns": [{"name": "value"}, {"name": "name", "datatype": "string"}],
        },
    ),
    (
        "metrics",
        {
            "key": "purchase",
            "name": "Purchase",
            "type": "proportion",
            "numerator": {"fact_table": "events", "filters": ["name = 'purchase'"]},
            "cuped": False,
        },
    ),
    (
        "metrics",
        {"key": "revenue", "name": "Revenue", "type": "mean", "numerator": REVENUE, "cuped": False},
    ),
    (
        "metrics",
        {
            "key": "revenue_per_view",
            "name": "Revenue per view",
            "type": "ratio",
            "numerator": REVENUE,
            "denominator": {
                "fact_table": "events",
                "column": "$$count",
                "aggregation": "sum",
                "filters": ["name = 'page_view'"],
            },
            "cuped": False,
        },
    ),
    (
        "experiments",
        {
            "key": data.EXPERIMENT,
            "name": "Analysis benchmark",
            "status": "running",
            "variations": [{"key": "control"}, {"key": "treatment"}],
            "phases": [{"started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-15T00:00:00Z"}],
            "metrics": {"primary": ["purchase"], "secondary": ["revenue", "revenue_per_view"]},
            # No pre-exposure covariate: the other methods compute none either.
            "analysis": {"cuped": False},
        },
    ),
]
VARIATION_KEYS = ("control", "treatment")
#: Canonical field ← (liftkit metric, names the field may have in ``snapshot.statistics`` rows).
LIFTKIT_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "n": ("purchase", ("n",)),
    "purchase_sum": ("purchase", ("sum",)),
    "revenue_sum": ("revenue", ("sum",)),
    "revenue_sum_squares": ("revenue", ("sum_squares",)),
    "views_sum": ("revenue_per_view", ("denominator_sum",)),
    "views_sum_squares": ("revenue_per_view", ("denominator_sum_squares",)),
    "revenue_views_sum": ("revenue_per_view", ("sum_products", "numerator_denominator_products")),
}
#: Where the snapshot reports the units seen in two variations (dotted attribute path).
LIFTKIT_EXCLUDED = "health.multiple_exposures"


def _platform(data_dir: Path) -> Any:
    """A platform on ``data_dir`` whose registry holds the benchmark's objects."""
    from liftkit.platform import Platform
    from liftkit.registry.collections import collection
    from liftkit.settings import Settings

    platform = Platform(Settings(data_dir=data_dir))
    platform.bootstrap()
    for name, given in REGISTRY_OBJECTS:
        model = collection(name).model
        # Older checkouts have no per-experiment analysis settings: leave them out there.
        body = {k: v for k, v in given.items() if k in model.model_fields}
        wanted = model.model_validate(body).model_dump(mode="json")
        found = platform.registry.find(name, body["key"])
        if found is None or found.model_dump(mode="json") != wanted:
            platform.registry.save(name, body, ACTOR, message="analysis benchmark")
    return platform


def run_liftkit(data_dir: Path, threads: int) -> tuple[float, Stats]:
    """liftkit end to end; raises ``NotAvailable`` until ``liftkit.analysis.run`` exists."""
    try:
        from liftkit.analysis import run  # type: ignore[import-not-found,unused-ignore]
    except ImportError as error:
        raise NotAvailable(f"liftkit.analysis.run cannot be imported ({error})") from error
    platform = _platform(data_dir)
    try:
        start = time.perf_counter()
        snapshot = run(platform, data.EXPERIMENT)
        seconds = time.perf_counter() - start
    finally:
        platform.close()
    return seconds, _from_liftkit(snapshot)


def _from_liftkit(snapshot: Any) -> Stats:
    """Canonical statistics from a snapshot (the overall rows, not the dimension slices)."""
    rows = {}
    for row in snapshot.statistics:
        if row.get("dimension") or row.get("dimension_value"):
            continue
        variation = row["variation"]
        if isinstance(variation, str) and variation in VARIATION_KEYS:
            variation = VARIATION_KEYS.index(variation)
        rows[(row["metric"], str(variation))] = row
    stats: Stats = {"variations": {}}
    for variation in sorted({v for _, v in rows}):
        out: dict[str, Any] = {}
        for field, (metric, names) in LIFTKIT_FIELDS.items():
            row = rows.get((metric, variation), {})
            value = next((row[name] for name in names if name in row), None)
            if value is not None:
                value = float(value)
                out[field] = int(value) if field in COUNTS and value.is_integer() else value
        stats["variations"][variation] = out
    excluded: Any = snapshot
    for name in LIFTKIT_EXCLUDED.split("."):
        excluded = getattr(excluded, name, None)
    if excluded is not None:
        stats["excluded"] = int(excluded)
    return stats


class NotAvailable(Exception):
    """The method cannot run in this checkout (yet)."""


RUNNERS = {"handwritten": run_handwritten, "pandas": run_pandas, "liftkit": run_liftkit}


def child(method: str, data_dir: Path, threads: int) -> dict[str, Any]:
    """One timed run of one method, in this process; its peak RSS is the method's."""
    try:
        seconds, stats = RUNNERS[method](data_dir, threads)
    except NotAvailable as error:
        return {"method": method, "available": False, "reason": str(error)}
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {
        "method": method,
        "available": True,
        "seconds": seconds,
        "peak_rss_mb": peak_kb / 1024,
        "stats": stats,
    }


# -- the driver --------------------------------------------------------------------------------


def spawn(method: str, data_dir: Path, threads: int) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--method",
        method,
        "--data-dir",
        str(data_dir),
        "--threads",
        str(threads),
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:  # report it and go on: the other methods' figures still count
        print(done.stderr.rstrip(), file=sys.stderr)
        return {"method": method, "available": False, "reason": f"failed (exit {done.returncode})"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def disagreements(reference: Stats, other: Stats) -> list[str]:
    """Where ``other`` differs from ``reference`` (fields ``other`` lacks are reported too)."""
    problems = []
    if "excluded" in other and other["excluded"] != reference["excluded"]:
        problems.append(f"excluded units {other['excluded']} ≠ {reference['excluded']}")
    if sorted(other["variations"]) != sorted(reference["variations"]):
        problems.append(f"variations {sorted(other['variations'])}")
    for variation, expected in reference["variations"].items():
        got = other["variations"].get(variation, {})
        for field in COUNTS + SUMS:
            if field not in got:
                problems.append(f"variation {variation}: {field} missing")
            elif field in COUNTS and got[field] != expected[field]:
                problems.append(f"variation {variation}: {field} {got[field]} ≠ {expected[field]}")
            elif field in SUMS and not math.isclose(got[field], expected[field], rel_tol=RTOL):
                problems.append(
                    f"variation {variation}: {field} {got[field]!r} ≠ {expected[field]!r}"
                )
    return problems


def summary(stats: Stats) -> list[str]:
    """The metrics themselves, as a sanity check of the planted effects."""
    lines = [f"  units seen in two variations (excluded): {stats['excluded']:,}"]
    for variation, s in sorted(stats["variations"].items()):
        lines.append(
            f"  variation {variation}: n {s['n']:,}  purchase {s['purchase_sum'] / s['n']:.4%}  "
            f"revenue/user {s['revenue_sum'] / s['n']:.4f}  "
            f"revenue/view {s['revenue_sum'] / s['views_sum']:.5f}  "
            f"views {s['views_sum']:,}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/liftkit-bench-analysis"))
    parser.add_argument(
        "--methods", default=",".join(METHODS), help="comma list of " + ", ".join(METHODS)
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per method")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="DuckDB threads")
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()

    if args.method:
        result = child(args.method, data_dir, args.threads)
        print(json.dumps(result) if args.json else json.dumps(result, indent=2))
        return

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s): {', '.join(unknown)}")
    print(f"{args.users:,} users × {args.events:,} events × 3 metrics in {data_dir}/events.duckdb")
    path, generated = data.ensure(data_dir, data.DataSpec(args.users, args.events))
    size_mb = path.stat().st_size / 1e6
    made = f"generated in {generated:.1f} s" if generated is not None else "cached"
    print(f"  data: {made}, {size_mb:,.0f} MB; DuckDB threads {args.threads}; {args.repeat} runs")

    results: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    missing: dict[str, str] = {}
    for round_ in range(1, args.repeat + 1):
        for method in methods:
            if method in missing:
                continue
            result = spawn(method, data_dir, args.threads)
            if not result["available"]:
                missing[method] = result["reason"]
                print(f"  {method}: not available — {result['reason']}")
                continue
            results[method].append(result)
            print(
                f"  run {round_} {method:<12} {result['seconds']:8.2f} s "
                f"{result['peak_rss_mb']:8,.0f} MB",
                flush=True,
            )
    ran = [m for m in methods if results[m]]
    if not ran:
        return

    # Correctness first: every method's statistics against the first one's.
    reference_method = ran[0]
    reference = results[reference_method][0]["stats"]
    print()
    for line in summary(reference):
        print(line)
    agree = True
    for method in ran:
        for result in results[method]:
            problems = disagreements(reference, result["stats"])
            if problems:
                agree = False
                print(f"  ✗ {method} disagrees with {reference_method}: " + "; ".join(problems))
                break
    if len(ran) > 1 and agree:
        print(f"  ✓ {', '.join(ran)} agree (counts exactly, sums to rtol {RTOL:g}) on every run")

    best = {m: min(r["seconds"] for r in results[m]) for m in ran}
    print()
    print(
        f"{'method':<12} {'best s':>8} {'median s':>9} {'peak RSS MB':>12} "
        f"{'÷ handwritten':>14} {'pandas ÷ it':>12}"
    )
    for method in ran:
        times = [r["seconds"] for r in results[method]]
        rss = max(r["peak_rss_mb"] for r in results[method])
        ratio = f"{best[method] / best['handwritten']:.2f}×" if "handwritten" in best else "—"
        speedup = f"{best['pandas'] / best[method]:.1f}×" if "pandas" in best else "—"
        print(
            f"{method:<12} {best[method]:>8.2f} {statistics.median(times):>9.2f} "
            f"{rss:>12,.0f} {ratio:>14} {speedup:>12}"
        )
    if "liftkit" in best and "handwritten" in best and "pandas" in best:
        ratio = best["liftkit"] / best["handwritten"]
        speedup = best["pandas"] / best["liftkit"]
        print(
            f"targets: liftkit ≤ 1.3× handwritten ({ratio:.2f}×: "
            f"{'met' if ratio <= 1.3 else 'NOT met'}), ≥ 5× faster than pandas "
            f"({speedup:.1f}×: {'met' if speedup >= 5 else 'NOT met'})"
        )
    if not agree:
        sys.exit(1)


if __name__ == "__main__":
    main()
