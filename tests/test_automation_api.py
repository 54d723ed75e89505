"""Playbooks over HTTP and the CLI: definitions, status, timeline, overrides, roles, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from automation_support import ACTOR, World
from liftkit.app import create_app
from liftkit.cli._app import app as cli_app

API = "/api/v1"
PLAYBOOK = {
    "key": "ramp",
    "experiment": "checkout",
    "stages": [{"coverage": 0.1, "min_hours": 1}, {"coverage": 1.0, "min_hours": 1}],
    "guardrails": [{"metric": "error-rate"}],
}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    # The app's own controller is off: the tests drive cycles through the API instead.
    w = World.build(tmp_path, f"sqlite:///{tmp_path / 'registry.db'}", PLAYBOOK, controller=False)
    yield w
    w.close()


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.platform, controller=world.controller)) as test_client:
        yield test_client


def headers(world: World, role: Any) -> dict[str, str]:
    secret, _ = world.platform.accounts.create_key("secret", created_by="test", role=role)
    return {"Authorization": f"Bearer {secret}"}


def test_definitions_are_validated_with_the_field_named(client: TestClient, world: World) -> None:
    editor = headers(world, "editor")
    bad = {"key": "x", "experiment": "checkout", "stages": [{"coverage": 0.5}, {"coverage": 0.1}]}
    response = client.post(f"{API}/playbooks", json=bad, headers=editor)
    assert response.status_code == 422 and "coverage must not go down" in response.text
    rollout = {"key": "y", "type": "rollout", "feature": "checkout"}
    response = client.post(f"{API}/playbooks", json=rollout, headers=editor)
    assert response.status_code == 422 and "value" in response.text
    ok = {"key": "z", "experiment": "checkout", "guardrails": [{"metric": "error-rate"}]}
    assert client.post(f"{API}/playbooks", json=ok, headers=editor).status_code == 201
    viewer = headers(world, "viewer")
    assert (
        client.post(f"{API}/playbooks", json={**ok, "key": "w"}, headers=viewer).status_code == 403
    )


def test_status_timeline_and_overrides(client: TestClient, world: World) -> None:
    editor, viewer = headers(world, "editor"), headers(world, "viewer")
    status = client.get(f"{API}/playbooks/ramp/status", headers=viewer).json()
    assert status["state"]["status"] == "pending" and status["latest"] is None
    run = client.post(f"{API}/playbooks/ramp/actions", json={"action": "run"}, headers=editor)
    assert run.status_code == 200 and run.json()["state"]["status"] == "running"
    forbidden = client.post(
        f"{API}/playbooks/ramp/actions", json={"action": "pause"}, headers=viewer
    )
    assert forbidden.status_code == 403 and "editor" in forbidden.json()["detail"]
    paused = client.post(
        f"{API}/playbooks/ramp/actions",
        json={"action": "pause", "reason": "freeze"},
        headers=editor,
    )
    assert paused.json()["state"]["status"] == "paused"
    again = client.post(f"{API}/playbooks/ramp/actions", json={"action": "resume"}, headers=editor)
    assert again.json()["state"]["status"] == "running"
    conflict = client.post(
        f"{API}/playbooks/ramp/actions", json={"action": "resume"}, headers=editor
    )
    assert conflict.status_code == 409 and "not paused" in conflict.json()["detail"]
    bad = client.post(f"{API}/playbooks/ramp/actions", json={"action": "explode"}, headers=editor)
    assert bad.status_code == 422 and "action" in bad.text
    stage = client.post(
        f"{API}/playbooks/ramp/actions", json={"action": "stage", "stage": 1}, headers=editor
    )
    assert stage.json()["state"]["stage"] == 1
    assert world.experiment().current_coverage() == pytest.approx(1.0)
    items = client.get(f"{API}/playbooks/ramp/timeline", headers=viewer).json()["items"]
    assert [i["action"] for i in items[:4]] == ["stage", "resume", "pause", "start"]
    older = client.get(
        f"{API}/playbooks/ramp/timeline", params={"before": items[1]["id"]}, headers=viewer
    ).json()["items"]
    assert [i["id"] for i in older] == [i["id"] for i in items[2:]]
    missing = client.get(f"{API}/playbooks/nope/status", headers=viewer)
    assert missing.status_code == 404
    assert client.get(f"{API}/playbooks/ramp/deliveries", headers=viewer).json() == []


def run_cli(world: World, *args: str) -> Any:
    url = world.platform.settings.registry_url
    data = str(world.platform.settings.data_dir)
    return CliRunner().invoke(cli_app, [*args, "--database-url", url, "--data-dir", data])


def test_cli(world: World) -> None:
    world.controller.step("ramp")
    listed = run_cli(world, "playbooks", "list")
    assert listed.exit_code == 0 and "running" in listed.output and "1/2 (10%)" in listed.output
    paused = run_cli(world, "playbooks", "pause", "ramp", "--reason", "freeze", "--as", "dana")
    assert paused.exit_code == 0, paused.output
    status = run_cli(world, "playbooks", "status", "ramp", "--json")
    assert '"status": "paused"' in status.output
    timeline = run_cli(world, "playbooks", "timeline", "ramp")
    assert "cli:dana" in timeline.output and "freeze" in timeline.output
    again = run_cli(world, "playbooks", "pause", "ramp")
    assert again.exit_code == 0  # pausing a paused playbook is harmless
    wrong = run_cli(world, "playbooks", "stage", "ramp", "9")
    assert (
        wrong.exit_code == 1
        and "stage: between" in wrong.output
        and "Traceback" not in wrong.output
    )
    unknown = run_cli(world, "playbooks", "status", "nope")
    assert unknown.exit_code == 1 and "not found" in unknown.output


def test_cli_code_removed_checks_the_source(world: World, tmp_path: Path) -> None:
    world.controller.step("ramp")
    src = tmp_path / "app"
    src.mkdir()
    (src / "main.py").write_text('if client.is_on("checkout"):\n    pass\n')
    still = run_cli(world, "playbooks", "code-removed", "ramp", "--refs", str(src))
    assert still.exit_code == 1 and "main.py:1" in still.output
    (src / "main.py").write_text("pass\n")
    done = run_cli(world, "playbooks", "code-removed", "ramp", "--refs", str(src), "--as", ACTOR)
    assert done.exit_code == 0, done.output


def test_controller_once(world: World) -> None:
    result = run_cli(world, "controller", "--once")
    assert result.exit_code == 0 and "ramp: start" in result.output
