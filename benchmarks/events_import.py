"""Bulk import rows/s: ``liftkit events import`` against DuckDB loading the same Parquet file.

Both load the same N exposures into a fresh ``events.duckdb`` with liftkit's schema: liftkit
validates every row (pydantic), deduplicates and loads in chunks; the peer is one
``INSERT … SELECT FROM read_parquet`` with no validation or deduplication (the ceiling).

    .venv/bin/python benchmarks/events_import.py --rows 1000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from liftkit.events.duckdb_store import DuckDBStore
from liftkit.events.importer import import_file
from liftkit.events.store import TABLES

SOURCE = """
COPY (
  SELECT 'exp-' || i AS event_id, 'exposure' AS type,
         now()::TIMESTAMP - INTERVAL 9 DAY + to_seconds(i % 777600) AS timestamp,
         'pricing-' || (i % 5) AS experiment_key, (i % 2)::INTEGER AS variation_id,
         'id' AS hash_attribute, 'user-' || (i // 3) AS hash_value,
         '{"country": "NZ"}' AS attributes
  FROM range(?) t(i)
) TO '{path}' (FORMAT parquet)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "exposures.parquet"
        duckdb.execute(SOURCE.replace("{path}", str(source)), [args.rows])

        store = DuckDBStore(Path(tmp) / "liftkit" / "events.duckdb")
        start = time.perf_counter()
        report = import_file(source, store)
        liftkit_s = time.perf_counter() - start
        assert report.exposures == args.rows, report

        peer = DuckDBStore(Path(tmp) / "peer" / "events.duckdb")  # same schema
        names = ", ".join(c.name for c in TABLES["exposures"])
        start = time.perf_counter()
        with duckdb.connect(str(peer.path)) as con:
            con.execute(
                f"INSERT INTO exposures ({names}) SELECT event_id, timestamp, now()::TIMESTAMP, "
                "experiment_key, variation_id, NULL, NULL, hash_attribute, hash_value, attributes "
                "FROM read_parquet(?)",
                [str(source)],
            )
        peer_s = time.perf_counter() - start

    print(f"{args.rows:,} exposure rows from Parquet into a fresh events.duckdb")
    print(
        f"  liftkit events import (validated, deduplicated)  {args.rows / liftkit_s:>12,.0f} rows/s"
    )
    print(
        f"  DuckDB INSERT … SELECT FROM read_parquet (no checks) {args.rows / peer_s:>9,.0f} rows/s"
    )
    print(f"  ratio liftkit ÷ DuckDB: {peer_s and liftkit_s and (peer_s / liftkit_s):.1%}")


if __name__ == "__main__":
    main()
