"""The registry store on SQLite and PostgreSQL: revisions, approvals, audit, filters, races."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import inspect

from liftkit.platform import Platform
from liftkit.registry import Feature, Registry
from liftkit.registry.errors import (
    ApprovalRequired,
    Conflict,
    InvalidObject,
    NotFound,
    ReviewError,
)


def feature(key: str = "checkout", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": key,
        "environments": {"development": {"enabled": True}, "production": {"enabled": False}},
    }
    body.update(fields)
    return body


def test_save_publishes_a_first_version_and_audits_it(platform: Platform) -> None:
    registry = platform.registry
    epoch = registry.epoch()
    revision = registry.save("features", feature(owner="maya"), "user:maya@example.com")
    assert (revision.status, revision.version) == ("published", 1)
    live = registry.get("features", "checkout")
    assert isinstance(live, Feature) and live.owner == "maya"
    assert registry.epoch() == epoch + 1
    entry = registry.audit(collection_name="features", key="checkout")[0]
    assert (entry.action, entry.actor, entry.version) == ("create", "user:maya@example.com", 1)
    assert entry.before is None and entry.after["owner"] == "maya"


def test_drafts_do_not_change_live_until_published(platform: Platform) -> None:
    registry = platform.registry
    registry.save("features", feature(default_value=False), "user:a")
    draft = registry.draft("features", feature(default_value=True), "user:a", message="flip")
    assert draft.status == "draft" and draft.base_version == 1
    assert registry.get("features", "checkout").default_value is False  # type: ignore[attr-defined]
    changes = registry.diff("features", "checkout", draft.version)
    assert [(c.path, c.before, c.after) for c in changes] == [("default_value", False, True)]
    registry.publish("features", "checkout", draft.version, "user:a")
    assert registry.get("features", "checkout").default_value is True  # type: ignore[attr-defined]
    assert [r.status for r in registry.revisions("features", "checkout")] == [
        "published",
        "published",
    ]


def test_open_drafts_lists_what_waits_including_never_published_objects(
    platform: Platform,
) -> None:
    registry = platform.registry
    registry.save("features", feature("live"), "user:a")
    waiting = registry.draft("features", feature("live", owner="b"), "user:b")
    new = registry.draft("features", feature("brand-new"), "user:c")
    dropped = registry.draft("features", feature("dropped"), "user:c")
    registry.discard("features", "dropped", dropped.version, "user:c")
    published = registry.draft("features", feature("live", owner="d"), "user:d")
    registry.publish("features", "live", published.version, "user:d")
    found = [(r.key, r.version, r.status) for r in registry.open_drafts("features")]
    assert found == [("live", waiting.version, "draft"), ("brand-new", new.version, "draft")]
    assert registry.open_drafts("experiments") == []


def test_publishing_a_stale_draft_is_a_conflict(platform: Platform) -> None:
    registry = platform.registry
    registry.save("features", feature(), "user:a")
    stale = registry.draft("features", feature(owner="a"), "user:a")
    registry.save("features", feature(owner="b"), "user:b")
    with pytest.raises(Conflict, match="drafted from version 1, but version 3 is live"):
        registry.publish("features", "checkout", stale.version, "user:a")
    assert registry.get("features", "checkout").owner == "b"  # type: ignore[attr-defined]


def test_revert_republishes_an_old_version_as_a_new_revision(platform: Platform) -> None:
    registry = platform.registry
    registry.save("features", feature(default_value=False), "user:a")
    registry.save("features", feature(default_value=True), "user:a")
    reverted = registry.revert("features", "checkout", 1, "user:b")
    assert reverted.version == 3 and reverted.message == "revert to version 1"
    assert registry.get("features", "checkout").default_value is False  # type: ignore[attr-defined]
    with pytest.raises(ReviewError):
        draft = registry.draft("features", feature(owner="x"), "user:a")
        registry.revert("features", "checkout", draft.version, "user:a")


def test_delete_hides_the_object_and_keeps_its_history(platform: Platform) -> None:
    registry = platform.registry
    registry.save("features", feature(), "user:a")
    registry.delete("features", "checkout", "user:a")
    assert registry.find("features", "checkout") is None
    assert registry.page("features").total == 0
    assert len(registry.revisions("features", "checkout")) == 2
    assert registry.audit(key="checkout")[0].action == "delete"
    with pytest.raises(NotFound):
        registry.delete("features", "checkout", "user:a")
    registry.revert("features", "checkout", 1, "user:a")  # an undo
    assert registry.find("features", "checkout") is not None


def test_production_changes_need_a_reviewer_who_is_not_the_author(platform: Platform) -> None:
    registry = platform.registry
    registry.save("environments", {"key": "production", "requires_approval": True}, "user:admin")
    dev_only = registry.save("features", feature(), "user:a")
    assert dev_only.status == "pending_review"  # creating touches every environment it has
    with pytest.raises(ReviewError, match="someone other than its author"):
        registry.approve("features", "checkout", dev_only.version, "user:a")
    registry.approve("features", "checkout", dev_only.version, "user:b")
    assert registry.publish("features", "checkout", dev_only.version, "user:a").status == (
        "published"
    )
    # A change confined to development goes straight through ...
    body = feature()
    body["environments"]["development"]["rules"] = [{"type": "force", "value": True}]
    assert registry.save("features", body, "user:a").status == "published"
    # ... one that turns production on waits for review, and cannot be forced through.
    body["environments"]["production"]["enabled"] = True
    pending = registry.save("features", body, "user:a")
    assert pending.status == "pending_review"
    assert registry.get("features", "checkout").environments["production"].enabled is False  # type: ignore[attr-defined]
    registry.discard("features", "checkout", pending.version, "user:a")
    direct = registry.draft("features", body, "user:a")
    with pytest.raises(ApprovalRequired):
        registry.publish("features", "checkout", direct.version, "user:a")


def test_experiment_changes_need_review_where_a_feature_runs_them(platform: Platform) -> None:
    registry = platform.registry
    registry.save("environments", {"key": "production", "requires_approval": True}, "user:admin")
    experiment = {"key": "exp", "status": "running"}
    assert registry.save("experiments", experiment, "user:a").status == "published"
    rule = {"type": "experiment", "experiment": "exp", "values": [False, True]}
    body = feature()
    body["environments"] = {"development": {"enabled": True, "rules": [rule]}}
    registry.save("features", body, "user:a")
    experiment["coverage"] = 0.5
    assert registry.save("experiments", experiment, "user:a").status == "published"
    body["environments"]["production"] = {"enabled": True, "rules": [rule]}
    revision = registry.save("features", body, "user:a")
    registry.approve("features", "checkout", revision.version, "user:b")
    registry.publish("features", "checkout", revision.version, "user:a")
    experiment["coverage"] = 0.2
    assert registry.save("experiments", experiment, "user:a").status == "pending_review"


def test_invalid_bodies_name_the_field(platform: Platform) -> None:
    registry = platform.registry
    with pytest.raises(InvalidObject) as info:
        registry.save("features", feature(value_type="number", default_value="x"), "user:a")
    assert "default_value" in str(info.value)
    with pytest.raises(InvalidObject) as info:
        registry.save("experiments", {"key": "e", "coverage": 2}, "user:a")
    assert info.value.errors[0]["loc"] == ["coverage"]
    with pytest.raises(InvalidObject) as info:
        registry.save("features", {"key": "bad key with spaces"}, "user:a")
    assert info.value.errors[0]["loc"] == ["key"]
    assert registry.page("features").total == 0


def test_filters_and_pagination(platform: Platform) -> None:
    registry = platform.registry
    for index in range(12):
        registry.save(
            "features",
            feature(
                f"flag-{index:02d}",
                name=f"Flag {index}",
                owner="maya" if index % 2 else "sam",
                tags=["ui"] if index % 3 == 0 else ["api", "beta"],
                kind="kill-switch" if index == 5 else "release",
                project="checkout" if index < 4 else "default",
            ),
            "user:a",
        )
    page = registry.page("features", limit=5, offset=10)
    assert page.total == 12 and [f.key for f in page.items] == ["flag-10", "flag-11"]
    assert registry.page("features", owner="maya").total == 6
    assert registry.page("features", tag="ui").total == 4
    assert registry.page("features", tag="bet").total == 0  # whole tags only
    assert registry.page("features", status="kill-switch").items[0].key == "flag-05"
    assert registry.page("features", project="checkout").total == 4
    assert [f.key for f in registry.page("features", q="FLAG 1").items] == [
        "flag-01",
        "flag-10",
        "flag-11",
    ]


def test_concurrent_publishers_never_lose_an_update(platform: Platform) -> None:
    """Ten threads each draft from the live version and publish: exactly one wins per round."""
    registry = platform.registry
    registry.save("features", feature(tags=[]), "user:a")
    outcomes: list[str] = []

    def attempt(index: int) -> None:
        try:
            draft = registry.draft("features", feature(tags=[f"t{index}"]), f"user:{index}")
            registry.publish("features", "checkout", draft.version, f"user:{index}")
            outcomes.append("published")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    published = [r for r in registry.revisions("features", "checkout") if r.status == "published"]
    assert outcomes.count("published") == len(published) - 1
    assert outcomes.count("published") + outcomes.count("conflict") == 10
    # The live object is the last one published, and the versions are distinct.
    live = registry.get("features", "checkout")
    assert live.tags == published[-1].body["tags"]  # type: ignore[attr-defined,index]
    assert len({r.version for r in registry.revisions("features", "checkout")}) == 11


def test_publish_hooks_see_every_publish(platform: Platform) -> None:
    seen: list[tuple[str, int]] = []
    platform.registry.on_publish.append(lambda p: seen.append((p.key, p.version)))
    platform.registry.save("features", feature(), "user:a")
    platform.registry.draft("features", feature(owner="x"), "user:a")
    assert seen == [("checkout", 1)]


def test_schema_matches_the_migrations(platform: Platform) -> None:
    """The tables Alembic created are the ones tables.py declares (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from liftkit.registry.tables import metadata

    with platform.engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert compare_metadata(context, metadata) == []
        assert context.get_current_revision() is not None
    tables = set(inspect(platform.engine).get_table_names())
    assert {"objects", "revisions", "audit_log", "users", "api_keys"} <= tables


def test_reopening_runs_no_migration_twice_and_keeps_data(platform: Platform) -> None:
    platform.registry.save("features", feature(), "user:a")
    again = Registry(platform.engine)
    from liftkit.registry import database

    database.upgrade(platform.engine)
    assert again.get("features", "checkout").key == "checkout"
