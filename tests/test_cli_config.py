"""The config-as-code and hygiene commands, run in-process on a temporary data directory."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from liftkit.cli import config_cmds
from liftkit.platform import Platform
from liftkit.registry.payload import encrypt_payload
from liftkit.settings import Settings

runner = CliRunner()
FLAGS = """\
kind: Feature
key: new-checkout
owner: ana
environments:
  production:
    enabled: true
    rules:
      - type: rollout
        value: true
        coverage: 0.2
---
kind: Feature
key: dark-mode
"""
PAYLOAD = {
    "features": {
        "search": {"defaultValue": "v1", "rules": [{"force": "v2", "coverage": 0.5}]},
        "banner": {"defaultValue": False, "rules": [{"force": True, "range": [0, 0.5]}]},
    }
}


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    config_cmds.register(app)
    return app


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def run(app: typer.Typer, data: Path, *args: str) -> Result:
    result = runner.invoke(app, [*args, "--data-dir", str(data)])
    assert "Traceback" not in said(result)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def said(result: Result) -> str:
    """The output without the line breaks Rich adds to fit an 80-column terminal."""
    return result.output.replace("\n", "")


def registry_has(data: Path, collection: str, key: str) -> bool:
    platform = Platform(Settings(data_dir=data))
    try:
        return platform.registry.find(collection, key) is not None
    finally:
        platform.close()


def test_apply_shows_the_plan_and_changes_nothing_without_yes(
    app: typer.Typer, data: Path, tmp_path: Path
) -> None:
    flags = tmp_path / "flags.yaml"
    flags.write_text(FLAGS)
    result = run(app, data, "apply", "-f", str(flags))
    assert result.exit_code == 2
    assert "new-checkout" in said(result) and "dark-mode" in said(result)
    assert "Plan: 2 to create, 0 to update, 0 to delete" in said(result)
    assert "--yes" in said(result)
    assert not registry_has(data, "features", "new-checkout")

    result = run(app, data, "apply", "-f", str(flags), "--yes", "--actor", "ci-bot")
    assert result.exit_code == 0, result.output
    assert "2 changes published" in said(result)
    assert registry_has(data, "features", "new-checkout")

    result = run(app, data, "apply", "-f", str(flags))
    assert result.exit_code == 0
    assert "No changes" in said(result)


def test_apply_prints_what_changes_path_by_path(
    app: typer.Typer, data: Path, tmp_path: Path
) -> None:
    flags = tmp_path / "flags.yaml"
    flags.write_text(FLAGS)
    assert run(app, data, "apply", "-f", str(flags), "--yes").exit_code == 0
    flags.write_text(FLAGS.replace("0.2", "0.5").replace("owner: ana\n", ""))
    result = run(app, data, "apply", "-f", str(flags))
    assert result.exit_code == 2
    assert "environments.production.rules.0.coverage: 0.2 → 0.5" in said(result)
    assert 'owner: "ana" → ""' in said(result)
    assert "Plan: 0 to create, 1 to update, 0 to delete, 1 unchanged" in said(result)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Feature\nkey: [oops\n", "invalid YAML at line 3"),
        ("kind: Feature\nkey: x\ncoverage: 2\n", "field coverage: Extra inputs"),
        ("kind: Gadget\nkey: x\n", "unknown kind 'Gadget'"),
    ],
)
def test_bad_files_give_a_message_not_a_traceback(
    app: typer.Typer, data: Path, tmp_path: Path, text: str, message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = run(app, data, "apply", "-f", str(bad), "--yes")
    assert result.exit_code == 1
    assert message in said(result)
    assert str(bad) in said(result)


def test_missing_files_and_bad_prune_options_are_messages(
    app: typer.Typer, data: Path, tmp_path: Path
) -> None:
    result = run(app, data, "apply", "-f", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1 and "no such file or folder" in said(result)
    flags = tmp_path / "flags.yaml"
    flags.write_text(FLAGS)
    result = run(app, data, "apply", "-f", str(flags), "--prune", "--prune-also", "planets")
    assert result.exit_code == 1 and "unknown collection 'planets'" in said(result)


def test_export_writes_what_apply_reads(app: typer.Typer, data: Path, tmp_path: Path) -> None:
    flags = tmp_path / "flags.yaml"
    flags.write_text(FLAGS)
    run(app, data, "apply", "-f", str(flags), "--yes")
    result = run(app, data, "export", "--collection", "features")
    assert result.exit_code == 0
    assert result.stdout.startswith("# liftkit registry objects")
    assert "key: dark-mode" in result.stdout and "kind: Environment" not in result.stdout
    out = tmp_path / "all.yaml"
    result = run(app, data, "export", "-o", str(out))
    assert result.exit_code == 0 and "exported 6 objects" in said(result)
    assert run(app, data, "apply", "-f", str(out)).exit_code == 0  # nothing to do
    result = run(app, data, "export", "-c", "flags")
    assert result.exit_code == 1 and "unknown collection" in said(result)


def test_import_growthbook(app: typer.Typer, data: Path, tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps(PAYLOAD))
    args = ["import", "growthbook", str(payload), "--environment", "production"]
    result = run(app, data, *args)
    assert result.exit_code == 2
    assert "feature 'banner' rule 1: uses range" in said(result)
    assert not registry_has(data, "features", "search")
    assert run(app, data, *args, "--yes").exit_code == 0
    assert registry_has(data, "features", "search")
    assert run(app, data, *args).exit_code == 0  # imported already: nothing to do

    key = base64.b64encode(bytes(16)).decode()
    payload.write_text(json.dumps(encrypt_payload(PAYLOAD, key)))
    result = run(app, data, *args)
    assert result.exit_code == 1 and "--decryption-key" in said(result)
    assert run(app, data, *args, "--decryption-key", key).exit_code == 0

    result = run(app, data, *args[:3], "--environment", "prod", "--decryption-key", key)
    assert result.exit_code == 1 and "environment 'prod' does not exist" in said(result)
    result = run(app, data, "import", "growthbook", str(tmp_path / "x.json"), "--environment", "p")
    assert result.exit_code == 1 and "cannot read" in said(result)


def test_flags_stale_and_refs(app: typer.Typer, data: Path, tmp_path: Path) -> None:
    flags = tmp_path / "flags.yaml"
    flags.write_text(FLAGS + "environments: {production: {enabled: true}}\n")
    run(app, data, "apply", "-f", str(flags), "--yes")
    result = run(app, data, "flags", "stale", "--days", "0", "--format", "json")
    assert result.exit_code == 0
    found = {f["key"]: f for f in json.loads(result.stdout)}
    assert set(found) == {"dark-mode"}  # new-checkout is still rolling out to 20%
    assert found["dark-mode"]["category"] == "unchanging"
    result = run(app, data, "flags", "stale")
    assert result.exit_code == 0 and "No stale flags" in said(result)

    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text('if ctx.is_on("new-checkout"):\n    pass\n')
    result = run(app, data, "refs", str(src), "--format", "json")
    report = json.loads(result.stdout)
    assert [(h["path"], h["line"], h["key"]) for h in report["hits"]] == [
        ("app.py", 1, "new-checkout")
    ]
    assert report["unreferenced"] == ["dark-mode"]
    result = run(app, data, "refs", str(src))
    assert "app.py:1" in said(result) and "safe to archive: dark-mode" in said(result)
    assert run(app, data, "refs", str(tmp_path / "nope")).exit_code == 1
