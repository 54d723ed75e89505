"""Flag hygiene: stale flags found from the registry, and flag keys found in source code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from liftkit.platform import Platform
from liftkit.registry import Registry
from liftkit.registry.hygiene import StaleFlag, find_refs, stale_flags

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=60)
RECENT = NOW - timedelta(days=5)


def flag(key: str, envs: dict[str, list[dict[str, Any]] | None], **fields: Any) -> dict[str, Any]:
    """A feature; an environment given None is present but off."""
    environments = {
        env: {"enabled": rules is not None, "rules": rules or []} for env, rules in envs.items()
    }
    return {"key": key, "environments": environments, **fields}


def save_at(registry: Registry, when: datetime, name: str, body: dict[str, Any]) -> None:
    registry.clock = lambda: when
    registry.save(name, body, "test")


@pytest.fixture
def registry(platform: Platform) -> Registry:
    registry = platform.registry
    force_true = {"type": "force", "value": True}
    experiment_rule = {"type": "experiment", "experiment": "exp-done", "values": [False, True]}
    old = [
        flag("old-release", {"production": []}),
        flag("rolled-out", {"production": [{"type": "rollout", "value": True, "coverage": 1.0}],
                            "staging": [force_true]}),
        flag("targeted", {"production": [{**force_true, "condition": {"country": "GB"}}]}),
        flag("partial", {"production": [{"type": "rollout", "value": True, "coverage": 0.5}]}),
        flag("kill", {"production": []}, kind="kill-switch"),
        flag("dormant", {"production": None}),
        flag("scheduled", {"production": [
            {**force_true, "schedule": {"start_at": (NOW + timedelta(days=2)).isoformat()}}]}),
        flag("disagree", {"production": [force_true], "development": []}),
        flag("ab-flag", {"production": [experiment_rule]}, kind="experiment"),
        flag("ab-live", {"production": [{**experiment_rule, "experiment": "exp-live"}]},
             kind="experiment"),
        flag("shipped-by-test", {"production": [experiment_rule]}),
        flag("gone", {"production": []}, archived=True),
        flag("child", {"production": [{**force_true, "prerequisites": [{"feature": "gone"}]}]}),
    ]  # fmt: skip
    phase = {"started_at": (OLD - timedelta(days=30)).isoformat(), "ended_at": OLD.isoformat()}
    save_at(registry, OLD, "experiments", {
        "key": "exp-done", "status": "stopped", "result": "won",
        "released_variation": "treatment", "phases": [phase],
    })  # fmt: skip
    save_at(registry, OLD, "experiments", {"key": "exp-live", "status": "running"})
    for body in old:
        save_at(registry, OLD, "features", body)
    save_at(registry, RECENT, "features", flag("recent", {"production": []}))
    save_at(registry, RECENT, "features", flag("broken", {"production": [
        {"type": "experiment", "experiment": "missing"}]}))  # fmt: skip
    return registry


def by_key(found: list[StaleFlag]) -> dict[str, StaleFlag]:
    return {f.key: f for f in found}


def test_stale_flags_have_a_reason_and_an_action(registry: Registry) -> None:
    found = by_key(stale_flags(registry, NOW, days=30))
    assert {k: f.category for k, f in found.items()} == {
        "old-release": "unchanging",
        "rolled-out": "unchanging",
        "dormant": "off-everywhere",
        "disagree": "unchanging",
        "ab-flag": "experiment-ended",
        "shipped-by-test": "unchanging",
        "gone": "archived-referenced",
        "broken": "broken-reference",
    }
    rolled = found["rolled-out"]
    assert rolled.values == {"production": True, "staging": True}
    assert "hard-code True" in rolled.action and "unchanged for 60 days" in rolled.reason
    assert rolled.last_changed == OLD
    assert "environments disagree" in found["disagree"].action
    assert found["disagree"].values == {"development": False, "production": True}
    ended = found["ab-flag"]
    assert "exp-done (won, released 'treatment')" in ended.reason
    assert "'treatment' of exp-done" in ended.action
    assert found["shipped-by-test"].values == {"production": True}
    assert "feature child (production)" in found["gone"].reason
    assert "experiment missing" in found["broken"].reason
    assert found["rolled-out"].to_dict()["last_changed"] == OLD.isoformat()


def test_the_threshold_is_respected(registry: Registry) -> None:
    found = by_key(stale_flags(registry, NOW, days=90))
    assert set(found) == {"gone", "broken"}  # the ones that do not depend on age


def test_archived_flags_still_in_code_are_reported(registry: Registry, tmp_path: Path) -> None:
    registry.clock = lambda: NOW
    registry.delete("features", "child", "test")
    (tmp_path / "app.py").write_text('if client.is_on("gone"):\n    pass\n')
    refs = find_refs(tmp_path, ["gone"]).by_key()
    assert by_key(stale_flags(registry, NOW, references=refs))["gone"].reason.endswith("app.py:1")


def test_find_refs_matches_whole_quoted_literals_and_skips_noise(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(
        "import x\nif ctx.is_on(\"new-checkout\"):\n    price = ctx.get('price', 9)\n"
        'other = "new-checkout-v2"  # a different flag\nname = new_checkout\n'
    )
    (tmp_path / "web.ts").write_text("const on = gb.isOn(`dark-mode`);\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "lib.js").write_text('isOn("unused")\n')
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text('"unused"\n')
    (tmp_path / "logo.png").write_bytes(b'\x89PNG\0\0"unused"')
    (tmp_path / "big.sql").write_text('-- "unused"\n' + "x" * 2000)
    report = find_refs(
        tmp_path, ["new-checkout", "price", "dark-mode", "unused", "new-checkout-v2"],
        max_bytes=1000,
    )  # fmt: skip
    assert [(h.path, h.line, h.key) for h in report.hits] == [
        ("src/app.py", 2, "new-checkout"),
        ("src/app.py", 3, "price"),
        ("src/app.py", 4, "new-checkout-v2"),
        ("web.ts", 1, "dark-mode"),
    ]
    assert report.hits[0].text == 'if ctx.is_on("new-checkout"):'
    assert report.unreferenced == ["unused"]
    assert report.files_scanned == 2


def test_find_refs_on_one_file_and_without_keys(tmp_path: Path) -> None:
    one = tmp_path / "flags.py"
    one.write_text('FLAG = "beta"\n')
    assert [(h.path, h.line) for h in find_refs(one, ["beta"]).hits] == [("flags.py", 1)]
    assert find_refs(tmp_path, []).files_scanned == 0
