"""The ``liftkit`` command, run in-process."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from liftkit import analysis
from liftkit.cli._app import app
from liftkit.platform import Platform
from liftkit.settings import Settings

CASES = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "growthbook-sdk-cases.json"
runner = CliRunner()


def test_demo_seeds_a_registry_evaluates_flags_and_analyses_the_simulated_test(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "demo"
    args = ["demo", "--users", "4000", "--no-serve", "--data-dir", str(data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (data_dir / "registry.db").exists()
    assert re.search(r"SDK client key \(production\): sdk-\w+", result.output)
    assert "pricing-2026" in result.output
    assert re.search(r"decision: (ship|roll back|keep running|stop|investigate)", result.output)
    counts = re.search(r"units: control ([\d,]+), annual-first ([\d,]+)", result.output)
    assert counts
    n_control, n_treatment = (int(c.replace(",", "")) for c in counts.groups())
    assert n_control + n_treatment == 4000
    assert re.search(r"Ingest key \(POST /api/v1/events\): lk_ing_\w+", result.output)
    organisation = r"Demo organisation: \d+ features, \d+ experiments \(\d+ running\)"
    assert re.search(organisation, result.output)
    assert re.search(r"Admin login: admin@example\.com / \S+", result.output)
    # Flags evaluated by the SDK for the sample users follow their targeting: dark mode for
    # paying customers, the update banner below app version 3.0.0.
    alice = re.search(r"alice: (.*)", result.output)
    bob = re.search(r"bob: (.*)", result.output)
    assert alice and bob
    assert "dark-mode=True" in alice[1] and "min-app-version-banner=False" in alice[1]
    assert "dark-mode=False" in bob[1] and "min-app-version-banner=True" in bob[1]
    # The simulated traffic is in the event store, one exposure per user, split as reported.
    with duckdb.connect(str(data_dir / "events.duckdb"), read_only=True) as con:
        split = con.execute(
            "SELECT variation_id, count(DISTINCT hash_value) FROM exposures "
            "WHERE experiment_key = 'pricing-2026' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        purchases = con.execute(
            "SELECT count(*) FROM events WHERE name = 'purchase' AND user_id IN "
            "(SELECT hash_value FROM exposures WHERE experiment_key = 'pricing-2026')"
        ).fetchone()
    assert split == [(0, n_control), (1, n_treatment)]
    # The analysis was stored as the experiment's first snapshot.
    platform = Platform(Settings(data_dir=data_dir))
    try:
        snapshot = analysis.latest(platform.engine, "pricing-2026")
    finally:
        platform.close()
    assert snapshot is not None and snapshot.health.units["control"] == n_control
    assert {m.metric for m in snapshot.results} == {"purchase", "revenue", "refunds"}
    assert purchases is not None and 200 < purchases[0] < 800


def test_conformance_command() -> None:
    result = runner.invoke(app, ["conformance", str(CASES)])
    assert result.exit_code == 0
    assert re.search(r"^\d+ passed, 0 failed$", result.output, re.M)


def test_conformance_command_missing_file_is_a_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["conformance", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_demo_refuses_to_wipe_a_directory_it_did_not_create(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = runner.invoke(app, ["demo", "--no-serve", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert (tmp_path / "precious.txt").exists()
    assert "not a liftkit demo directory" in result.output


def test_keys_create_prints_a_key_that_authenticates(tmp_path: Path) -> None:
    from liftkit.platform import Platform
    from liftkit.settings import Settings

    data = ["--data-dir", str(tmp_path)]
    result = runner.invoke(app, ["keys", "create", "--sdk", "production", *data])
    assert result.exit_code == 0, result.output
    sdk_key = re.findall(r"sdk-\w+", result.output)[-1]
    result = runner.invoke(app, ["keys", "create", "--role", "editor", *data])
    secret = re.findall(r"lk_sec_\w+", result.output)[-1]
    platform = Platform(Settings(data_dir=tmp_path))
    try:
        sdk = platform.accounts.resolve_key(sdk_key)
        editor = platform.accounts.resolve_key(secret)
        assert sdk is not None and sdk.environment == "production"
        assert editor is not None and editor.role == "editor"
    finally:
        platform.close()
    bad = runner.invoke(app, ["keys", "create", "--sdk", "nowhere", *data])
    assert bad.exit_code == 1 and "no environment 'nowhere'" in bad.output
    both = runner.invoke(app, ["keys", "create", "--ingest", "--role", "admin", *data])
    assert both.exit_code == 1 and "exactly one" in both.output
