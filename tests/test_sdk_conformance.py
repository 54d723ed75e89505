"""The GrowthBook specification's own vectors, run through liftkit's engine: every section, every
case, both through the command users run and through the Python API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from liftkit.sdk.conformance import SECTIONS, main, run_cases

CASES = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "growthbook-sdk-cases.json"


@pytest.fixture(scope="module")
def cases() -> dict:
    if not CASES.exists():  # CI always has shared/ beside the checkout; say so loudly if not
        pytest.fail(f"conformance vectors missing: {CASES}")
    return json.loads(CASES.read_text())


def test_every_section_is_known_to_the_runner(cases: dict) -> None:
    assert set(cases) - {"specVersion"} <= set(SECTIONS)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_section_passes(cases: dict, section: str) -> None:
    if section not in cases:
        pytest.fail(f"section {section} missing from the vectors")
    failures = run_cases(cases, only=section)[section]
    assert failures == [], "\n".join(f"{n}: got {g!r}, expected {e!r}" for n, g, e in failures)


def test_command_line_reports_totals_and_exit_status() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "liftkit.sdk.conformance", str(CASES)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    total = sum(len(v) for k, v in json.loads(CASES.read_text()).items() if k != "specVersion")
    assert lines[-1] == f"{total} passed, 0 failed"
    assert proc.returncode == 0


def test_command_line_fails_on_a_wrong_expectation(tmp_path: Path, capsys) -> None:
    bad = {"hash": [["", "a", 1, 0.5]], "evalCondition": [["ok", {}, {}, True]]}
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(bad))
    assert main([str(path), "-v"]) == 1
    out = capsys.readouterr().out
    assert "1 passed, 1 failed" in out.splitlines()[-1]
    assert "FAIL" in out


def test_command_line_unreadable_file_is_a_message_not_a_traceback(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
