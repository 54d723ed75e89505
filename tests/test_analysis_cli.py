"""``liftkit analyze`` in-process: the table, JSON and CSV outputs, --sql, and clean failures.

One data directory is prepared for the module: planted exposures and events in liftkit's own
event store, the registry describing ``planted`` (and a few experiments that cannot be analysed),
so each test is one real command. Tests count snapshots before and after, since several store
one.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from analysis_support import ACTOR, Planted, simulate
from liftkit import analysis
from liftkit.analysis import Snapshot
from liftkit.cli._app import app
from liftkit.platform import Platform
from liftkit.settings import Settings

# The store and registry helpers of the API tests: the same data behind both surfaces.
from test_analysis_api import USERS, builtin_objects, experiment, fill_store

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    platform = Platform(Settings(data_dir=data_dir))
    platform.bootstrap()  # the first admin key is made here, not announced by a command
    try:
        fill_store(data_dir / "events.duckdb", simulate(Planted(users=USERS, lift=0.3, seed=3)))
        for collection, body in builtin_objects():
            platform.registry.save(collection, body, ACTOR)
        platform.registry.save(
            "fact-tables",
            {"key": "broken", "datasource": "events", "sql": "SELECT user_id, timestamp FROM gone"},
            ACTOR,
        )
        platform.registry.save(
            "metrics", {"key": "broken", "numerator": {"fact_table": "broken"}}, ACTOR
        )
        platform.registry.save(
            "experiments", experiment("broken", metrics={"primary": ["broken"]}), ACTOR
        )
        platform.registry.save("experiments", experiment("unmeasured", metrics={}), ACTOR)
    finally:
        platform.close()
    return data_dir


def analyze(data: Path, *args: str) -> Result:
    """``liftkit analyze ARGS --data-dir DATA``; never a traceback, whatever the exit code."""
    result = runner.invoke(app, ["analyze", *args, "--data-dir", str(data)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def said(text: str) -> str:
    """Text with Rich's line wrapping (80 columns under the test runner) undone."""
    return " ".join(text.split())


def stored(data: Path, key: str = "planted") -> list[Snapshot]:
    platform = Platform(Settings(data_dir=data))
    try:
        return analysis.history(platform.engine, key, limit=500)
    finally:
        platform.close()


# -- running ----------------------------------------------------------------------------------


def test_analyze_shows_results_health_and_decision_and_stores_a_snapshot(data: Path) -> None:
    before = len(stored(data))
    result = analyze(data, "planted")
    assert result.exit_code == 0, result.output
    history = stored(data)
    assert len(history) == before + 1
    snapshot = history[0]
    assert snapshot.created_by == "cli"
    out = said(result.stdout)
    for text in ("purchase", "revenue", "primary", "secondary", "control", "treatment"):
        assert text in out
    units = snapshot.health.units
    assert sum(units.values()) == USERS
    assert f"units: control {units['control']:,}, treatment {units['treatment']:,};" in out
    assert snapshot.health.srm_p_value is not None
    assert f"SRM p = {snapshot.health.srm_p_value:.3g}" in out
    assert f"decision: {snapshot.decision.action}" in out
    assert f"snapshot {snapshot.id} saved" in out


def test_no_save_stores_nothing(data: Path) -> None:
    before = len(stored(data))
    result = analyze(data, "planted", "--no-save")
    assert result.exit_code == 0, result.output
    out = said(result.stdout)
    assert "decision:" in out
    assert "SRM p =" in out
    assert "saved" not in out
    assert len(stored(data)) == before


def test_json_output_is_the_snapshot(data: Path) -> None:
    before = len(stored(data))
    result = analyze(data, "planted", "--format", "json")
    assert result.exit_code == 0, result.output
    printed = Snapshot.model_validate_json(result.stdout)  # nothing but the JSON on stdout
    history = stored(data)
    assert len(history) == before + 1
    assert printed == history[0]
    assert [m.metric for m in printed.results] == ["purchase", "revenue"]

    unsaved = analyze(data, "planted", "--format", "json", "--no-save")
    assert unsaved.exit_code == 0, unsaved.output
    body = json.loads(unsaved.stdout)
    assert body["id"] is None
    assert len(stored(data)) == before + 1
    # The same data gives the same results, run after run (up to the last bits of a float:
    # parallel sums are added in whichever order the threads finish).
    again = Snapshot.model_validate(body).rows()
    for new, old in zip(again, printed.rows(), strict=True):
        for field, value in old.items():
            if isinstance(value, float):
                assert new[field] == pytest.approx(value, rel=1e-9), field
            else:
                assert new[field] == value, field


def test_csv_output_has_a_row_per_metric_and_variation(data: Path) -> None:
    reference = Snapshot.model_validate_json(
        analyze(data, "planted", "--format", "json", "--no-save").stdout
    )
    before = len(stored(data))
    result = analyze(data, "planted", "--format", "csv", "--no-save")
    assert result.exit_code == 0, result.output
    assert len(stored(data)) == before
    reader = csv.DictReader(io.StringIO(result.stdout))
    rows = list(reader)
    assert reader.fieldnames is not None
    assert reader.fieldnames[:5] == ["experiment", "metric", "role", "variation", "units"]
    assert [(r["metric"], r["variation"]) for r in rows] == [
        ("purchase", "control"), ("purchase", "treatment"),
        ("revenue", "control"), ("revenue", "treatment"),
    ]  # fmt: skip
    for row, want in zip(rows, reference.rows(), strict=True):
        assert row["experiment"] == "planted"
        assert row["role"] == want["role"]
        assert int(row["units"]) == want["units"]
        assert float(row["value"]) == pytest.approx(want["value"], rel=1e-9)
        if want["effect"] is None:
            assert row["effect"] == ""
        else:
            assert float(row["effect"]) == pytest.approx(want["effect"], rel=1e-9)
    assert sum(int(r["units"]) for r in rows if r["metric"] == "purchase") == USERS


# -- SQL --------------------------------------------------------------------------------------


def test_sql_prints_the_query_for_a_dialect_without_running_it(data: Path) -> None:
    before = len(stored(data))
    result = analyze(data, "planted", "--sql", "--dialect", "snowflake")
    assert result.exit_code == 0, result.output
    sql = result.stdout
    assert sql.startswith("-- planted: metrics (snowflake)\n")
    assert "experiment_key = 'planted'" in sql
    assert sql.rstrip().endswith(";")
    default = analyze(data, "planted", "--sql")
    assert default.exit_code == 0, default.output
    assert default.stdout.startswith("-- planted: metrics (duckdb)\n")  # the data source's own
    assert default.stdout.split("\n", 1)[1] != sql.split("\n", 1)[1]
    assert len(stored(data)) == before
    # Nothing runs: the SQL of an experiment whose fact table is broken prints all the same.
    broken = analyze(data, "broken", "--sql", "--dialect", "bigquery")
    assert broken.exit_code == 0, broken.output
    assert "FROM gone" in broken.stdout
    assert stored(data, "broken") == []


# -- failing cleanly --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("planted", "--sql", "--dialect", "nope"),
            "--dialect must be one of duckdb, postgres, clickhouse, spark, bigquery, snowflake,",
        ),
        (("planted", "--dialect", "duckdb"), "--dialect only applies with --sql"),
        (("nope",), "experiment 'nope' does not exist"),
        (("nope", "--sql"), "experiment 'nope' does not exist"),
        (("unmeasured",), "experiment 'unmeasured' has no metrics: add a primary metric"),
        (("broken",), "the warehouse query failed: DuckDB: Catalog Error: Table with name gone"),
    ],
    ids=["dialect", "dialect-without-sql", "unknown", "unknown-sql", "no-metrics", "warehouse"],
)
def test_failures_exit_1_with_a_clean_message(
    data: Path, args: tuple[str, ...], message: str
) -> None:
    before = len(stored(data, args[0]))
    result = analyze(data, *args)
    assert result.exit_code == 1, result.output
    assert said(result.stderr).startswith("error: ")
    assert message in said(result.stderr)
    assert result.stdout.strip() == ""
    assert len(stored(data, args[0])) == before
