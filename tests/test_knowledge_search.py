"""Full-text search (SQLite FTS5, PostgreSQL tsvector) and near-duplicate detection."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from liftkit.knowledge.records import record_of
from liftkit.knowledge.search import Filters, Index, _fts_query
from liftkit.knowledge.similar import similar, stem, thesaurus
from liftkit.platform import Platform
from liftkit.registry.briefs import Brief

CORPORA = Path(__file__).parent / "fixtures" / "kb"


def _brief(key: str, **fields: Any) -> dict[str, Any]:
    return {"key": key, "name": fields.pop("name", key), **fields}


@pytest.fixture
def indexed(platform: Platform) -> Platform:
    save = platform.registry.save
    save("briefs", _brief(
        "free-shipping", name="Free shipping threshold lowered", team="payments",
        tags=["shipping", "pricing"], surface="cart", metrics={"primary": ["orders"]},
        hypothesis={"change": "lowering the free shipping threshold to $49",
                    "audience": "US shoppers", "result": "more orders",
                    "reason": "most baskets are just under $75"},
        stage="archived", conclusion={"outcome": "lost", "learnings": "Margins fell by 3%."},
    ), "user:ann")  # fmt: skip
    save("briefs", _brief(
        "express-pay", name="Express pay buttons", team="payments", tags=["mobile"],
        surface="checkout", metrics={"primary": ["orders"]},
        hypothesis={"change": "Apple Pay above the form", "audience": "mobile shoppers",
                    "result": "more completed checkouts", "reason": "typing cards is slow"},
        stage="archived", conclusion={"outcome": "won", "learnings": "Wallet users convert."},
    ), "user:bob")  # fmt: skip
    save("briefs", _brief(
        "quiz-skip", name="Skip the onboarding quiz", team="growth", tags=["onboarding"],
        surface="onboarding", metrics={"primary": ["activation"]},
        description="Shipping a skip link for the taste quiz", stage="planned",
        planned_start="2026-12-01",
    ), "user:cy")  # fmt: skip
    return platform


def keys(index: Index, query: str = "", **filters: Any) -> list[str]:
    hits, total = index.search(query, Filters(**filters))
    assert total == len(hits)
    return [h.key for h in hits]


def test_search_stems_ranks_and_filters(indexed: Platform) -> None:
    index = Index(indexed)
    # "shipped" and "shipping" share the stem "ship"; the title match ranks first.
    assert keys(index, "shipped")[0] == "free-shipping"
    assert set(keys(index, "shipped")) == {"free-shipping", "quiz-skip"}
    assert keys(index, "shipping -quiz") == ["free-shipping"]
    assert set(keys(index, "wallet OR margins")) == {"express-pay", "free-shipping"}
    assert keys(index, '"apple pay"') == ["express-pay"]
    assert keys(index, '"pay apple"') == []
    assert keys(index, "nothing-like-this") == []
    assert keys(index, "orders", outcome="won") == ["express-pay"]
    assert keys(index, tag="pricing") == ["free-shipping"]
    assert keys(index, metric="activation") == ["quiz-skip"]
    assert keys(index, team="payments", stage="archived") == ["express-pay", "free-shipping"]
    assert keys(index, date_from=datetime(2026, 11, 1, tzinfo=UTC)) == ["quiz-skip"]
    assert keys(index, date_to=datetime(2026, 11, 1, tzinfo=UTC)) == []
    hit = index.search("margins")[0][0]
    assert "**" in hit.snippet and hit.outcome == "lost" and hit.tags == ["shipping", "pricing"]


def test_the_index_follows_every_change(indexed: Platform) -> None:
    index = Index(indexed)
    assert keys(index, "wishlist") == []
    assert index.refresh() is False  # nothing changed since the last search
    brief = indexed.registry.get("briefs", "express-pay").model_dump()
    brief["conclusion"]["learnings"] = "Saved carts behave like a wishlist."
    indexed.registry.save("briefs", brief, "user:bob")
    assert keys(index, "wishlist") == ["express-pay"]
    indexed.registry.delete("briefs", "express-pay", "user:bob")
    assert keys(index, "wishlist") == []
    # Experiments without a brief are searchable too (a brief is made up for them).
    legacy = {
        "key": "legacy-banner",
        "name": "Legacy banner",
        "hypothesis": "Banners sell wishlists",
    }
    indexed.registry.save("experiments", legacy, "user:bob")
    assert keys(index, "wishlists") == ["legacy-banner"]


def test_query_syntax_is_translated_for_fts5() -> None:
    assert _fts_query("free shipping") == '"free" AND "shipping"'
    assert _fts_query('"free shipping" -quiz') == '("free shipping") NOT "quiz"'
    assert _fts_query("a OR b c") == '("a" OR "b") AND "c"'
    assert _fts_query("-only -negative") is None
    assert _fts_query("NEAR( drop; table") == '"NEAR" AND "drop" AND "table"'


def _corpus(name: str) -> tuple[list[Any], list[dict[str, Any]]]:
    data = yaml.safe_load((CORPORA / name).read_text())
    records = [
        record_of(Brief.model_validate({**b, "stage": "archived"}), None, None, synthetic=False)
        for b in data["briefs"]
    ]
    return records, data["queries"]


def _rank(corpus: str) -> list[tuple[str, list[Any]]]:
    records, queries = _corpus(corpus)
    return [
        (q["expected"], similar(Brief.model_validate(q["brief"]), records, limit=3))
        for q in queries
        if q["expected"] is not None
    ]


def test_the_true_near_duplicate_ranks_first_and_is_flagged() -> None:
    """Realistic briefs: paraphrased re-proposals among same-surface, same-metric distractors.

    This corpus shaped the thesaurus and the default threshold (in-sample): every true
    duplicate must rank first, be flagged, and need a justification when it failed.
    """
    ranked = _rank("corpus.yaml")
    assert len(ranked) >= 9
    for expected, matches in ranked:
        assert matches[0].key == expected, (expected, matches)
        assert matches[0].near_duplicate
        assert matches[0].failed == (matches[0].outcome in ("lost", "inconclusive"))
    assert sum(m[0].failed for _, m in ranked) >= 5


def test_held_out_briefs_written_blind_to_the_matcher() -> None:
    """A second corpus (another business) written after the matcher was fixed: generalisation.

    Measured: 6 of 7 true duplicates rank first, all 7 in the top two (docs/knowledge.md).
    """
    ranked = _rank("holdout.yaml")
    first = sum(matches[0].key == expected for expected, matches in ranked)
    top_two = sum(expected in {m.key for m in matches[:2]} for expected, matches in ranked)
    flagged = sum(
        any(m.key == expected and m.near_duplicate for m in matches) for expected, matches in ranked
    )
    assert first >= len(ranked) - 1
    assert top_two == len(ranked)
    assert flagged >= len(ranked) - 1


def test_similarity_leaves_out_the_brief_and_its_experiment() -> None:
    records, _ = _corpus("corpus.yaml")
    own = records[0].brief
    matches = similar(own, records, limit=50)
    assert own.key not in {m.key for m in matches}
    assert len(matches) == len(records) - 1
    assert matches == sorted(matches, key=lambda m: (-m.score, m.key))


def test_stems_and_synonyms() -> None:
    assert stem("thresholds") == stem("threshold") == "threshold"
    assert stem("recommendations") == stem("recommendation")
    assert stem("shipped") == stem("shipping")
    table = thesaurus([["wishlist", "save-for-later"], ["delivery", "dispatch"]])
    assert table["dispatch"] == table["delivery"] == table["postage"] == "shipping"
    assert table["save-for-later"] == table["wishlist"] == "favourite"
