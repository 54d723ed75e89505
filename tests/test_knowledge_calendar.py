"""The experiment calendar: dates from briefs and phases, conflicts, audiences, the iCal feed."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from liftkit.knowledge.calendar import Entry, audiences_overlap, conflicts, entries, to_ics
from liftkit.knowledge.records import Record, record_of
from liftkit.registry.briefs import Brief
from liftkit.registry.experiments import Experiment, NamespaceRange, Phase
from liftkit.sdk._conditions import eval_condition

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def brief(key: str, **fields: Any) -> Brief:
    fields.setdefault("name", key.replace("-", " ").title())
    fields.setdefault("stage", "planned")
    return Brief(key=key, **fields)


def experiment(
    key: str, *, start: datetime = T0, end: datetime | None = None, **fields: Any
) -> Experiment:
    fields.setdefault("status", "stopped" if end else "running")
    return Experiment(key=key, phases=[Phase(started_at=start, ended_at=end)], **fields)


def record(b: Brief, e: Experiment | None = None) -> Record:
    if e is not None:
        b = b.model_copy(update={"experiment": e.key})
    return record_of(b, e, None, synthetic=False)


def running(key: str, *, surface: str = "checkout", start: datetime = T0, **exp: Any) -> Record:
    """A running experiment with a brief on ``surface``, started ``start``."""
    return record(brief(key, surface=surface, team="growth"), experiment(key, start=start, **exp))


def one(records: list[Record]) -> Entry:
    [entry] = entries(records, now=NOW)
    return entry


# --- entries -----------------------------------------------------------------------------------


def test_a_planned_brief_spans_its_planned_days_inclusive() -> None:
    b = brief(
        "plan",
        planned_start=date(2026, 4, 1),
        planned_end=date(2026, 4, 14),
        targeting={"country": "GB"},
        owners=["ana", "bo"],
        surface="search",
        team="discovery",
    )
    entry = one([record(b)])
    assert entry.start == datetime(2026, 4, 1, tzinfo=UTC)
    assert entry.end == datetime(2026, 4, 15, tzinfo=UTC)  # the 14th is a day of the test
    assert entry.planned and entry.experiment is None and entry.stage == "planned"
    assert entry.condition == {"country": "GB"} and entry.owners == ("ana", "bo")
    assert (entry.surface, entry.team, entry.project) == ("search", "discovery", "default")


def test_a_plan_without_an_end_lasts_its_minimum_days() -> None:
    b = brief("plan", planned_start=date(2026, 4, 1), criteria={"min_days": 10}, stage="in_review")
    entry = one([record(b)])
    assert entry.end - entry.start == timedelta(days=10) and entry.stage == "in_review"


def test_a_running_experiment_starts_at_its_first_phase_and_lasts_what_it_was_sized_for() -> None:
    e = experiment("run", analysis={"planned_days": 21}, condition={"plan": "pro"})
    e.phases.append(Phase(started_at=T0 + timedelta(days=3)))
    b = brief("run", planned_start=date(2026, 2, 1), targeting={"plan": "free"})
    entry = one([record(b, e)])
    assert entry.start == T0 and entry.end == T0 + timedelta(days=21)
    assert not entry.planned and entry.experiment == "run" and entry.stage == "running"
    assert entry.condition == {"plan": "pro"}  # the experiment's targeting wins over the brief's
    b = brief("run", criteria={"min_days": 30})
    assert one([record(b, e)]).end == T0 + timedelta(days=30)


def test_a_running_experiment_uses_the_planned_end_unless_a_late_start_made_it_stale() -> None:
    e = experiment("run")
    entry = one([record(brief("run", planned_end=date(2026, 3, 20)), e)])
    assert entry.end == datetime(2026, 3, 21, tzinfo=UTC)
    stale = one([record(brief("run", planned_end=date(2026, 3, 1)), e)])
    assert stale.end == T0 + timedelta(days=28)


def test_a_stopped_experiment_stays_until_decided_and_ends_when_it_stopped() -> None:
    stop = T0 + timedelta(days=12, hours=3)
    e = experiment(
        "done",
        end=stop,
        namespaces=[NamespaceRange(namespace="pricing", start=0, end=0.5)],
        hash_attribute="device_id",
    )
    entry = one([record(brief("done"), e)])
    assert (entry.stage, entry.start, entry.end) == ("analysing", T0, stop)
    assert entry.namespaces == (NamespaceRange(namespace="pricing", start=0, end=0.5),)
    assert entry.hash_attribute == "device_id"
    decided = e.model_copy(update={"result": "lost"})
    assert entries([record(brief("done"), decided)], now=NOW) == []


def test_only_calendar_stages_with_a_start_are_shown_and_they_are_sorted_by_start() -> None:
    records = [
        record(brief("idea", stage="idea", planned_start=date(2026, 3, 1))),
        record(brief("no-date")),
        record(brief("later", planned_start=date(2026, 5, 1))),
        record(brief("archived", stage="archived", planned_start=date(2026, 3, 1))),
        running("now"),
        record(brief("sooner", planned_start=date(2026, 4, 1))),
    ]
    assert [e.key for e in entries(records, now=NOW)] == ["now", "sooner", "later"]


# --- conflicts ---------------------------------------------------------------------------------


def keys(found: list[Any]) -> list[tuple[str, str]]:
    return [(c.a, c.b) for c in found]


def test_same_surface_at_the_same_time_for_overlapping_audiences_conflicts() -> None:
    later = T0 + timedelta(days=10)
    records = [
        running("b-button", condition={"country": {"$in": ["GB", "US"]}}, start=later),
        running("a-copy", condition={"country": "GB"}),
    ]
    [conflict] = conflicts(entries(records, now=NOW))
    assert (conflict.a, conflict.b) == ("a-copy", "b-button")
    assert conflict.reasons == ("same surface 'checkout'",)
    assert (conflict.start, conflict.end) == (later, T0 + timedelta(days=28))


def test_disjoint_audiences_do_not_conflict() -> None:
    records = [
        running("gb", condition={"country": "GB"}),
        running("us", condition={"country": {"$eq": "US"}}),
    ]
    assert conflicts(entries(records, now=NOW)) == []


def test_tests_that_do_not_overlap_in_time_do_not_conflict() -> None:
    first = record(
        brief("first", surface="checkout", planned_start=date(2026, 4, 1),
              planned_end=date(2026, 4, 14))
    )  # fmt: skip
    after = record(brief("after", surface="checkout", planned_start=date(2026, 4, 15)))
    same_day = record(brief("same-day", surface="checkout", planned_start=date(2026, 4, 14)))
    assert conflicts(entries([first, after], now=NOW)) == []
    [conflict] = conflicts(entries([first, same_day], now=NOW))
    assert (conflict.start, conflict.end) == (
        datetime(2026, 4, 14, tzinfo=UTC),
        datetime(2026, 4, 15, tzinfo=UTC),
    )


def test_disjoint_slices_of_one_namespace_never_conflict_even_on_one_surface() -> None:
    records = [
        running("low", namespaces=[NamespaceRange(namespace="pricing", start=0, end=0.5)]),
        running("high", namespaces=[NamespaceRange(namespace="pricing", start=0.5, end=1)]),
    ]
    assert conflicts(entries(records, now=NOW)) == []


def test_a_namespace_only_separates_experiments_hashed_on_the_same_attribute() -> None:
    records = [
        running("low", namespaces=[NamespaceRange(namespace="pricing", start=0, end=0.5)]),
        running(
            "high",
            surface="search",
            hash_attribute="device_id",
            namespaces=[NamespaceRange(namespace="pricing", start=0.5, end=1)],
        ),
    ]
    [conflict] = conflicts(entries(records, now=NOW))
    assert conflict.reasons == (
        "namespace 'pricing' does not separate them (hashed on 'device_id' and 'id')",
    )


def test_overlapping_slices_of_one_namespace_conflict_across_surfaces() -> None:
    records = [
        running("a", surface="search", namespaces=[NamespaceRange(namespace="pricing", end=0.6)]),
        running("b", surface="home", namespaces=[NamespaceRange(namespace="pricing", start=0.5)]),
        running("c", surface="cart", namespaces=[NamespaceRange(namespace="other", end=0.6)]),
    ]
    [conflict] = conflicts(entries(records, now=NOW))
    assert (conflict.a, conflict.b) == ("a", "b")
    assert conflict.reasons == ("namespace 'pricing' ranges overlap",)
    assert conflicts(entries(records[1:], now=NOW)) == []


def test_different_projects_and_different_or_unknown_surfaces_never_conflict() -> None:
    other = record(
        brief("theirs", surface="checkout", project="mobile"),
        experiment("theirs", project="mobile"),
    )
    assert conflicts(entries([running("ours"), other], now=NOW)) == []
    assert conflicts(entries([running("a", surface=""), running("b", surface="")], now=NOW)) == []
    assert conflicts(entries([running("a", surface="x"), running("b", surface="y")], now=NOW)) == []


def test_a_brief_without_an_experiment_is_checked_with_its_targeting() -> None:
    plan = record(
        brief("plan", surface="checkout", planned_start=date(2026, 3, 5),
              targeting={"country": "US"})
    )  # fmt: skip
    assert conflicts(entries([plan, running("gb", condition={"country": "GB"})], now=NOW)) == []
    [conflict] = conflicts(entries([plan, running("all")], now=NOW))
    assert (conflict.a, conflict.b) == ("all", "plan")


# --- audiences ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ({}, {"country": "GB"}, True),
        ({"country": "GB"}, {"country": "US"}, False),
        ({"country": "GB"}, {"country": {"$in": ["US", "CA"]}}, False),
        ({"country": {"$in": ["GB", "US"]}}, {"country": {"$in": ["US", "CA"]}}, True),
        ({"country": {"$in": ["GB"]}}, {"country": {"$nin": ["GB", "US"]}}, False),
        ({"country": "GB"}, {"country": {"$ne": "GB"}}, False),
        ({"country": {"$ne": "GB"}}, {"country": {"$nin": ["US"]}}, True),
        ({"country": "GB", "plan": "pro"}, {"country": "GB", "plan": "free"}, False),
        ({"country": "GB"}, {"plan": "free"}, True),
        ({"$and": [{"country": "GB"}]}, {"country": "US"}, False),
        ({"$or": [{"country": "GB"}]}, {"country": "US"}, True),
        ({"$not": {"country": "US"}}, {"country": "US"}, True),  # undecided, so overlapping
        ({"country": {"$regex": "^G"}}, {"country": "US"}, True),
        ({"country": {"$in": ["GB"], "$exists": True}}, {"country": "US"}, False),
        ({"age": 30}, {"age": {"$in": [31, 32]}}, False),
        ({"age": 30}, {"age": 30.0}, True),
        ({"age": "30"}, {"age": 31}, True),  # mixed types: loose equality could match
        ({"loggedIn": True}, {"loggedIn": False}, False),
        ({"tags": ["a"]}, {"tags": ["b"]}, True),  # lists as values: not reasoned about
        ({"country": {"$in": "GB"}}, {"country": "US"}, True),
    ],
)
def test_audiences_are_disjoint_only_when_an_attribute_shows_it(
    a: dict[str, Any], b: dict[str, Any], overlap: bool
) -> None:
    assert audiences_overlap(a, b) is overlap
    assert audiences_overlap(b, a) is overlap


COUNTRIES = ["GB", "US", "FR"]
ATTRIBUTES = ["country", "plan"]
_value = st.sampled_from(COUNTRIES)
_values = st.lists(_value, max_size=3, unique=True)
_decidable = st.one_of(
    _value,
    st.builds(lambda v: {"$eq": v}, _value),
    st.builds(lambda v: {"$in": v}, _values),
    st.builds(lambda v: {"$ne": v}, _value),
    st.builds(lambda v: {"$nin": v}, _values),
)
_clause = st.one_of(
    _decidable,
    st.builds(lambda v: {"$regex": v}, st.sampled_from(["^G", "S$", "."])),
    st.builds(lambda v: {"$gt": v}, _value),
    st.builds(lambda v: {"$exists": v}, st.booleans()),
    st.dictionaries(st.sampled_from(["$in", "$nin", "$ne", "$gte"]), _value | _values, min_size=1),
)
_flat = st.dictionaries(st.sampled_from(ATTRIBUTES), _clause, max_size=2)
_nested = st.recursive(
    _flat,
    lambda inner: st.one_of(
        st.builds(lambda parts: {"$or": parts}, st.lists(inner, max_size=2)),
        st.builds(lambda parts: {"$and": parts}, st.lists(inner, max_size=2)),
        st.builds(lambda part: {"$not": part}, inner),
        st.builds(lambda x, y: {**x, **y}, _flat, inner),
    ),
    max_leaves=4,
)
conditions = st.one_of(
    st.dictionaries(st.sampled_from(ATTRIBUTES), _decidable, min_size=1, max_size=2), _nested
)
#: Every user these conditions can tell apart: each attribute a known value, another one, or unset.
USERS = [
    {k: v for k, v in (("country", c), ("plan", p)) if v is not None}
    for c in [*COUNTRIES, "DE", None]
    for p in [*COUNTRIES, "DE", None]
]


@settings(max_examples=300, deadline=None)
@given(conditions, conditions)
def test_audiences_overlap_is_symmetric_and_never_misses_a_shared_user(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    overlap = audiences_overlap(a, b)
    assert overlap is audiences_overlap(b, a)
    shared = [u for u in USERS if eval_condition(u, a) and eval_condition(u, b)]
    if shared:
        assert overlap, f"both match {shared[0]}"


@settings(max_examples=200, deadline=None)
@given(st.lists(_value, min_size=1, unique=True), st.lists(_value, min_size=1, unique=True))
def test_equality_sets_overlap_exactly_when_they_intersect(
    left: list[str], right: list[str]
) -> None:
    a = {"country": left[0] if len(left) == 1 else {"$in": left}}
    b = {"country": {"$in": right}}
    assert audiences_overlap(a, b) is bool(set(left) & set(right))
    assert audiences_overlap(a, a)


# --- the iCalendar feed ------------------------------------------------------------------------


def feed_records() -> list[Record]:
    long_name = "Checkout: a much longer headline — with ünïcödé — to make the summary fold"
    hypothesis = {
        "change": "showing delivery dates in the basket",
        "audience": "returning customers",
        "result": "raise checkout completion",
        "reason": "uncertainty about delivery makes people leave",
    }
    return [
        record(
            brief("delivery-dates", name=long_name, surface="checkout", team="growth",
                  owners=["ana@example.com", "bo@example.com"], hypothesis=hypothesis),
            experiment("delivery-dates"),
        ),
        running("express-badge", start=T0 + timedelta(days=2)),
        record(brief("search-ranking", surface="search", team="discovery",
                     planned_start=date(2026, 4, 1), planned_end=date(2026, 4, 14))),
    ]  # fmt: skip


def test_the_feed_is_a_subscribable_calendar_with_one_event_per_entry() -> None:
    found = entries(feed_records(), now=NOW)
    clashes = conflicts(found)
    assert keys(clashes) == [("delivery-dates", "express-badge")]
    body = to_ics(
        found, clashes, calendar_name="Experiments", base_url="https://lift.example/", now=NOW
    )

    cal = Calendar.from_ical(body)
    assert str(cal["VERSION"]) == "2.0" and str(cal["X-WR-CALNAME"]) == "Experiments"
    assert "liftkit" in str(cal["PRODID"])
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {
        "delivery-dates@liftkit",
        "express-badge@liftkit",
        "search-ranking@liftkit",
    }
    delivery = events["delivery-dates@liftkit"]
    assert str(delivery["SUMMARY"]).startswith("⚠ Checkout: a much longer headline")
    assert str(delivery["SUMMARY"]).endswith("[running]")
    assert delivery.decoded("DTSTART") == T0 and delivery.decoded("DTEND") == T0 + timedelta(28)
    assert delivery.decoded("DTSTAMP") == NOW
    assert str(delivery["URL"]) == "https://lift.example/knowledge/briefs/delivery-dates"
    assert [str(c) for c in delivery["CATEGORIES"].cats] == ["growth", "checkout"]
    description = str(delivery["DESCRIPTION"])
    assert "We think showing delivery dates in the basket for returning customers" in description
    assert "ana@example.com, bo@example.com" in description
    assert "Team: growth" in description and "Surface: checkout" in description
    assert "express-badge" in description and "same surface 'checkout'" in description
    plan = events["search-ranking@liftkit"]
    assert str(plan["SUMMARY"]) == "Search Ranking [planned]"
    assert str(plan["STATUS"]) == "TENTATIVE" and str(delivery["STATUS"]) == "CONFIRMED"
    assert plan.decoded("DTEND") == datetime(2026, 4, 15, tzinfo=UTC)

    raw = body.split(b"\r\n")
    assert raw[0] == b"BEGIN:VCALENDAR" and raw[-1] == b"" and raw[-2] == b"END:VCALENDAR"
    assert sum(line == b"BEGIN:VEVENT" for line in raw) == 3
    assert b"UID:delivery-dates@liftkit" in raw and b"VERSION:2.0" in raw
    assert b"X-WR-CALNAME:Experiments" in raw
    for name in (b"DTSTART", b"DTEND", b"DTSTAMP"):
        values = [line for line in raw if line.startswith(name + b":")]
        assert len(values) == 3
        assert all(re.fullmatch(rb"[A-Z]+:\d{8}T\d{6}Z", v) for v in values), values
    assert b"DTSTART:20260302T093000Z" in raw
    assert all(len(line) <= 75 for line in raw), max(raw, key=len)
    assert any(line.startswith(b" ") for line in raw)  # long lines were folded
    assert b"\n" not in body.replace(b"\r\n", b"")  # CRLF line ends only


def test_the_feed_is_stable_for_the_same_calendar() -> None:
    found = entries(feed_records(), now=NOW)
    first = to_ics(found, conflicts(found), calendar_name="X", base_url="https://l", now=NOW)
    again = to_ics(found, conflicts(found), calendar_name="X", base_url="https://l", now=NOW)
    assert first == again
    empty = Calendar.from_ical(to_ics([], [], calendar_name="X", base_url="https://l", now=NOW))
    assert empty.walk("VEVENT") == []


def test_an_experiment_stopped_at_once_still_gets_a_valid_event() -> None:
    e = experiment("blip", end=T0)
    body = to_ics(entries([record(brief("blip"), e)], now=NOW), [], calendar_name="X",
                  base_url="https://l", now=NOW)  # fmt: skip
    [event] = Calendar.from_ical(body).walk("VEVENT")
    assert event.decoded("DTEND") > event.decoded("DTSTART")
