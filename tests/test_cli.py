"""The ``liftkit`` command, run in-process."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from liftkit.cli._app import app

CASES = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "growthbook-sdk-cases.json"
runner = CliRunner()


def test_demo_evaluates_flags_and_analyses_the_simulated_test() -> None:
    result = runner.invoke(app, ["demo", "--users", "4000"])
    assert result.exit_code == 0, result.output
    assert "pricing-2026" in result.output
    assert re.search(r"relative lift [+-]\d+\.\d%", result.output)
    counts = re.search(r"(\d+) vs (\d+) users", result.output)
    assert counts and int(counts[1]) + int(counts[2]) == 4000


def test_conformance_command() -> None:
    result = runner.invoke(app, ["conformance", str(CASES)])
    assert result.exit_code == 0
    assert re.search(r"^\d+ passed, 0 failed$", result.output, re.M)


def test_conformance_command_missing_file_is_a_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["conformance", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
