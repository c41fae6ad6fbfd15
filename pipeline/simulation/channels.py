"""Traffic channels: where a visit comes from and which kind of page it lands on.

A channel decides the attribution a session carries on every event (referrer and UTM
fields, as a tracker reads them from the landing URL) and the odds of the landing page:
a newsletter link opens a category, a search result a product, a typed-in address the
home page. Campaign names are fixed lists so dashboards show stable values.
"""

from __future__ import annotations

from typing import Final

from pipeline.simulation.tracker import Attribution

DEFAULT_CHANNEL_WEIGHTS: Final = (
    ("direct", 0.30),
    ("organic", 0.30),
    ("social", 0.15),
    ("email", 0.10),
    ("paid", 0.15),
)


def _attr(
    channel: str, referrer: str | None, source: str | None, medium: str | None, campaign: str | None
) -> Attribution:
    return Attribution(channel, referrer, source, medium, campaign)


CHANNELS: Final[dict[str, tuple[tuple[float, Attribution], ...]]] = {
    "direct": ((1.0, _attr("direct", None, None, None, None)),),
    "organic": (
        (0.80, _attr("organic", "https://www.google.com/", None, None, None)),
        (0.12, _attr("organic", "https://www.bing.com/", None, None, None)),
        (0.08, _attr("organic", "https://duckduckgo.com/", None, None, None)),
    ),
    "social": (
        (0.40, _attr("social", "https://www.facebook.com/", "facebook", "social", None)),
        (0.25, _attr("social", "https://www.instagram.com/", "instagram", "social", "winter_lookbook")),
        (0.20, _attr("social", "https://t.co/", "twitter", "social", None)),
        (0.15, _attr("social", "https://www.pinterest.com/", "pinterest", "social", "gift_ideas")),
    ),
    "email": (
        (0.55, _attr("email", None, "newsletter", "email", "weekly_digest")),
        (0.30, _attr("email", None, "newsletter", "email", "black_friday_2026")),
        (0.15, _attr("email", "android-app://com.google.android.gm/", "newsletter", "email", "cart_reminder")),
    ),
    "paid": (
        (0.50, _attr("paid", "https://www.google.com/", "google", "cpc", "brand_search")),
        (0.30, _attr("paid", "https://www.google.com/", "google", "cpc", "shoes_q4")),
        (0.20, _attr("paid", "https://www.facebook.com/", "facebook", "paid_social", 'retargeting_"cart"')),
    ),
}
"""channel -> ((weight, attribution), ...): the attributions a visit of that channel may carry."""

ATTRIBUTIONS: Final[tuple[Attribution, ...]] = tuple(a for entries in CHANNELS.values() for _, a in entries)
"""Every attribution a simulated session can start with."""

LANDING: Final[dict[str, tuple[float, float, float, float]]] = {
    "direct": (0.70, 0.15, 0.15, 0.0),
    "organic": (0.15, 0.30, 0.50, 0.05),
    "social": (0.30, 0.0, 0.70, 0.0),
    "email": (0.40, 0.60, 0.0, 0.0),
    "paid": (0.0, 0.40, 0.60, 0.0),
}
"""channel -> weights of the landing page kind: (home, category, product, search)."""
