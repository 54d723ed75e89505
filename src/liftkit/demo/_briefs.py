"""The demo's knowledge base: settings, a template, and the briefs the teams wrote.

Bodies only; the story (``_story``) saves each one at the moment its team would have written it,
and moves it through the lifecycle (submit, review, conclude, ship) with the ``KnowledgeBase``
facade, as people do from the dashboard or ``liftkit kb``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

SETTINGS: dict[str, Any] = {
    "key": "default",
    "name": "Knowledge base settings",
    "scoring": "ice",
    "taxonomy": {
        "change_types": ["pricing", "copy", "ux", "feature", "performance", "aa"],
        "surfaces": ["pricing-page", "checkout", "cart", "search", "email", "account"],
        "funnel_stages": ["acquisition", "activation", "conversion", "retention"],
        "teams": ["growth", "checkout", "search", "platform"],
    },
}

TEMPLATE: dict[str, Any] = {
    "key": "standard",
    "name": "Standard brief",
    "description": "What every experiment brief answers before review.",
    "required_fields": ["hypothesis", "surface", "metrics.primary", "metrics.guardrails"],
    "questions": [
        {"key": "risk", "label": "What could go wrong, and what would catch it?"},
        {"key": "rollback", "label": "How do we undo it?", "required": False},
    ],
}

_CHECKOUT_METRICS = {"primary": ["purchase"], "secondary": ["revenue"], "guardrails": ["refunds"]}


def _brief(
    key: str, name: str, hypothesis: tuple[str, str, str, str], **fields: Any
) -> dict[str, Any]:
    change, audience, result, reason = hypothesis
    body = {
        "key": key,
        "name": name,
        "hypothesis": {"change": change, "audience": audience, "result": result, "reason": reason},
        "template": "standard",
        "metrics": _CHECKOUT_METRICS,
        "funnel_stage": "conversion",
        **fields,
    }
    return body


TRUST_BADGES = _brief(
    "trust-badges", "Payment security badges at the pay button",
    ("showing payment-security badges next to the pay button", "shoppers at the payment step",
     "more completed purchases", "exit surveys often mention worries about card safety"),
    project="checkout", experiment="trust-badges", change_type="copy", surface="checkout",
    team="checkout", owners=["dana@example.com"], tags=["trust", "payments"],
    audience="everyone who reaches the payment step", criteria={"mde": 0.05, "min_days": 14},
    answers={"risk": "none to speak of; refunds are the guardrail"},
)  # fmt: skip
TRUST_BADGES_LEARNINGS = (
    "No measurable effect on purchases: the interval spans a few percent either way. Worries "
    "about card safety in exit surveys do not turn into abandonment at the pay button; delivery "
    "costs and form friction are better bets (see one-click-checkout)."
)

ONE_CLICK = _brief(
    "one-click-checkout", "One-click checkout for returning customers",
    ("a one-click buy button for returning customers with a saved card",
     "returning customers with a saved card", "more purchases",
     "half of abandoned checkouts drop off on the address and card forms"),
    project="checkout", experiment="one-click-checkout", change_type="ux", surface="checkout",
    team="checkout", owners=["sam@example.com"], tags=["payments", "friction"],
    audience="returning customers with a saved card", criteria={"mde": 0.05, "min_days": 14},
    answers={"risk": "accidental orders; refunds are the guardrail",
             "rollback": "turn the one-click flag's experiment off"},
)  # fmt: skip
ONE_CLICK_LEARNINGS = (
    "One-click raised purchases with no rise in refunds, and shipped to everyone. Form friction "
    "is the biggest lever found in checkout so far; address autocomplete follows from it."
)

ADDRESS = _brief(
    "address-autocomplete", "Address autocomplete",
    ("autocompleting the delivery address from a postcode lookup",
     "shoppers entering a new delivery address", "fewer abandoned checkouts",
     "one-click-checkout showed that form friction costs orders"),
    project="checkout", experiment="address-autocomplete", change_type="feature",
    surface="checkout", team="checkout", owners=["dana@example.com"], tags=["friction"],
    metrics={"primary": ["purchase"], "guardrails": ["error-rate"]},
    answers={"risk": "the lookup provider failing; the error-rate guardrail and its playbook"},
)  # fmt: skip
ADDRESS_LEARNINGS = (
    "Rolled back automatically by its playbook when the error-rate guardrail breached: the "
    "lookup widget multiplied checkout errors (the address provider times out on slow "
    "connections). Retry only with a client-side timeout and a plain form as the fallback."
)

PRICING = _brief(
    "pricing-2026", "Annual plan first",
    ("showing the annual plan first", "new visitors on the pricing page",
     "raise paid conversion", "the monthly price of the annual plan looks lower"),
    experiment="pricing-2026", change_type="pricing", surface="pricing-page", team="growth",
    owners=["maya@example.com"], tags=["pricing"], audience="new visitors",
    metrics={"primary": ["purchase"], "secondary": ["revenue"], "guardrails": ["refunds"]},
    criteria={"mde": 0.1, "min_days": 14},
    answers={"risk": "people feeling tricked into a yearly plan; refunds are the guardrail"},
)  # fmt: skip

SHIPPING = _brief(
    "shipping-threshold", "Free delivery from $49",
    ("lowering the free-delivery threshold from $75 to $49", "shoppers with a cart",
     "more orders", "the median basket is $42 and delivery cost is the top reason to abandon"),
    project="checkout", experiment="shipping-threshold", change_type="pricing", surface="cart",
    team="checkout", owners=["sam@example.com"], tags=["shipping", "pricing"],
    audience="everyone with a cart", criteria={"mde": 0.05, "min_days": 14},
    sizing={"expected_lift": 0.05, "value_per_conversion": 38},
    answers={"risk": "margin on small baskets; revenue per user is watched"},
)  # fmt: skip

REDESIGN = _brief(
    "checkout-redesign", "Single-page checkout",
    ("the redesigned single-page checkout", "every shopper who reaches checkout",
     "the same or more purchases with fewer errors", "three steps become one"),
    project="checkout", experiment="checkout-redesign", change_type="ux", surface="checkout",
    team="checkout", owners=["sam@example.com"], tags=["friction"],
    metrics={"primary": ["purchase"], "guardrails": ["error-rate", "refunds"]},
    answers={"risk": "new bugs; the playbook's guardrails roll it back"},
)  # fmt: skip


def planned(today: date, start_in: int, days: int) -> dict[str, str]:
    """Planned dates ``start_in`` days from today, for ``days`` days."""
    start = date.fromordinal(today.toordinal() + start_in)
    end = date.fromordinal(start.toordinal() + days - 1)
    return {"planned_start": start.isoformat(), "planned_end": end.isoformat()}


def upcoming(today: date) -> list[dict[str, Any]]:
    """Planned briefs; two of them overlap a running test on the same surface (the conflicts)."""
    return [
        _brief(
            "pricing-testimonials", "Testimonials on the pricing page",
            ("customer testimonials under the plan comparison", "visitors on the pricing page",
             "more paid sign-ups", "prospects tell sales they want to hear from peers"),
            change_type="copy", surface="pricing-page", team="growth",
            owners=["maya@example.com"], tags=["pricing", "trust"], stage="planned",
            scores={"impact": 5, "confidence": 6, "ease": 9},
            sizing={"audience_share": 0.3, "expected_lift": 0.03, "value_per_conversion": 120},
            answers={"risk": "none"}, **planned(today, 3, 21),
        ),
        _brief(
            "gift-wrap-upsell", "Gift wrap offer in the cart",
            ("offering gift wrap for $4 in the cart", "shoppers in November and December",
             "more revenue per order", "a fifth of holiday orders are gifts"),
            project="checkout", experiment="gift-wrap-upsell", change_type="feature",
            surface="cart", team="checkout", owners=["dana@example.com"], tags=["seasonal"],
            scores={"impact": 4, "confidence": 5, "ease": 7},
            sizing={"audience_share": 0.6, "expected_lift": 0.02, "value_per_conversion": 4},
            answers={"risk": "a cluttered cart; purchases stay the primary metric"},
            **planned(today, 5, 21),
        ),
    ]  # fmt: skip


IDEAS: list[dict[str, Any]] = [
    _brief(
        "express-pay-buttons", "Express pay buttons in the cart",
        ("Apple Pay and Google Pay buttons in the cart", "mobile shoppers",
         "more completed purchases", "typing card details on a phone is the worst drop-off"),
        project="checkout", change_type="ux", surface="cart", team="checkout",
        owners=["sam@example.com"], tags=["mobile", "payments"],
        scores={"impact": 8, "confidence": 7, "ease": 5},
        sizing={"audience_share": 0.55, "expected_lift": 0.04, "value_per_conversion": 38},
    ),
    _brief(
        "saved-cart-reminder", "Saved-cart reminder email",
        ("an email reminder a day after a cart is abandoned", "signed-in shoppers",
         "more recovered carts", "a third of abandoned carts belong to signed-in customers"),
        change_type="feature", surface="email", team="growth", funnel_stage="retention",
        owners=["maya@example.com"], tags=["email", "retention"],
        scores={"impact": 7, "confidence": 6, "ease": 8},
        sizing={"audience_share": 0.2, "expected_lift": 0.05, "value_per_conversion": 38},
    ),
    _brief(
        "search-autocorrect", "Autocorrect misspelt searches",
        ("correcting misspelt queries before searching", "visitors using search",
         "fewer searches with no results and more purchases",
         "8% of searches return nothing, mostly because of typos"),
        change_type="feature", surface="search", team="search", funnel_stage="activation",
        owners=["chen@example.com"], tags=["search"],
        scores={"impact": 6, "confidence": 4, "ease": 6},
        sizing={"audience_share": 0.35, "expected_lift": 0.02, "value_per_conversion": 38},
    ),
    _brief(
        "annual-plan-nudge", "Annual plan nudge at renewal",
        ("suggesting the annual plan in the renewal email", "monthly subscribers",
         "more switches to annual billing", "annual subscribers churn half as often"),
        change_type="pricing", surface="account", team="growth", funnel_stage="retention",
        owners=["maya@example.com"], tags=["pricing", "retention"],
        scores={"impact": 6, "confidence": 7, "ease": 9},
        sizing={"reach_per_month": 3000, "baseline": 0.04, "expected_lift": 0.1,
                "value_per_conversion": 96},
    ),
]  # fmt: skip
