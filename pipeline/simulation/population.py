"""Simulated visitors: stable device, browser, OS and country per user, skewed activity.

A user's profile is a pure function of (seed, user index): it is derived from a 64-bit
hash instead of being stored, so a population of hundreds of millions (what a
100,000 events/s live run implies) costs no memory, and the same user always comes
back on the same phone from the same country, as real returning visitors do.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Final, Generic, NamedTuple, TypeVar

T = TypeVar("T")

_MASK64: Final = (1 << 64) - 1

# (device, weight): the config may override these; the rest are fixed realistic tables.
DEFAULT_DEVICE_WEIGHTS: Final = (("mobile", 0.60), ("desktop", 0.35), ("tablet", 0.05))

# device -> ((os, weight, ((browser, weight), ...)), ...)
_OS_BROWSERS: Final[dict[str, tuple[tuple[str, float, tuple[tuple[str, float], ...]], ...]]] = {
    "mobile": (
        ("Android", 0.56, (("Chrome", 0.78), ("Samsung Internet", 0.15), ("Firefox", 0.04), ("Opera", 0.03))),
        ("iOS", 0.44, (("Safari", 0.86), ("Chrome", 0.12), ("Firefox", 0.02))),
    ),
    "desktop": (
        ("Windows", 0.66, (("Chrome", 0.68), ("Edge", 0.20), ("Firefox", 0.10), ("Opera", 0.02))),
        ("macOS", 0.24, (("Safari", 0.52), ("Chrome", 0.42), ("Firefox", 0.06))),
        ("Linux", 0.05, (("Firefox", 0.55), ("Chrome", 0.45))),
        ("ChromeOS", 0.05, (("Chrome", 1.0),)),
    ),
    "tablet": (
        ("iPadOS", 0.58, (("Safari", 0.90), ("Chrome", 0.10))),
        ("Android", 0.42, (("Chrome", 0.80), ("Samsung Internet", 0.20))),
    ),
}

DEFAULT_COUNTRY_WEIGHTS: Final = (
    ("US", 30.0),
    ("GB", 9.0),
    ("DE", 8.0),
    ("FR", 6.0),
    ("IN", 5.5),
    ("BR", 4.5),
    ("CA", 4.0),
    ("JP", 3.5),
    ("ES", 3.0),
    ("IT", 3.0),
    ("NL", 2.5),
    ("AU", 2.5),
    ("MX", 2.0),
    ("PL", 2.0),
    ("SE", 1.5),
    ("FI", 1.2),
    ("IE", 1.0),
    ("CH", 1.0),
    ("AT", 1.0),
    ("BE", 1.0),
    ("DK", 0.8),
    ("NO", 0.8),
    ("PT", 0.8),
    ("KR", 0.8),
    ("SG", 0.6),
    ("NZ", 0.5),
    ("ZA", 0.5),
    ("AR", 0.5),
    ("TR", 0.5),
    ("CZ", 0.4),
)

# How keen a user is to buy, as a multiplier on add-to-cart and checkout odds.
_BUYER_TYPES: Final = ((0.3, 0.5), (1.0, 0.35), (2.5, 0.15))  # (multiplier, share)


def splitmix64(x: int) -> int:
    """A 64-bit bijective mixer: distinct inputs give distinct, well-spread outputs."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class UserProfile(NamedTuple):
    user_id: str
    device_type: str
    browser: str
    os: str
    country: str
    buyer: float
    """Multiplier on add-to-cart and checkout probabilities (0.3 browser .. 2.5 shopper)."""


class _Table(Generic[T]):
    """Weighted choice by a uniform number in [0, 1): cumulative weights + bisect."""

    __slots__ = ("values", "cum")

    def __init__(self, pairs: Sequence[tuple[T, float]]) -> None:
        if not pairs or any(w < 0 for _, w in pairs) or sum(w for _, w in pairs) <= 0:
            raise ValueError(f"bad weights: {pairs!r}")
        total = sum(w for _, w in pairs)
        self.values = tuple(v for v, _ in pairs)
        self.cum = tuple(c / total for c in accumulate(w for _, w in pairs))

    def pick(self, u: float) -> T:
        i = bisect_right(self.cum, u)
        return self.values[min(i, len(self.values) - 1)]


class Population:
    """``size`` users; ``profile(i)`` is deterministic, ``pick`` favours heavy users.

    ``skew`` > 1 makes activity uneven: with index = size * U**skew, the 10% lowest
    indices receive 0.1**(1/skew) of the visits (about 24% at the default 1.6), so
    some users come back many times a day and most only once or twice.
    """

    def __init__(
        self,
        seed: int,
        size: int,
        *,
        device_weights: Sequence[tuple[str, float]] = DEFAULT_DEVICE_WEIGHTS,
        country_weights: Sequence[tuple[str, float]] = DEFAULT_COUNTRY_WEIGHTS,
        skew: float = 1.6,
    ) -> None:
        if size < 1:
            raise ValueError("population size must be >= 1")
        if skew < 1:
            raise ValueError("skew must be >= 1")
        unknown = {d for d, _ in device_weights} - set(_OS_BROWSERS)
        if unknown:
            raise ValueError(f"unknown device types {sorted(unknown)}")
        self.size = size
        self.skew = skew
        self._base = splitmix64(seed & _MASK64)
        self._devices = _Table(device_weights)
        self._oses = {
            device: _Table([((os, _Table(browsers)), w) for os, w, browsers in entries])
            for device, entries in _OS_BROWSERS.items()
        }
        self._countries = _Table(country_weights)
        self._buyers = _Table([(m, share) for m, share in _BUYER_TYPES])

    def pick(self, rng: random.Random) -> int:
        """A user index, skewed towards low indices (the heavy users)."""
        return min(int(self.size * rng.random() ** self.skew), self.size - 1)

    def profile(self, index: int) -> UserProfile:
        """The stable profile of user ``index``."""
        key = (self._base + index) & _MASK64
        user_id = f"u-{splitmix64(key ^ 0x5555555555555555):016x}"
        h = splitmix64(key)
        u1 = (h & 0xFFFF) / 65536.0
        u2 = ((h >> 16) & 0xFFFF) / 65536.0
        u3 = ((h >> 32) & 0xFFFF) / 65536.0
        u4 = ((h >> 48) & 0xFFFF) / 65536.0
        h2 = splitmix64(h)
        u5 = (h2 & 0xFFFFFFFF) / 4294967296.0
        device = self._devices.pick(u1)
        os, browsers = self._oses[device].pick(u2)
        browser = browsers.pick(u3)
        country = self._countries.pick(u4)
        buyer = self._buyers.pick(u5)
        return UserProfile(user_id, device, browser, os, country, buyer)
