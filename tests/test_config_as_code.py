"""Config as code on SQLite and PostgreSQL: load, plan, apply, prune, export, and their errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from liftkit.platform import Platform
from liftkit.registry import Registry
from liftkit.registry import config_as_code as cac
from liftkit.registry.collections import collection
from liftkit.settings import Settings

FLAGS = """\
kind: Project
key: growth
name: Growth
---
# the checkout flag, ramping up
kind: Feature
key: new-checkout
project: growth
owner: ana
environments:
  production:
    enabled: true
    rules:
      - type: rollout
        value: true
        coverage: 0.2
"""
EXPERIMENTS = """\
kind: Experiment
key: checkout-test
project: growth
status: running
variations: [{key: control}, {key: treatment}]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    write(folder, "flags.yaml", FLAGS)
    write(folder, "nested/experiments.yml", EXPERIMENTS)
    write(folder, "README.md", "not read")
    return folder


def test_plan_apply_then_nothing_to_do(platform: Platform, config: Path) -> None:
    registry = platform.registry
    desired = cac.load([config])
    assert [(d.collection, d.key) for d in desired] == [
        ("projects", "growth"), ("features", "new-checkout"), ("experiments", "checkout-test"),
    ]  # fmt: skip
    assert desired[1].source.endswith("flags.yaml, document 2 (line 6)")
    plan = cac.plan(registry, desired)
    # Dependency order, whatever the order of the files.
    assert [(c.action, c.key) for c in plan.changes] == [
        ("create", "growth"), ("create", "checkout-test"), ("create", "new-checkout"),
    ]  # fmt: skip
    assert plan.summary() == "3 to create, 0 to update, 0 to delete"
    assert registry.find("features", "new-checkout") is None  # planning changes nothing
    result = cac.apply(registry, plan, "ci")
    assert [r.status for _, r in result.published] == ["published"] * 3
    assert registry.get("features", "new-checkout").project == "growth"  # type: ignore[attr-defined]
    assert registry.revisions("features", "new-checkout")[-1].author == "ci"
    again = cac.plan(registry, cac.load([config]))
    assert not again.has_changes
    assert again.count("unchanged") == 3


def test_updates_come_with_a_path_level_diff(platform: Platform, config: Path) -> None:
    registry = platform.registry
    cac.apply(registry, cac.plan(registry, cac.load([config])), "ci")
    write(config, "flags.yaml", FLAGS.replace("coverage: 0.2", "coverage: 0.5"))
    plan = cac.plan(registry, cac.load([config]))
    (change,) = plan.to_apply
    assert (change.action, change.key) == ("update", "new-checkout")
    assert [(d.path, d.op, d.before, d.after) for d in change.diff] == [
        ("environments.production.rules.0.coverage", "changed", 0.2, 0.5)
    ]
    cac.apply(registry, plan, "ci")
    assert not cac.plan(registry, cac.load([config])).has_changes


def test_prune_is_limited_to_the_collections_in_the_files(platform: Platform, config: Path) -> None:
    registry = platform.registry
    registry.save("features", {"key": "leftover"}, "someone")
    registry.save("metrics", {"key": "m", "numerator": {"fact_table": "t"}}, "someone")
    write(config, "envs.yaml", "kind: Environment\nkey: production\nname: Production\n")
    desired = cac.load([config])
    assert not [c for c in cac.plan(registry, desired).changes if c.action == "delete"]
    deletes = [c for c in cac.plan(registry, desired, prune=True).changes if c.action == "delete"]
    # Not the metric (no metrics in the files), not the other environments (protected).
    assert [(c.collection, c.key) for c in deletes] == [("features", "leftover")]
    deletes = [
        (c.collection, c.key)
        for c in cac.plan(registry, desired, prune=True, prune_also=["environments"]).changes
        if c.action == "delete"
    ]
    # Deletes run in reverse dependency order: features before environments.
    assert deletes == [
        ("features", "leftover"), ("environments", "development"), ("environments", "staging"),
    ]  # fmt: skip
    cac.apply(registry, cac.plan(registry, desired, prune=True), "ci")
    assert registry.find("features", "leftover") is None
    assert registry.find("metrics", "m") is not None


def test_changes_needing_approval_wait_for_review_once(platform: Platform, config: Path) -> None:
    registry = platform.registry
    registry.save("environments", {"key": "production", "requires_approval": True}, "admin")
    plan = cac.plan(registry, cac.load([config]))
    result = cac.apply(registry, plan, "ci")
    assert [(c.key, r.status) for c, r in result.pending_review] == [
        ("new-checkout", "pending_review")
    ]
    assert registry.find("features", "new-checkout") is None
    again = cac.plan(registry, cac.load([config]))
    assert [(c.action, c.key, c.pending_version) for c in again.changes if c.key == "new-checkout"]\
        == [("pending", "new-checkout", 1)]  # fmt: skip
    assert not again.has_changes
    assert "1 already awaiting review" in again.summary()


def test_apply_refuses_an_object_that_moved_since_the_plan(
    platform: Platform, config: Path
) -> None:
    registry = platform.registry
    plan = cac.plan(registry, cac.load([config]))
    registry.save("features", {"key": "new-checkout", "owner": "bo"}, "someone")
    with pytest.raises(cac.ApplyError, match="'new-checkout' changed since the plan") as info:
        cac.apply(registry, plan, "ci")
    assert [c.key for c, _ in info.value.result.published] == ["growth", "checkout-test"]


def test_errors_name_the_file_document_and_field(tmp_path: Path) -> None:
    good = write(tmp_path, "a.yaml", FLAGS)
    bad = write(tmp_path, "b.yaml", (
        "kind: Feature\nkey: typed\nvalue_type: number\ndefault_value: 1\n"
        "environments: {production: {rules: [{type: force, value: 'x'}]}}\n"
        "---\nkind: Feature\nkey: new-checkout\n"
        "---\nkind: Experiment\nkey: e\ncoverage: 2\n"
        "---\nkind: Flag\nkey: f\n"
        "---\nkind: Metric\nkey: m\nnumerator: {fact_table: t}\ncolour: red\n"
        "---\nkind: release\nkey: r\n"
        "---\nkind: Feature\nkey: r\nflag_kind: forever\n"
    ))  # fmt: skip
    broken = write(tmp_path, "c.yaml", "kind: Feature\nkey: [oops\n")
    with pytest.raises(cac.ConfigError) as info:
        cac.load([good, bad, broken, tmp_path / "missing.yaml"])
    assert info.value.problems == [f"{tmp_path / 'missing.yaml'}: no such file or folder"]
    with pytest.raises(cac.ConfigError) as info:
        cac.load([good, bad, broken])
    problems = info.value.problems
    assert problems[0].startswith(f"{bad}, document 1 (line 1), Feature 'typed': ")
    assert "environments.production.rules.0: value 'x' is not a number" in problems[0]
    assert problems[1].startswith(f"{bad}, document 2 (line 7): Feature 'new-checkout' is also")
    assert problems[1].endswith(f"{good}, document 2 (line 6)")
    assert problems[2] == (
        f"{bad}, document 3 (line 10), Experiment 'e': field coverage: "
        "Input should be less than or equal to 1"
    )
    assert problems[3].startswith(f"{bad}, document 4 (line 14): unknown kind 'Flag'")
    assert problems[4].endswith("Metric 'm': field colour: Extra inputs are not permitted")
    assert problems[5].endswith("a feature's own kind is written flag_kind)")
    assert problems[6].startswith(f"{bad}, document 7 (line 25), Feature 'r': field flag_kind: ")
    assert problems[7].startswith(f"{broken}, document 1: invalid YAML at line 3")
    assert len(problems) == 8


def test_a_repeated_key_in_a_document_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "kind: Feature\nkey: a\nkey: b\n")
    with pytest.raises(cac.ConfigError, match="line 3, column 1: duplicate key 'key'"):
        cac.load([path])


# -- export -------------------------------------------------------------------------------------

EVERY_KIND: list[tuple[str, dict[str, Any]]] = [
    ("projects", {"key": "growth", "name": "Growth", "description": "acquisition"}),
    ("environments", {"key": "qa", "name": "QA"}),
    ("attributes", {"key": "country", "datatype": "enum", "enum": ["GB", "US"]}),
    ("attributes", {"key": "email", "datatype": "secureString"}),
    ("namespaces", {"key": "checkout"}),
    ("saved-groups", {"key": "beta", "type": "list", "attribute": "id", "values": ["u1", 7]}),
    ("saved-groups", {"key": "uk", "condition": {"country": "GB"}, "project": "growth"}),
    ("experiments", {
        "key": "checkout-test", "project": "growth", "status": "running", "hash_version": 1,
        "hypothesis": "one page converts better", "condition": {"country": {"$in": ["GB"]}},
        "variations": [{"key": "control", "name": "Control", "weight": 0.5},
                       {"key": "one-page", "weight": 0.5}
                       ],
        "namespaces": [{"namespace": "checkout", "end": 0.5}],
        "phases": [{"started_at": "2026-11-01T09:00:00Z", "coverage": 0.5}],
        "metrics": {"primary": ["conversion"], "guardrails": ["aov"]},
    }),
    ("holdouts", {"key": "h-2026", "project": "growth", "share": 0.05}),
    ("features", {
        "key": "new-checkout", "project": "growth", "owner": "ana", "tags": ["checkout"],
        "value_type": "string", "default_value": "", "environments": {
            "production": {"enabled": True, "rules": [
                {"type": "force", "value": "staff", "condition": {"email": "a@b.c"},
                 "saved_groups": [{"ids": ["beta"]}]},
                {"id": "ramp", "type": "rollout", "value": "on", "coverage": 0.3,
                 "schedule": {"start_at": "2026-12-01T00:00:00Z"}},
                {"type": "experiment", "experiment": "checkout-test", "values": ["", "1p"],
                 "prerequisites": [{"feature": "kill", "condition": {"value": False}}]},
            ]},
            "staging": {"enabled": False},
        },
    }),
    ("features", {"key": "kill", "kind": "kill-switch", "default_value": 0,
                  "value_type": "number"}),
    ("fact-tables", {"key": "orders", "sql": "SELECT * FROM orders",
                     "columns": [{"name": "amount"}, {"name": "currency", "datatype": "string"}]}),
    ("metrics", {"key": "conversion", "numerator": {"fact_table": "orders"}}),
    ("metrics", {"key": "aov", "type": "ratio", "numerator": {"fact_table": "orders",
                 "column": "amount"}, "denominator": {"fact_table": "orders"},
                 "capping": {"type": "percentile", "value": 0.99}, "retention_days": None}),
]  # fmt: skip


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Registry]:
    """A separate (SQLite) registry holding one or more objects of every kind."""
    platform = Platform(Settings(data_dir=tmp_path / "source"))
    platform.bootstrap()
    for name, body in EVERY_KIND:
        assert platform.registry.save(name, body, "author").status == "published"
    yield platform.registry
    platform.close()


def live_state(registry: Registry) -> dict[str, list[dict[str, Any]]]:
    return {name: [o.model_dump(mode="json") for o in registry.all(name)] for name in cac.ORDER}


def test_export_then_apply_reproduces_the_registry(
    source: Registry, platform: Platform, tmp_path: Path
) -> None:
    text = cac.export(source)
    path = write(tmp_path, "export.yaml", text)
    target = platform.registry
    plan = cac.plan(target, cac.load([path]))
    assert plan.count("unchanged") == 4  # the bootstrapped project and environments
    result = cac.apply(target, plan, "ci")
    assert [c.key for c, _ in result.pending_review] == []
    assert live_state(target) == live_state(source)
    assert cac.export(target) == text
    assert not cac.plan(target, cac.load([path])).has_changes


def test_export_is_readable(source: Registry) -> None:
    docs = list(yaml.safe_load_all(cac.export(source)))
    kinds = [d["kind"] for d in docs]
    assert kinds == sorted(kinds, key=lambda k: cac.ORDER.index(collection(k).name))
    assert {k: kinds.count(k) for k in kinds} == {
        "Project": 2, "Environment": 4, "Attribute": 2, "Namespace": 1, "SavedGroup": 2,
        "Experiment": 1, "Holdout": 1, "Feature": 2, "FactTable": 1, "Metric": 2,
    }  # fmt: skip
    assert all(list(d)[:2] == ["kind", "key"] for d in docs)
    flag = next(d for d in docs if d["key"] == "new-checkout")
    rules = flag["environments"]["production"]["rules"]
    assert [r.get("id") for r in rules] == [None, "ramp", None]  # derived ids are left out
    assert rules[0] == {
        "condition": {"email": "a@b.c"}, "saved_groups": [{"ids": ["beta"]}], "type": "force",
        "value": "staff",
    }  # fmt: skip
    assert flag["environments"]["staging"] == {}
    assert "archived" not in flag and "description" not in flag
    kill = next(d for d in docs if d["key"] == "kill")
    assert kill["default_value"] == 0  # 0 is not the default False, so it is kept
    assert kill["flag_kind"] == "kill-switch"  # "kind" is the document's
    only = list(yaml.safe_load_all(cac.export(source, ["Metric", "fact-tables"])))
    assert [d["key"] for d in only] == ["orders", "aov", "conversion"]
    with pytest.raises(KeyError, match="unknown collection 'flags'"):
        cac.export(source, ["flags"])


def test_the_documented_examples_are_valid_and_apply(platform: Platform, tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "config-as-code.md"
    blocks = [b.split("```", 1)[0] for b in docs.read_text().split("```yaml\n")[1:]]
    examples = [b for b in blocks if b.startswith("kind:")]
    for index, block in enumerate(examples):
        write(tmp_path / "examples", f"{index:02}.yaml", block)
    desired = cac.load([tmp_path / "examples"])
    kinds = {d.obj.__class__.__name__ for d in desired}
    assert kinds == {"Project", "Environment", "Attribute", "SavedGroup", "Namespace",
                     "Experiment", "Holdout", "Feature", "FactTable", "Metric"}  # fmt: skip
    result = cac.apply(platform.registry, cac.plan(platform.registry, desired), "docs")
    # Production requires approval in the example, so what reaches it waits for a reviewer.
    assert {c.key for c, _ in result.pending_review} >= {"new-checkout", "checkout-kill-switch"}
    assert not cac.plan(platform.registry, desired).has_changes
