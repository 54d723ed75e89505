"""Four months of the demo organisation, told in order on a clock the story moves.

Each storyline (an old inconclusive test, a won test, a rollout the playbook rolled back, the
running tests, a rollout mid-ramp, the ideas queue) schedules its steps at "days ago"; ``tell``
runs all steps in time order, setting the platform's clock first. Every change goes through the
registry, the ``KnowledgeBase`` facade, the analysis runner or the playbook ``Controller`` with the
actor who would have made it, so revisions, the audit log, snapshots, the playbook timelines and
flag hygiene carry realistic dates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from liftkit.demo import _briefs as briefs
from liftkit.demo._script import CHECKOUT_METRICS, Story, experiment_flag
from liftkit.demo._traffic import Arm, Visitors
from liftkit.demo._world import ACTOR, DemoClock, actor, everywhere
from liftkit.platform import Platform

#: The rolled-back rollout's planted regression: checkout errors several times as frequent.
BROKEN = {"control": Arm(0.10, error=0.02), "rollout": Arm(0.10, error=0.10)}
NEUTRAL = {"control": Arm(0.10), "rollout": Arm(0.10)}


def before_production() -> dict[str, Any]:
    """On for developers and in staging; production waits for its playbook's ramp."""
    on = {"enabled": True, "rules": [{"type": "force", "value": True}]}
    return {"development": on, "staging": on, "production": {"enabled": True, "rules": []}}


# -- the storylines --------------------------------------------------------------------------------


def knowledge_base(s: Story) -> None:
    s.on(110, lambda: s.save("knowledge-settings", briefs.SETTINGS, ACTOR, "taxonomy and ICE"))
    s.on(110, lambda: s.save("brief-templates", briefs.TEMPLATE, ACTOR, "the standard brief"))


def trust_badges(s: Story) -> None:
    """Ran 75 to 61 days ago; nothing moved; concluded inconclusive."""
    dana, sam = actor("dana"), actor("sam")
    visitors = Visitors("tb", s.rng)

    def create() -> None:
        s.save("experiments", {
            "key": "trust-badges", "name": "Payment security badges", "project": "checkout",
            "owner": "dana", "tags": ["trust"], "metrics": CHECKOUT_METRICS,
            "hypothesis": briefs.TRUST_BADGES["hypothesis"]["change"],
            "variations": [{"key": "control", "payload": False},
                           {"key": "badges", "payload": True}],
        }, dana, "new experiment")  # fmt: skip
        flag = experiment_flag("trust-badges", "trust-badges", "dana",
                               description="Security badges beside the pay button.")  # fmt: skip
        s.save("features", flag, dana, "flag for the test")
        s.brief({**briefs.TRUST_BADGES, "stage": "planned"}, dana)

    def launch() -> None:
        s.start("trust-badges", sam)
        arms = {"control": Arm(0.10), "badges": Arm(0.1005)}
        s.simulate(visitors, "trust-badges", arms, 14, exposed=max(s.users // 2, 4000))

    def finish() -> None:
        s.stop("trust-badges", sam, "inconclusive", "control", "no effect after two weeks")
        s.analyse("trust-badges", dana)

    s.on(80, create)
    s.on(75, launch)
    s.on(61, finish)
    s.on(60, lambda: s.kb.conclude("trust-badges", dana, "inconclusive",
                                   briefs.TRUST_BADGES_LEARNINGS))  # fmt: skip


def one_click(s: Story) -> None:
    """Ran 52 to 38 days ago; won; the treatment was released and the brief shipped."""
    sam, dana = actor("sam"), actor("dana")
    visitors = Visitors("oc", s.rng)

    def create() -> None:
        s.save("experiments", {
            "key": "one-click-checkout", "name": "One-click checkout", "owner": "sam",
            "project": "checkout", "tags": ["payments"], "metrics": CHECKOUT_METRICS,
            "hypothesis": briefs.ONE_CLICK["hypothesis"]["change"],
            "variations": [{"key": "control", "payload": False},
                           {"key": "treatment", "payload": True}],
        }, sam, "new experiment")  # fmt: skip
        s.save("features", experiment_flag("one-click", "one-click-checkout", "sam",
               description="The one-click buy button."), sam, "flag for the test")  # fmt: skip
        s.brief({**briefs.ONE_CLICK, "stage": "planned"}, sam)

    def launch() -> None:
        s.start("one-click-checkout", sam)
        arms = {"control": Arm(0.10), "treatment": Arm(0.13)}
        s.simulate(visitors, "one-click", arms, 14, exposed=max(s.users // 2, 8000))

    def finish() -> None:
        s.stop("one-click-checkout", sam, "won", "treatment", "clear win on purchases")
        s.analyse("one-click-checkout", sam)

    def conclude() -> None:
        s.kb.conclude("one-click-checkout", dana, "won", briefs.ONE_CLICK_LEARNINGS)
        s.kb.ship("one-click-checkout", sam)

    s.on(55, create)
    s.on(52, launch)
    s.on(45, lambda: s.analyse("one-click-checkout", dana))
    s.on(38, finish)
    s.on(37, conclude)


def address_autocomplete(s: Story) -> None:
    """A rollout under a playbook, 20 days ago: a guardrail breached, the controller rolled back."""
    dana = actor("dana")
    visitors = Visitors("aa", s.rng)
    playbook = "address-autocomplete-ramp"

    def create() -> None:
        s.save("features", {
            "key": "address-autocomplete", "kind": "release", "project": "checkout",
            "owner": "dana", "tags": ["friction"],
            "description": "Postcode lookup that fills in the delivery address.",
            "environments": before_production(),
        }, dana, "new flag")  # fmt: skip

    def ramp() -> None:
        s.save("playbooks", {
            "key": playbook, "name": "Address autocomplete rollout", "project": "checkout",
            "owner": "dana", "type": "rollout", "feature": "address-autocomplete", "value": True,
            "experiment": "address-autocomplete",
            "stages": [{"coverage": 0.1, "min_hours": 12}, {"coverage": 0.5, "min_hours": 24},
                       {"coverage": 1.0, "min_hours": 24}],
            "guardrails": [{"metric": "error-rate"}, {"metric": "refunds"}],
            "expected_units": 8000,
        }, dana, "ramp with guardrails")  # fmt: skip

    def go_live() -> None:
        s.playbook_step(playbook)  # starts: creates the experiment, 10% coverage
        s.brief({**briefs.ADDRESS, "stage": "planned"}, dana)
        for _ in range(8):  # half days until the guardrail catches the regression
            s.simulate(visitors, "address-autocomplete", BROKEN, 0.5, count=max(s.users // 8, 1500))
            s.clock.advance(0.5)
            if s.playbook_step(playbook) == "rolled-back":
                break
        else:
            raise RuntimeError("demo: the address-autocomplete guardrail never breached")
        s.analyse("address-autocomplete", dana)

    s.on(24, create)
    s.on(21, ramp)
    s.on(20, go_live)
    s.on(17, lambda: s.kb.conclude("address-autocomplete", dana, "lost",
                                   briefs.ADDRESS_LEARNINGS))  # fmt: skip


def pricing(s: Story) -> None:
    """The pricing test, running for nine days, analysed every few days."""
    maya = actor("maya")
    visitors = Visitors("user", s.rng)

    def create() -> None:
        s.save("experiments", {
            "key": "pricing-2026", "name": "Annual plan first", "owner": "maya",
            "hypothesis": "We think showing the annual plan first for new visitors will raise "
            "paid conversion because the monthly price looks lower.",
            "variations": [{"key": "control", "payload": "control"},
                           {"key": "annual-first", "payload": "annual-first"}],
            "namespaces": [{"namespace": "pricing", "start": 0.0, "end": 0.5}],
            "tags": ["pricing"], "metrics": CHECKOUT_METRICS,
            "analysis": {"dimensions": ["country"]},
        }, maya, "new experiment")  # fmt: skip
        s.save("features", {
            "key": "pricing-page", "kind": "experiment", "value_type": "string",
            "default_value": "control", "owner": "maya", "tags": ["pricing"],
            "description": "Which pricing page layout a visitor sees.",
            "environments": everywhere(True, {"type": "experiment", "experiment": "pricing-2026"}),
        }, maya, "flag for the test")  # fmt: skip
        s.brief(briefs.PRICING, maya)

    def launch() -> None:
        s.start("pricing-2026", maya)
        arms = {"control": Arm(0.10), "annual-first": Arm(0.115)}
        s.simulate(visitors, "pricing-page", arms, 9, exposed=s.users)

    s.on(10, create)
    s.on(9, launch)
    for days_ago in (6, 3, 0):
        s.on(days_ago, lambda: s.analyse("pricing-2026", maya))


def shipping(s: Story) -> None:
    """Free delivery from $49: a running test in the checkout project."""
    sam = actor("sam")
    visitors = Visitors("cart", s.rng)

    def create() -> None:
        s.save("experiments", {
            "key": "shipping-threshold", "name": "Free delivery from $49", "owner": "sam",
            "project": "checkout", "tags": ["shipping"], "metrics": CHECKOUT_METRICS,
            "hypothesis": briefs.SHIPPING["hypothesis"]["change"],
            "variations": [{"key": "control", "payload": 75}, {"key": "low", "payload": 49}],
        }, sam, "new experiment")  # fmt: skip
        s.save("features", experiment_flag(
            "free-shipping-threshold", "shipping-threshold", "sam", value_type="number",
            default_value=75, tags=["shipping"],
            description="Basket value from which delivery is free (USD).",
        ), sam, "flag for the test")  # fmt: skip
        s.brief(briefs.SHIPPING, sam)

    def launch() -> None:
        s.start("shipping-threshold", sam)
        arms = {"control": Arm(0.10), "low": Arm(0.108, spend=3.55)}
        s.simulate(visitors, "free-shipping-threshold", arms, 6, exposed=max(s.users // 2, 4000))

    s.on(7, create)
    s.on(6, launch)
    s.on(3, lambda: s.analyse("shipping-threshold", sam))
    s.on(0, lambda: s.analyse("shipping-threshold", sam))


def checkout_redesign(s: Story) -> None:
    """A rollout under a playbook, now at stage 2 of 4 (it holds 72 hours there)."""
    sam = actor("sam")
    visitors = Visitors("co", s.rng)
    playbook = "checkout-redesign-ramp"
    daily = max(s.users // 4, 2000)

    def create() -> None:
        s.save("features", {
            "key": "checkout-redesign", "kind": "release", "project": "checkout",
            "owner": "sam", "tags": ["checkout", "ui"],
            "description": "The single-page checkout.",
            "environments": before_production(),
        }, sam, "new flag")  # fmt: skip
        s.brief(briefs.REDESIGN, sam)

    def ramp() -> None:
        s.save("playbooks", {
            "key": playbook, "name": "Single-page checkout rollout", "project": "checkout",
            "owner": "sam", "type": "rollout", "feature": "checkout-redesign", "value": True,
            "experiment": "checkout-redesign",
            "stages": [{"coverage": 0.05, "min_hours": 24}, {"coverage": 0.25, "min_hours": 72},
                       {"coverage": 0.5, "min_hours": 48}, {"coverage": 1.0, "min_hours": 24}],
            "guardrails": [{"metric": "error-rate"}, {"metric": "refunds"}],
            "expected_units": 20000,
        }, sam, "ramp with guardrails")  # fmt: skip

    def day(length: float = 1.0) -> Callable[[], None]:
        def step() -> None:
            s.playbook_step(playbook)
            s.simulate(visitors, "checkout-redesign", NEUTRAL, length, count=int(daily * length))

        return step

    s.on(5, create)
    s.on(4, ramp)
    for days_ago in (3.5, 2.5, 1.5):
        s.on(days_ago, day())
    s.on(0.5, day(0.5))
    s.on(0, lambda: s.playbook_step(playbook))
    s.on(0, lambda: s.analyse("checkout-redesign", sam))


def upcoming(s: Story) -> None:
    """Ideas with scores, a planned test that clashes on the calendar, one in review, a draft."""
    dana, maya, chen = actor("dana"), actor("maya"), actor("chen")

    def ideas() -> None:
        for body in briefs.IDEAS:
            s.brief(body, actor(body["owners"][0].split("@")[0]))

    def planned() -> None:
        s.save("experiments", {
            "key": "gift-wrap-upsell", "name": "Gift wrap offer", "owner": "dana",
            "project": "checkout", "tags": ["seasonal"], "metrics": CHECKOUT_METRICS,
            "variations": [{"key": "control", "payload": False},
                           {"key": "offer", "payload": True}],
        }, dana, "new experiment")  # fmt: skip
        flag = experiment_flag("gift-wrap", "gift-wrap-upsell", "dana",
                               description="The gift wrap offer in the cart.")  # fmt: skip
        s.save("features", flag, dana, "flag for the test")
        for body in briefs.upcoming(s.clock.end.date()):
            s.brief(body, actor(body["owners"][0].split("@")[0]))
        s.kb.submit("gift-wrap-upsell", dana)

    def review() -> None:
        comment = "Fine by me once the calendar clash with shipping-threshold is sorted."
        s.kb.review("gift-wrap-upsell", maya, "approve", comment)

    def draft() -> None:
        feature = s.platform.registry.get("features", "new-search").model_dump(mode="json")
        rules = feature["environments"]["production"]["rules"]
        rules[0]["coverage"] = 1.0
        s.platform.registry.draft("features", feature, chen, message="new search for everyone")

    s.on(14, ideas)
    s.on(2, planned)
    s.on(1.5, review)
    s.on(1, draft)


STORYLINES = (knowledge_base, trust_badges, one_click, address_autocomplete, pricing, shipping,
              checkout_redesign, upcoming)  # fmt: skip


def tell(platform: Platform, clock: DemoClock, users: int) -> Story:
    """Run every storyline in time order; the story ends at ``clock.end``."""
    story = Story(platform, clock, users)
    try:
        for storyline in STORYLINES:
            storyline(story)
        story.run()
    finally:
        story.close()
    return story
