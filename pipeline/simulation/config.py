"""What the simulated shop and its visitors look like: one frozen value, validated once."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.simulation.channels import CHANNELS, DEFAULT_CHANNEL_WEIGHTS
from pipeline.simulation.population import DEFAULT_COUNTRY_WEIGHTS, DEFAULT_DEVICE_WEIGHTS
from pipeline.simulation.sitemap import DEFAULT_HOST


@dataclass(frozen=True)
class SimulationConfig:
    """What the simulated shop and its visitors look like. Frozen so it can key a cache.

    ``rate`` is the expected number of events per second of event time (averaged over
    the day when ``diurnal`` is on). Probabilities are per opportunity: ``bounce_rate``
    per visit, ``add_to_cart_rate`` per product page view (times the user's buyer
    multiplier), ``checkout_rate`` per cart view with a non-empty cart, ``purchase_rate``
    per checkout page, ``idle_rate`` per pause between two pages (an idle pause lasts
    31-120 minutes, so the tracker starts a new session mid-visit).

    ``max_concurrency`` bounds the visits in flight (memory and speed): when ``rate``
    would need more (above roughly 500 events/s with the defaults), all dwell times are
    compressed by the same factor (``Simulation.time_scale``) so the rate is still met;
    below that the factor is 1 and timings are realistic. ``max_users`` bounds the
    population for the same reason (the tracker remembers every user active in the last
    30 minutes). At very high rates the capped population means users return within 30
    minutes, so sessions grow long; every session id still follows the 30-minute rule.
    """

    seed: int = 0
    rate: float = 10.0
    users: int | None = None
    host: str = DEFAULT_HOST
    device_weights: tuple[tuple[str, float], ...] = DEFAULT_DEVICE_WEIGHTS
    country_weights: tuple[tuple[str, float], ...] = DEFAULT_COUNTRY_WEIGHTS
    channel_weights: tuple[tuple[str, float], ...] = DEFAULT_CHANNEL_WEIGHTS
    bounce_rate: float = 0.40
    add_to_cart_rate: float = 0.12
    checkout_rate: float = 0.55
    purchase_rate: float = 0.70
    idle_rate: float = 0.02
    diurnal: bool = True
    user_skew: float = 1.6
    visits_per_user_per_day: float = 2.5
    max_users: int = 1_000_000
    max_concurrency: int = 30_000
    max_events_per_visit: int = 80

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("rate must be > 0")
        for name in ("bounce_rate", "add_to_cart_rate", "checkout_rate", "purchase_rate", "idle_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.users is not None and self.users < 1:
            raise ValueError("users must be >= 1")
        if self.max_users < 1 or self.max_concurrency < 1 or self.max_events_per_visit < 1:
            raise ValueError("max_users, max_concurrency and max_events_per_visit must be >= 1")
        unknown = {c for c, _ in self.channel_weights} - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown channels {sorted(unknown)}")
