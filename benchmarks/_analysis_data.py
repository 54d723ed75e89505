"""Synthetic experiment data for ``benchmarks/analysis.py``, in liftkit's own event store layout.

The file is ``<data_dir>/events.duckdb`` with the ``exposures`` and ``events`` tables that
``DuckDBStore`` creates (its DDL, not a copy of it, so the benchmark reads what liftkit reads).
Every random number comes from one numpy generator with a fixed seed, so the same sizes give the
same file on any machine. Generation (≈ 25 s at full size) is kept out of the timed part by
caching: a manifest beside the file records what it holds, and a file is reused when the
manifest matches.

What is planted, beyond the issue's shape (one 50/50 exposure per user, 10 % purchases):

- 2 % of users are exposed a second time in the same variation, at an independent time (so
  ``MIN(timestamp)`` matters), and 0.1 % a second time in the *other* variation (so the
  "seen in two variations" exclusion is exercised and its count can be compared);
- events run from 2025-12-25 to 2026-01-16, one day past the analysis end, so both the
  ``timestamp >= first_exposure`` and the ``timestamp < analysis_end`` bounds drop rows;
- treatment lifts the purchase rate from 10 % to 10.3 % and revenue per purchase by 2 %.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from liftkit.events.duckdb_store import DuckDBStore

#: Bump when the generator changes, so cached files made by an older one are rebuilt.
VERSION = 1
SEED = 20260115
EXPERIMENT = "bench"
EXPOSURE_START = datetime(2026, 1, 1, tzinfo=UTC)
ANALYSIS_END = datetime(2026, 1, 15, tzinfo=UTC)
EVENT_START = datetime(2025, 12, 25, tzinfo=UTC)
EVENT_END = datetime(2026, 1, 16, tzinfo=UTC)
REPEAT_SHARE = 0.02
CONFLICT_SHARE = 0.001
PURCHASE_RATE = (0.10, 0.103)
REVENUE_LIFT = (1.0, 1.02)
COUNTRIES = ("US", "GB", "DE", "NZ", "BR")
#: Events are generated and inserted this many at a time (fixed: it is part of the sequence of
#: random draws, so changing it changes the data).
CHUNK = 5_000_000
MANIFEST = "bench-data.json"


@dataclass(frozen=True)
class DataSpec:
    users: int
    events: int
    seed: int = SEED
    version: int = VERSION


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def ensure(data_dir: Path, spec: DataSpec) -> tuple[Path, float | None]:
    """The store file for ``spec``, generated unless a matching one is cached.

    Returns the path and the generation time in seconds (None when the cache was reused).
    """
    path = data_dir / "events.duckdb"
    manifest = data_dir / MANIFEST
    cached = manifest.exists() and json.loads(manifest.read_text()) == asdict(spec)
    if cached and path.exists():
        return path, None
    data_dir.mkdir(parents=True, exist_ok=True)
    manifest.unlink(missing_ok=True)
    partial = data_dir / "events.duckdb.partial"
    for stale in (partial, partial.with_name(partial.name + ".wal")):
        stale.unlink(missing_ok=True)
    start = time.perf_counter()
    _generate(partial, spec)
    seconds = time.perf_counter() - start
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    shutil.move(partial, path)
    manifest.write_text(json.dumps(asdict(spec)))
    return path, seconds


def _generate(path: Path, spec: DataSpec) -> None:
    DuckDBStore(path)  # creates liftkit's tables, exactly as the server would
    rng = np.random.default_rng(spec.seed)
    n = spec.users
    variation = rng.integers(0, 2, n, dtype=np.int32)
    country = rng.integers(0, len(COUNTRIES), n, dtype=np.int8)
    window = _micros(ANALYSIS_END) - _micros(EXPOSURE_START)
    seen = _micros(EXPOSURE_START) + rng.integers(0, window, n)

    repeat = np.flatnonzero(rng.random(n) < REPEAT_SHARE)
    conflict = np.flatnonzero(rng.random(n) < CONFLICT_SHARE)
    users = np.concatenate([np.arange(n), repeat, conflict])
    variations = np.concatenate([variation, variation[repeat], 1 - variation[conflict]])
    extra = _micros(EXPOSURE_START) + rng.integers(0, window, len(repeat) + len(conflict))
    stamps = np.concatenate([seen, extra])
    order = np.argsort(stamps, kind="stable")  # a store is appended in (roughly) time order
    exposures = pa.table(
        {
            "i": np.arange(len(order)),
            "ts": stamps[order].astype("datetime64[us]"),
            "user": users[order],
            "variation": variations[order],
            "country": country[users[order]],
        }
    )

    m = spec.events
    span = _micros(EVENT_END) - _micros(EVENT_START)
    event_stamps = np.sort(_micros(EVENT_START) + rng.integers(0, span, m))

    with duckdb.connect(str(path)) as con:
        con.execute("SET enable_progress_bar = false")
        countries = "[" + ", ".join(f"'{c}'" for c in COUNTRIES) + "]"
        con.register("chunk", exposures)
        con.execute(
            f"""
            INSERT INTO exposures
            SELECT 'x' || i, ts, ts, '{EXPERIMENT}', variation, NULL, NULL, 'id', 'u' || user,
                   ('{{"country": "' || {countries}[country + 1] || '"}}')::JSON
            FROM chunk
            """
        )
        con.unregister("chunk")
        del exposures
        rate = np.asarray(PURCHASE_RATE)
        lift = np.asarray(REVENUE_LIFT)
        for offset in range(0, m, CHUNK):
            size = min(CHUNK, m - offset)
            user = rng.integers(0, n, size)
            arm = variation[user]
            purchase = rng.random(size) < rate[arm]
            value = rng.lognormal(3.0, 1.0, size) * lift[arm]
            chunk = pa.table(
                {
                    "i": np.arange(offset, offset + size),
                    "ts": event_stamps[offset : offset + size].astype("datetime64[us]"),
                    "user": user,
                    "purchase": purchase,
                    "value": value,
                }
            )
            con.register("chunk", chunk)
            con.execute(
                """
                INSERT INTO events
                SELECT 'e' || i, ts, ts,
                       CASE WHEN purchase THEN 'purchase' ELSE 'page_view' END,
                       CASE WHEN purchase THEN value END,
                       'u' || user, NULL, '{}'::JSON
                FROM chunk
                """
            )
            con.unregister("chunk")
        con.execute("CHECKPOINT")
