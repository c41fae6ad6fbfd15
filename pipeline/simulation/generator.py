"""A deterministic clickstream simulation: seed and times in, events out, no I/O, no clock.

Why a simulation rather than random events: the session metrics downstream (duration,
bounce, conversion, attribution) only mean something if the events behave like real
visits, so the generator walks users through a shop (landing page chosen by the traffic
channel, category and product pages, searches, cart, checkout) with realistic dwell
times, and lets the tracker rule (``pipeline.simulation.tracker``) assign session ids from
the resulting event times, exactly as a browser tracker would.

Shape of the engine: visits arrive as a Poisson process (optionally with a daily
pattern); each visit in flight sits in a calendar keyed by the time of its next event;
the engine pops the earliest, emits it and schedules the visit's next one. Events
therefore come out in time order across interleaved users, and memory is bounded by the
number of visits in flight. Everything random comes from one ``random.Random`` seeded
from (seed, start, end), user profiles from a hash of (seed, user index), the catalogue
from its own fixed seed, so a seed and a start/end time give a byte-identical stream in
every run and process. The hot loop builds wire bytes from pre-encoded segments, never
an ``Event`` object: that is what keeps it at a few microseconds per message.

Two entry points share the engine:

* ``backfill(config, end_time, window)``: every event of the window, as fast as the
  caller pulls them.
* ``LiveStream(config, start).until(now)``: the events whose time has come; the caller
  passes its clock reading, so the stream content never depends on when it is called.

Both yield ``Message`` (key, value bytes, kind) via the fault injector in
``pipeline.simulation.faults``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import heapq
import math
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from itertools import accumulate
from statistics import NormalDist
from typing import Final

import msgspec

from pipeline.simulation.faults import NO_FAULTS, FaultConfig, FaultInjector, Message
from pipeline.simulation.population import DEFAULT_COUNTRY_WEIGHTS, DEFAULT_DEVICE_WEIGHTS, Population, UserProfile
from pipeline.simulation.sitemap import DEFAULT_HOST, Category, Product, SiteMap
from pipeline.simulation.tracker import (
    SESSION_TIMEOUT,
    SESSION_TIMEOUT_MS,
    Attribution,
    SessionState,
    SessionTracker,
    advance,
)

__all__ = [
    "SESSION_TIMEOUT",
    "SESSION_TIMEOUT_MS",
    "SimulationConfig",
    "Simulation",
    "LiveStream",
    "backfill",
    "to_ms",
    "from_ms",
]

_UTC: Final = _dt.UTC
_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_UTC)

DEFAULT_CHANNEL_WEIGHTS: Final = (
    ("direct", 0.30),
    ("organic", 0.30),
    ("social", 0.15),
    ("email", 0.10),
    ("paid", 0.15),
)

# Traffic share by hour of day (UTC), mean 1.0: quiet nights, an evening peak.
_DIURNAL: Final = (
    0.45,
    0.36,
    0.30,
    0.28,
    0.30,
    0.38,
    0.52,
    0.70,
    0.86,
    0.96,
    1.02,
    1.08,
    1.12,
    1.10,
    1.06,
    1.08,
    1.14,
    1.24,
    1.38,
    1.50,
    1.52,
    1.36,
    1.06,
    0.76,
)
_DIURNAL_MEAN: Final = sum(_DIURNAL) / len(_DIURNAL)
_DIURNAL_NORM: Final = tuple(x / _DIURNAL_MEAN for x in _DIURNAL)
_DIURNAL_MAX: Final = max(_DIURNAL_NORM)


def to_ms(value: _dt.datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (exact, integer arithmetic)."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> _dt.datetime:
    """The aware UTC datetime of milliseconds since the epoch."""
    return _EPOCH + _dt.timedelta(milliseconds=ms)


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
        unknown = {c for c, _ in self.channel_weights} - set(_CHANNELS)
        if unknown:
            raise ValueError(f"unknown channels {sorted(unknown)}")


# --- traffic channels: how a visit arrives ------------------------------------------
# channel -> tuple of (weight, Attribution); campaign names are fixed lists.
def _attr(
    channel: str, referrer: str | None, source: str | None, medium: str | None, campaign: str | None
) -> Attribution:
    return Attribution(channel, referrer, source, medium, campaign)


_CHANNELS: Final[dict[str, tuple[tuple[float, Attribution], ...]]] = {
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

# Landing page by channel: (home, category, product, search) weights.
_LANDING: Final = {
    "direct": (0.70, 0.15, 0.15, 0.0),
    "organic": (0.15, 0.30, 0.50, 0.05),
    "social": (0.30, 0.0, 0.70, 0.0),
    "email": (0.40, 0.60, 0.0, 0.0),
    "paid": (0.0, 0.40, 0.60, 0.0),
}

# Page kinds and their median dwell time in seconds.
HOME, CATEGORY, SEARCH, PRODUCT, CART, CHECKOUT, CONFIRMATION = range(7)
_DWELL_MEDIAN_S: Final = (15.0, 25.0, 20.0, 45.0, 30.0, 80.0, 20.0)
_DWELL_SIGMA: Final = 0.85
_DWELL_MIN_MS: Final = 1_000
_DWELL_MAX_MS: Final = 20 * 60_000
_EXIT: Final = (0.18, 0.20, 0.20, 0.22, 0.15, 0.0, 0.85)  # checkout exits via purchase_rate

_CATEGORY_ENGAGE: Final = ("filter-price", "filter-size", "sort-select", "pagination-next")
_PRODUCT_ENGAGE: Final = ("image-gallery", "size-select", "reviews-tab", "color-swatch")
_HOME_PROMOS: Final = ("hero-banner", "promo-tile-1", "promo-tile-2", "promo-tile-3")

_PV, _CLICK, _SEARCH, _ATC, _PURCHASE = "page_view", "click", "search", "add_to_cart", "purchase"
_WARMUP_MAX_EVENTS: Final = 500_000

# --- wire segments ----------------------------------------------------------------------
# The hot loop never builds an Event: it joins pre-encoded JSON segments in contract
# field order. Every segment comes from the same msgspec encoder as ``encode_event``, and
# a test checks ``encode_event(decode(value)) == value`` on generated streams, so the
# two paths cannot disagree.
_ENCODE: Final = msgspec.json.Encoder(decimal_format="number").encode
_TYPE_SEG: Final = {
    t: b'","schema_version":1,"event_type":' + _ENCODE(t) + b',"occurred_at":"'
    for t in ("page_view", "click", "search", "add_to_cart", "purchase")
}


def _tail(
    element: str | None = None,
    query: str | None = None,
    product_id: str | None = None,
    price: Decimal | None = None,
    order_id: str | None = None,
    revenue: Decimal | None = None,
) -> bytes:
    """The type-specific fields, encoded: the last six keys of the wire form."""
    return (
        b',"element_id":' + _ENCODE(element) + b',"search_query":' + _ENCODE(query)
        + b',"product_id":' + _ENCODE(product_id) + b',"price":' + _ENCODE(price)
        + b',"order_id":' + _ENCODE(order_id) + b',"revenue":' + _ENCODE(revenue) + b"}"
    )  # fmt: skip


_NO_TAIL: Final = _tail()
_PV_SEG: Final = _TYPE_SEG["page_view"]
_CLICK_SEG: Final = _TYPE_SEG["click"]


def _attr_seg(a: Attribution) -> bytes:
    return (
        b',"referrer":' + _ENCODE(a.referrer) + b',"utm_source":' + _ENCODE(a.utm_source)
        + b',"utm_medium":' + _ENCODE(a.utm_medium) + b',"utm_campaign":' + _ENCODE(a.utm_campaign)
    )  # fmt: skip


_FIXED_ELEMENTS: Final = (
    *_CATEGORY_ENGAGE, *_PRODUCT_ENGAGE, *_HOME_PROMOS,
    "nav-home", "add-to-cart", "header-cart", "checkout-button", "continue-shopping", "place-order",
)  # fmt: skip


class _Segments:
    """Pre-encoded wire segments of everything on the site: page URLs and event tails."""

    def __init__(self, site: SiteMap) -> None:
        urls = [site.home_url, site.cart_url, site.checkout_url, site.confirmation_url]
        urls += [c.url for c in site.categories] + [p.url for p in site.products.values()]
        urls += [q.url for q in site.ordinary_queries + site.odd_queries]
        self.page = {u: b',"page_url":' + _ENCODE(u) for u in urls}
        elements = list(_FIXED_ELEMENTS) + [c.nav_element for c in site.categories]
        elements += [p.card_element for p in site.products.values()]
        self.click = {e: _tail(element=e) for e in elements}
        self.search = {q.text: _tail(query=q.text) for q in site.ordinary_queries + site.odd_queries}
        self.add_to_cart = {p.product_id: _tail(product_id=p.product_id, price=p.price) for p in site.products.values()}


class _Agenda:
    """Visits keyed by the time of their next event; pops in (time, insertion) order.

    A calendar rather than a plain heap of visits: visits due in the same millisecond
    share one slot, and the heap holds only distinct times. At high rates (tens of events
    per ms) most pushes and pops become list appends and index bumps; at low rates it
    behaves like a heap. A slot holds the visit itself until a second one shares the
    millisecond (then a list): fewer objects for the garbage collector to walk.
    Insertion order within a millisecond keeps the output deterministic.
    """

    __slots__ = ("_times", "_slots", "_i", "first")

    def __init__(self) -> None:
        self._times: list[int] = []
        self._slots: dict[int, _Visit | list[_Visit]] = {}
        self._i = 0
        self.first: int | None = None
        """The earliest time with a visit due, or None when empty."""

    def push(self, at_ms: int, visit: _Visit) -> None:
        slot = self._slots.get(at_ms)
        if slot is None:
            self._slots[at_ms] = visit
            heapq.heappush(self._times, at_ms)
            self.first = self._times[0]
        elif type(slot) is list:
            slot.append(visit)
        else:
            self._slots[at_ms] = [slot, visit]  # type: ignore[list-item]

    def pop(self) -> tuple[int, _Visit]:
        times = self._times
        at_ms = times[0]
        slot = self._slots[at_ms]
        if type(slot) is list:
            visit = slot[self._i]
            self._i += 1
            if self._i < len(slot):
                return at_ms, visit
            self._i = 0
        else:
            visit = slot  # type: ignore[assignment]
        del self._slots[at_ms]
        heapq.heappop(times)
        self.first = times[0] if times else None
        return at_ms, visit

    def __len__(self) -> int:
        return sum(len(s) if type(s) is list else 1 for s in self._slots.values()) - self._i


# A planned event: (delay before it in ms, type segment, page_url segment, tail segment).
_Planned = tuple[int, bytes, bytes, bytes]


# What a visit needs of its user, pre-encoded: (user_id, key, user_id segment,
# device/browser/os/country segment, buyer multiplier).
_UserCard = tuple[str, bytes, bytes, bytes, float]
_CARD_CACHE_LIMIT: Final = 200_000


def _user_card(profile: UserProfile) -> _UserCard:
    device_seg = (
        b',"device_type":' + _ENCODE(profile.device_type) + b',"browser":' + _ENCODE(profile.browser)
        + b',"os":' + _ENCODE(profile.os) + b',"country":' + _ENCODE(profile.country)
    )  # fmt: skip
    user_seg = b'","user_id":' + _ENCODE(profile.user_id)
    return profile.user_id, profile.user_id.encode(), user_seg, device_seg, profile.buyer


class _Visit:
    """One visit in flight: who, where they are, what they carry, what comes next."""

    __slots__ = (
        "user", "user_id", "key", "user_seg", "device_seg", "buyer", "landing", "page", "url",
        "category", "product", "cart", "plan", "left", "emitted", "session", "head_seg", "tail_seg",
    )  # fmt: skip

    def __init__(self, user: int, card: _UserCard, landing: Attribution) -> None:
        self.user = user
        self.user_id, self.key, self.user_seg, self.device_seg, self.buyer = card
        self.landing: Attribution | None = landing
        self.page = HOME
        self.url = ""
        self.category: Category | None = None
        self.product: Product | None = None
        # Tuples, not lists: tuples of immutable values drop out of the cyclic GC's
        # tracking, which at high rates (100k+ visits and users in memory) matters.
        self.cart: tuple[Product, ...] = ()
        self.plan: tuple[_Planned, ...] = ()  # reversed: the next event is plan[left - 1]
        self.left = 0
        self.emitted = 0
        self.session: SessionState | None = None  # checked out of the tracker for the visit
        # Per session, pre-joined: user_id + session_id, and attribution + device fields
        # (the wire order puts page_url between the two).
        self.head_seg = b""
        self.tail_seg = b""


class Simulation:
    """The engine: ``pop()`` returns the next (at_ms, key, value) in time order.

    ``start_ms``: events before it are simulated (so visits are already in flight at the
    start, and the rate is steady from the first second) but not returned.
    ``end_ms``: no event after it is returned (None: endless).

    Randomness: one ``random.Random`` seeded from (seed, start, end). Mixing the times in
    means two runs with the same seed but different windows or live start times emit
    different event and session ids (they are different events: a downstream dedup must
    not merge them), while the same seed and times reproduce the stream exactly. User
    ids depend on the seed only, so users return across runs.
    """

    def __init__(self, config: SimulationConfig, start_ms: int, end_ms: int | None = None) -> None:
        self.start_ms = start_ms
        self.end_ms = end_ms
        stats = _calibration(_behaviour(config))
        self.mean_events_per_visit = stats.mean_events
        # Visits in flight at full realism = arrival rate x mean visit duration.
        natural = config.rate / stats.mean_events * stats.mean_duration_s
        time_scale = min(1.0, config.max_concurrency / natural) if natural > 0 else 1.0
        daily_visits = config.rate * 86_400 / stats.mean_events
        users = config.users or int(min(config.max_users, max(100, daily_visits / config.visits_per_user_per_day)))
        self._init_walk(config, random.Random(f"{config.seed}:{start_ms}:{end_ms}"), time_scale, users)
        # Event ids: a random 74-bit prefix per run and a 48-bit counter, laid out as an
        # RFC 9562 version-8 ("custom") UUID. Unique within a run by construction and
        # across runs by the prefix; far cheaper than 128 fresh random bits per event.
        bits = self._getrandbits(80)
        head = f"{bits >> 48:08x}-{(bits >> 32) & 0xFFFF:04x}-8{(bits >> 20) & 0xFFF:03x}-"
        head += f"{0x8 | ((bits >> 18) & 0x3):x}{(bits >> 6) & 0xFFF:03x}-"
        self._id_head = b'{"event_id":"' + head.encode()
        self._id_counter = 0
        self._visit_rate_per_ms = config.rate / stats.mean_events / 1000.0
        self._peak = _DIURNAL_MAX if config.diurnal else 1.0
        self._prune_every = SESSION_TIMEOUT_MS // 6
        # Warm-up long enough for most visits in flight at the start to have begun, but
        # bounded in simulated events so a high rate does not cost minutes of start-up.
        warmup_ms = int(min(4 * stats.p95_duration_s * time_scale, _WARMUP_MAX_EVENTS / config.rate) * 1000)
        self._arrival_f = float(start_ms - warmup_ms)
        self._next_arrival = start_ms - warmup_ms
        self._next_prune = self._next_arrival + self._prune_every
        self._advance_arrival()
        self._sec = -1
        self._sec_prefix = b""
        # Fast forward through the warm-up: visits are simulated, events discarded.
        while True:
            t = self.peek_ms()
            if t is None or t >= start_ms:
                break
            self._step(emit=False)

    def _init_walk(self, config: SimulationConfig, rng: random.Random, time_scale: float, users: int) -> None:
        """The state that starting and walking visits needs (shared with calibration)."""
        self.config = config
        self._rng = rng
        self._random = rng.random
        self._getrandbits = rng.getrandbits
        self.site = _site(config.host)
        self._segs: _Segments = self.site.segments  # type: ignore[attr-defined]
        self.time_scale = time_scale
        self.population = Population(
            config.seed,
            users,
            device_weights=config.device_weights,
            country_weights=config.country_weights,
            skew=config.user_skew,
        )
        self._channel_values = tuple(c for c, _ in config.channel_weights)
        self._channel_cum = _cum([w for _, w in config.channel_weights])
        self._channel_tables = {
            c: (tuple(a for _, a in entries), _cum([w for w, _ in entries])) for c, entries in _CHANNELS.items()
        }
        self._landing_cum = {c: _cum(list(w)) for c, w in _LANDING.items()}
        self._attr_segs = {a: _attr_seg(a) for entries in _CHANNELS.values() for _, a in entries}
        self._agenda = _Agenda()
        self._active: set[int] = set()
        self._cards: dict[int, _UserCard] = {}
        self.tracker = SessionTracker(self._session_id)
        self._dwell_tables = tuple(
            _lognormal_table(
                m * 1000.0 * time_scale, _DWELL_SIGMA, _DWELL_MIN_MS * time_scale, _DWELL_MAX_MS * time_scale
            )
            for m in _DWELL_MEDIAN_S
        )
        self._idle = (int(31 * 60_000 * time_scale), int(120 * 60_000 * time_scale))
        self._short = time_scale  # scale for sub-second delays (click -> page view)

    def _session_id(self) -> str:
        return "s-%016x" % self._getrandbits(64)

    # --- arrivals -------------------------------------------------------------------
    def _advance_arrival(self) -> None:
        """Next visit arrival: homogeneous Poisson at the peak rate, thinned by the hour.

        Kept as float milliseconds so that many visits may arrive within one millisecond
        at high rates; the visit starts at the floor of it.
        """
        rng_random = self._random
        peak_rate = self._visit_rate_per_ms * self._peak
        t = self._arrival_f
        while True:
            t += -math.log(1.0 - rng_random()) / peak_rate
            if not self.config.diurnal:
                break
            hour = (int(t) // 3_600_000) % 24
            if rng_random() * _DIURNAL_MAX <= _DIURNAL_NORM[hour]:
                break
        self._arrival_f = t
        self._next_arrival = int(t)

    def _start_visit(self, at_ms: int) -> None:
        rng = self._rng
        active = self._active
        user = self.population.pick(rng)
        tries = 0
        while user in active and tries < 3:
            user = self.population.pick(rng)
            tries += 1
        if user in active:
            return  # that user is already browsing; drop the arrival
        channel = self._channel_values[bisect_right(self._channel_cum, self._random())]
        attrs, cum = self._channel_tables[channel]
        card = self._cards.get(user)
        if card is None:
            # Profiles are a pure function of the index, so a cache only saves work; heavy
            # users come back often. Cleared wholesale when full: simple and bounded.
            if len(self._cards) >= _CARD_CACHE_LIMIT:
                self._cards.clear()
            card = self._cards[user] = _user_card(self.population.profile(user))
        visit = _Visit(user, card, attrs[bisect_right(cum, self._random())])
        visit.session = self.tracker.checkout(visit.user_id)
        site = self.site
        landing_kind = bisect_right(self._landing_cum[channel], self._random())
        if landing_kind == 1:
            visit.category = site.pick_category(rng)
            visit.page, visit.url = CATEGORY, visit.category.url
        elif landing_kind == 2:
            product = site.pick_product(rng)
            visit.category = site.categories_by_slug[product.category]  # type: ignore[attr-defined]
            visit.page, visit.url, visit.product = PRODUCT, product.url, product
        elif landing_kind == 3:
            query = site.pick_query(rng)
            visit.page, visit.url = SEARCH, query.url
        else:
            visit.page, visit.url = HOME, site.home_url
        visit.plan = ((0, _PV_SEG, self._segs.page[visit.url], _NO_TAIL),)
        visit.left = 1
        active.add(user)
        self._agenda.push(at_ms, visit)

    # --- the event loop ---------------------------------------------------------------
    def peek_ms(self) -> int | None:
        """When the next event happens (admitting visits that arrive first), or None at the end."""
        agenda = self._agenda
        end = self.end_ms
        while True:
            arrival = self._next_arrival
            top = agenda.first
            if top is not None and top < arrival:
                return None if end is not None and top > end else top
            if end is not None and arrival > end:
                return top if top is not None and top <= end else None
            self._start_visit(arrival)
            self._advance_arrival()

    def pop(self, until_ms: int | None = None) -> tuple[int, bytes, bytes] | None:
        """The next event as (time in ms, key, canonical wire bytes), or None.

        None means the simulation has ended, or (with ``until_ms``) that the next event
        is later than ``until_ms``. ``peek_ms`` inlined: this runs once per event.
        """
        agenda = self._agenda
        end = self.end_ms
        if until_ms is not None and (end is None or until_ms < end):
            end = until_ms
        while True:
            top = agenda.first
            arrival = self._next_arrival
            if top is not None and top < arrival:
                return None if end is not None and top > end else self._step(True)
            if end is not None and arrival > end:
                return self._step(True) if top is not None and top <= end else None
            self._start_visit(arrival)
            self._advance_arrival()

    def _step(self, emit: bool) -> tuple[int, bytes, bytes] | None:
        at_ms, visit = self._agenda.pop()
        visit.left -= 1
        _, type_seg, page_seg, tail = visit.plan[visit.left]
        previous = visit.session
        state = visit.session = advance(previous, at_ms, visit.landing, self._session_id)
        if not visit.head_seg or state[1] is not previous[1]:  # type: ignore[index]
            visit.head_seg = visit.user_seg + b',"session_id":' + _ENCODE(state[1])
            visit.tail_seg = self._attr_segs[state[2]] + visit.device_seg
        visit.landing = None
        visit.emitted += 1
        out: tuple[int, bytes, bytes] | None = None
        if emit:
            sec = at_ms // 1000
            if sec != self._sec:
                self._sec = sec
                self._sec_prefix = (_EPOCH + _dt.timedelta(seconds=sec)).isoformat()[:19].encode()
            self._id_counter += 1
            value = b"%s%012x%s%s.%03dZ%s%s%s%s" % (
                self._id_head, self._id_counter, type_seg, self._sec_prefix, at_ms - sec * 1000,
                visit.head_seg, page_seg, visit.tail_seg, tail,
            )  # fmt: skip
            out = (at_ms, visit.key, value)
        if at_ms >= self._next_prune:
            self.tracker.prune(at_ms)
            self._next_prune = at_ms + self._prune_every
        if not visit.left:
            if visit.emitted >= self.config.max_events_per_visit or not self._plan(visit):
                self._active.discard(visit.user)
                self.tracker.checkin(visit.user_id, state)
                return out
            visit.left = len(visit.plan)
        self._agenda.push(at_ms + visit.plan[visit.left - 1][0], visit)
        return out

    # --- the walk ---------------------------------------------------------------------
    def _dwell(self, page: int) -> int:
        r = self._random
        if r() < self.config.idle_rate:
            lo, hi = self._idle
            return lo + int(r() * (hi - lo))
        # Inverse-CDF lookup with linear interpolation: 5x cheaper than lognormvariate.
        table = self._dwell_tables[page]
        x = r() * _TABLE_STEPS
        i = int(x)
        low = table[i]
        return int(low + (table[i + 1] - low) * (x - i))

    def _short_delay(self, lo_ms: int, hi_ms: int) -> int:
        ms = int((lo_ms + self._random() * (hi_ms - lo_ms)) * self._short)
        return ms if ms > 0 else 1

    def _plan(self, v: _Visit) -> bool:
        """Decide what the user does after the current page; False ends the visit.

        Navigation is a click on the current page followed by the next page's view a
        moment later; the first event of a plan waits the dwell time of the current page.
        Written as straight-line code (no closures): it runs for every other event.
        """
        r = self._random
        cfg = self.config
        site = self.site
        segs = self._segs
        page = v.page
        if v.emitted == 1:
            if r() < cfg.bounce_rate:  # a bounce: the landing page view and nothing else
                return False
        elif r() < _EXIT[page]:
            return False
        dwell = self._dwell(page)
        here = segs.page[v.url]
        short = self._short_delay
        x = r()
        # (target page kind, url, element clicked to get there) or a non-navigating event
        if page == HOME:
            if x < 0.55:
                self._go_category(v, dwell, here, None)
            elif x < 0.80:
                self._search(v, dwell, here)
            else:
                self._go_product(v, dwell, here, None, _HOME_PROMOS[int(r() * len(_HOME_PROMOS))])
        elif page == CATEGORY:
            if x < 0.65:
                self._go_product(v, dwell, here, v.category, None)
            elif x < 0.80:
                element = _CATEGORY_ENGAGE[int(r() * len(_CATEGORY_ENGAGE))]
                v.plan = ((dwell, _CLICK_SEG, here, segs.click[element]),)
            elif x < 0.92:
                self._search(v, dwell, here)
            else:
                self._go(v, dwell, here, "nav-home", HOME, site.home_url)
        elif page == SEARCH:
            if x < 0.72:
                self._go_product(v, dwell, here, None, None)
            elif x < 0.90:
                self._search(v, dwell, here)
            else:
                self._go(v, dwell, here, "nav-home", HOME, site.home_url)
        elif page == PRODUCT:
            product = v.product
            assert product is not None
            if r() < cfg.add_to_cart_rate * v.buyer:
                v.plan = (
                    (short(50, 400), _TYPE_SEG[_ATC], here, segs.add_to_cart[product.product_id]),
                    (dwell, _CLICK_SEG, here, segs.click["add-to-cart"]),
                )
                v.cart += (product,)
            elif x < 0.30 and v.cart:
                self._go(v, dwell, here, "header-cart", CART, site.cart_url)
            elif x < 0.62:
                self._go_product(v, dwell, here, v.category, None)
            elif x < 0.78:
                element = _PRODUCT_ENGAGE[int(r() * len(_PRODUCT_ENGAGE))]
                v.plan = ((dwell, _CLICK_SEG, here, segs.click[element]),)
            elif x < 0.90:
                self._search(v, dwell, here)
            else:
                self._go_category(v, dwell, here, None)
        elif page == CART:
            if v.cart and r() < min(0.95, cfg.checkout_rate * v.buyer):
                self._go(v, dwell, here, "checkout-button", CHECKOUT, site.checkout_url)
            else:
                self._go_category(v, dwell, here, "continue-shopping")
        elif page == CHECKOUT:
            if not v.cart or r() >= cfg.purchase_rate:
                return False  # abandoned checkout
            # One purchase event per order: revenue is the cart total; product_id and
            # price name the order's most expensive line.
            top = max(v.cart, key=_price_of)
            revenue = sum((p.price for p in v.cart), Decimal("0.00"))
            order_id = "o-%016x" % self._getrandbits(64)
            v.plan = (
                (short(300, 1500), _PV_SEG, segs.page[site.confirmation_url], _NO_TAIL),
                (
                    short(500, 3000),
                    _TYPE_SEG[_PURCHASE],
                    here,
                    _tail(None, None, top.product_id, top.price, order_id, revenue),
                ),
                (dwell, _CLICK_SEG, here, segs.click["place-order"]),
            )
            v.page, v.url = CONFIRMATION, site.confirmation_url
            v.cart = ()
        else:  # CONFIRMATION
            self._go(v, dwell, here, "continue-shopping", HOME, site.home_url)
        return True

    def _go(self, v: _Visit, dwell: int, here: bytes, element: str, kind: int, url: str) -> None:
        """Click ``element`` on the current page, then view ``url`` (plans are reversed)."""
        segs = self._segs
        v.plan = (
            (self._short_delay(150, 1500), _PV_SEG, segs.page[url], _NO_TAIL),
            (dwell, _CLICK_SEG, here, segs.click[element]),
        )
        v.page, v.url = kind, url

    def _go_category(self, v: _Visit, dwell: int, here: bytes, element: str | None) -> None:
        cat = self.site.pick_category(self._rng)
        self._go(v, dwell, here, element or cat.nav_element, CATEGORY, cat.url)
        v.category = cat

    def _go_product(self, v: _Visit, dwell: int, here: bytes, category: Category | None, element: str | None) -> None:
        product = self.site.pick_product(self._rng, category)
        self._go(v, dwell, here, element or product.card_element, PRODUCT, product.url)
        v.product = product
        v.category = self.site.categories_by_slug[product.category]  # type: ignore[attr-defined]

    def _search(self, v: _Visit, dwell: int, here: bytes) -> None:
        """Type a query on the current page, then view its results page."""
        q = self.site.pick_query(self._rng)
        segs = self._segs
        v.plan = (
            (self._short_delay(300, 1200), _PV_SEG, segs.page[q.url], _NO_TAIL),
            (dwell, _TYPE_SEG[_SEARCH], here, segs.search[q.text]),
        )
        v.page, v.url = SEARCH, q.url


_TABLE_STEPS: Final = 1024


def _lognormal_table(median: float, sigma: float, low: float, high: float) -> tuple[float, ...]:
    """Quantiles of a lognormal (clamped to [low, high], at least 1 ms) at 1025 points."""
    normal = NormalDist()
    out = []
    for i in range(_TABLE_STEPS + 1):
        p = (i + 0.5) / (_TABLE_STEPS + 1)
        value = median * math.exp(sigma * normal.inv_cdf(p))
        out.append(max(1.0, low, min(high, value)))
    return tuple(out)


def _price_of(product: Product) -> Decimal:
    return product.price


def _cum(weights: list[float]) -> tuple[float, ...]:
    """Normalised cumulative weights; the last is nudged above 1 so bisect stays in range."""
    total = sum(weights)
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"bad weights {weights!r}")
    cum = [c / total for c in accumulate(weights)]
    cum[-1] = 1.0 + 1e-12
    return tuple(cum)


@functools.lru_cache(maxsize=8)
def _site(host: str) -> SiteMap:
    site = SiteMap(host)
    site.categories_by_slug = {c.slug: c for c in site.categories}  # type: ignore[attr-defined]
    site.segments = _Segments(site)  # type: ignore[attr-defined]
    return site


@dataclass(frozen=True)
class _Stats:
    mean_events: float
    mean_duration_s: float
    p95_duration_s: float


def _behaviour(config: SimulationConfig) -> SimulationConfig:
    """The config with everything that does not change a visit's shape normalised away.

    Used as the calibration cache key, so runs that differ only in seed, rate or size
    share one calibration.
    """
    return replace(config, seed=0, rate=1.0, users=None, diurnal=False, max_users=1, max_concurrency=1)


@functools.lru_cache(maxsize=32)
def _calibration(config: SimulationConfig) -> _Stats:
    """Mean events and duration of a visit under ``config``, measured by simulation.

    The arrival rate that yields ``config.rate`` events/s depends on how long visits
    are, which depends on every probability in the config; simulating a few thousand
    visits with a fixed private seed is simpler and more honest than a formula.
    """
    sim = Simulation.__new__(Simulation)
    sim._init_walk(config, random.Random("calibration"), 1.0, 1_000)
    counts: list[int] = []
    durations: list[float] = []
    for _ in range(10_000):  # about 1% standard error on the mean; ~0.3 s once per process
        sim._start_visit(0)
        visit = sim._agenda.pop()[1]
        sim._active.clear()
        elapsed = 0
        while True:
            visit.left -= 1
            visit.emitted += 1
            if not visit.left:
                if visit.emitted >= config.max_events_per_visit or not sim._plan(visit):
                    break
                visit.left = len(visit.plan)
            elapsed += visit.plan[visit.left - 1][0]
        counts.append(visit.emitted)
        durations.append(elapsed / 1000.0)
    durations.sort()
    return _Stats(sum(counts) / len(counts), sum(durations) / len(durations), durations[int(0.95 * len(durations))])


# --- the two ways to run it ------------------------------------------------------------
def backfill(
    config: SimulationConfig,
    end_time: _dt.datetime,
    *,
    window: _dt.timedelta = _dt.timedelta(hours=24),
    faults: FaultConfig = NO_FAULTS,
) -> Iterator[Message]:
    """Every message of the window ``(end_time - window, end_time]``, in time order.

    Valid events come out in ``occurred_at`` order across interleaved users; faults (if
    configured) add duplicates, hold some events back (late) and insert malformed
    messages. Deterministic: the same config, end_time, window and faults give the
    same messages, byte for byte. Pull lazily; use ``itertools.islice`` for a count.
    """
    end_ms = to_ms(end_time)
    start_ms = end_ms - int(window.total_seconds() * 1000) + 1
    sim = Simulation(config, start_ms, end_ms)
    pop = sim.pop
    if faults == NO_FAULTS:
        while (item := pop()) is not None:
            yield Message(item[1], item[2])
        return
    injector = FaultInjector(faults, config.seed)
    while (item := pop()) is not None:
        yield from injector.push(*item)
    yield from injector.flush()


class LiveStream:
    """Events as they happen: ``until(now)`` returns every message due by ``now``.

    The caller owns the clock (pass ``datetime.now(timezone.utc)`` in production, any
    sequence of instants in tests); the stream content depends only on the config,
    ``start`` and faults, never on when or how often ``until`` is called. For a flat
    ``--rate N`` pass ``SimulationConfig(rate=N, diurnal=False)``. At high rates dwell
    times are compressed (see ``SimulationConfig.max_concurrency``) so that memory
    stays bounded; session ids still follow the 30-minute rule on the actual times.
    """

    def __init__(self, config: SimulationConfig, start: _dt.datetime, *, faults: FaultConfig = NO_FAULTS) -> None:
        self.simulation = Simulation(config, to_ms(start))
        self._injector = FaultInjector(faults, config.seed) if faults != NO_FAULTS else None

    def next_due(self) -> _dt.datetime | None:
        """When the next event happens: how long a paced producer may sleep."""
        t = self.simulation.peek_ms()
        return None if t is None else from_ms(t)

    def until(self, now: _dt.datetime) -> list[Message]:
        """All messages whose time is at or before ``now``, in emission order."""
        now_ms = to_ms(now)
        pop = self.simulation.pop
        out: list[Message] = []
        injector = self._injector
        if injector is None:
            append = out.append
            while (item := pop(now_ms)) is not None:
                append(Message(item[1], item[2]))
            return out
        while (item := pop(now_ms)) is not None:
            out.extend(injector.push(*item))
        out.extend(injector.release(now_ms))
        return out
