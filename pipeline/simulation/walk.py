"""The visit walk: how one visitor arrives, lands and moves through the shop.

Why a walk rather than random events: the session metrics downstream (duration,
bounce, conversion, attribution) only mean something if the events behave like real
visits, so a visit lands on a page chosen by its traffic channel and moves on through
category and product pages, searches, cart and checkout, with realistic dwell times.

``Walker.start`` begins a visit (who, from where, which landing page) and
``Walker.plan`` decides what the visitor does after the current page; the engine
(``pipeline.simulation.engine``) schedules the planned events and the calibration
(``pipeline.simulation.calibration``) walks visits without a clock to measure them.
Both share one ``random.Random``: the order of draws is part of the stream, so the
walk draws exactly as it always has.
"""

from __future__ import annotations

import functools
import math
import random
from bisect import bisect_right
from collections.abc import Container
from decimal import Decimal
from itertools import accumulate
from statistics import NormalDist
from typing import Final

from pipeline.simulation.channels import ATTRIBUTIONS, CHANNELS, LANDING
from pipeline.simulation.config import SimulationConfig
from pipeline.simulation.population import Population
from pipeline.simulation.sitemap import Category, Product, SiteMap
from pipeline.simulation.tracker import Attribution, SessionState
from pipeline.simulation.wire import (
    ADD_TO_CART_SEG,
    CLICK_SEG,
    NO_TAIL,
    PAGE_VIEW_SEG,
    PURCHASE_SEG,
    SEARCH_SEG,
    Segments,
    UserCard,
    tail,
    user_card,
)

# Page kinds and their median dwell time in seconds.
HOME, CATEGORY, SEARCH, PRODUCT, CART, CHECKOUT, CONFIRMATION = range(7)
_DWELL_MEDIAN_S: Final = (15.0, 25.0, 20.0, 45.0, 30.0, 80.0, 20.0)
_DWELL_SIGMA: Final = 0.85
_DWELL_MIN_MS: Final = 1_000
_DWELL_MAX_MS: Final = 20 * 60_000
_EXIT: Final = (0.18, 0.20, 0.20, 0.22, 0.15, 0.0, 0.85)  # checkout exits via purchase_rate
_TABLE_STEPS: Final = 1024

_CATEGORY_ENGAGE: Final = ("filter-price", "filter-size", "sort-select", "pagination-next")
_PRODUCT_ENGAGE: Final = ("image-gallery", "size-select", "reviews-tab", "color-swatch")
_HOME_PROMOS: Final = ("hero-banner", "promo-tile-1", "promo-tile-2", "promo-tile-3")
_FIXED_ELEMENTS: Final = (
    *_CATEGORY_ENGAGE, *_PRODUCT_ENGAGE, *_HOME_PROMOS,
    "nav-home", "add-to-cart", "header-cart", "checkout-button", "continue-shopping", "place-order",
)  # fmt: skip
"""Every element id the walk clicks besides category links and product cards."""

_CARD_CACHE_LIMIT: Final = 200_000

Planned = tuple[int, bytes, bytes, bytes]
"""A planned event: (delay before it in ms, type segment, page_url segment, tail segment)."""


class Visit:
    """One visit in flight: who, where they are, what they carry, what comes next."""

    __slots__ = (
        "user", "user_id", "key", "user_seg", "device_seg", "buyer", "landing", "page", "url",
        "category", "product", "cart", "plan", "left", "emitted", "session", "head_seg", "tail_seg",
    )  # fmt: skip

    def __init__(self, user: int, card: UserCard, landing: Attribution) -> None:
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
        self.plan: tuple[Planned, ...] = ()  # reversed: the next event is plan[left - 1]
        self.left = 0
        self.emitted = 0
        self.session: SessionState | None = None  # checked out of the tracker for the visit
        # Per session, pre-joined: user_id + session_id, and attribution + device fields
        # (the wire order puts page_url between the two).
        self.head_seg = b""
        self.tail_seg = b""


@functools.lru_cache(maxsize=8)
def shop(host: str) -> tuple[SiteMap, Segments]:
    """The site map of ``host`` and its pre-encoded segments, built once per process."""
    site = SiteMap(host)
    return site, Segments(site, _FIXED_ELEMENTS, ATTRIBUTIONS)


class Walker:
    """Starts visits and decides each next step, drawing from the caller's ``rng``.

    ``time_scale`` compresses every dwell time and delay by the same factor (see
    ``SimulationConfig.max_concurrency``); ``users`` is the size of the population.
    """

    def __init__(self, config: SimulationConfig, rng: random.Random, time_scale: float, users: int) -> None:
        self.config = config
        self._rng = rng
        self._random = rng.random
        self._getrandbits = rng.getrandbits
        self.site, self.segments = shop(config.host)
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
            c: (tuple(a for _, a in entries), _cum([w for w, _ in entries])) for c, entries in CHANNELS.items()
        }
        self._landing_cum = {c: _cum(list(w)) for c, w in LANDING.items()}
        self._cards: dict[int, UserCard] = {}
        self._dwell_tables = tuple(
            _lognormal_table(
                m * 1000.0 * time_scale, _DWELL_SIGMA, _DWELL_MIN_MS * time_scale, _DWELL_MAX_MS * time_scale
            )
            for m in _DWELL_MEDIAN_S
        )
        self._idle = (int(31 * 60_000 * time_scale), int(120 * 60_000 * time_scale))
        self._short = time_scale  # scale for sub-second delays (click -> page view)

    def start(self, busy: Container[int]) -> Visit | None:
        """A new visit, its landing page view planned; None if the user drawn is ``busy``.

        A user already browsing is redrawn up to three times, then the arrival is dropped.
        """
        rng = self._rng
        population = self.population
        user = population.pick(rng)
        tries = 0
        while user in busy and tries < 3:
            user = population.pick(rng)
            tries += 1
        if user in busy:
            return None
        channel = self._channel_values[bisect_right(self._channel_cum, self._random())]
        attrs, cum = self._channel_tables[channel]
        card = self._cards.get(user)
        if card is None:
            # Profiles are a pure function of the index, so a cache only saves work; heavy
            # users come back often. Cleared wholesale when full: simple and bounded.
            if len(self._cards) >= _CARD_CACHE_LIMIT:
                self._cards.clear()
            card = self._cards[user] = user_card(population.profile(user))
        visit = Visit(user, card, attrs[bisect_right(cum, self._random())])
        site = self.site
        landing_kind = bisect_right(self._landing_cum[channel], self._random())
        if landing_kind == 1:
            visit.category = site.pick_category(rng)
            visit.page, visit.url = CATEGORY, visit.category.url
        elif landing_kind == 2:
            product = site.pick_product(rng)
            visit.category = site.categories_by_slug[product.category]
            visit.page, visit.url, visit.product = PRODUCT, product.url, product
        elif landing_kind == 3:
            query = site.pick_query(rng)
            visit.page, visit.url = SEARCH, query.url
        else:
            visit.page, visit.url = HOME, site.home_url
        visit.plan = ((0, PAGE_VIEW_SEG, self.segments.page[visit.url], NO_TAIL),)
        visit.left = 1
        return visit

    def plan(self, v: Visit) -> bool:
        """Decide what the user does after the current page; False ends the visit.

        Navigation is a click on the current page followed by the next page's view a
        moment later; the first event of a plan waits the dwell time of the current page.
        Written as straight-line code (no closures): it runs for every other event.
        """
        r = self._random
        cfg = self.config
        site = self.site
        segs = self.segments
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
                v.plan = ((dwell, CLICK_SEG, here, segs.click[element]),)
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
                    (short(50, 400), ADD_TO_CART_SEG, here, segs.add_to_cart[product.product_id]),
                    (dwell, CLICK_SEG, here, segs.click["add-to-cart"]),
                )
                v.cart += (product,)
            elif x < 0.30 and v.cart:
                self._go(v, dwell, here, "header-cart", CART, site.cart_url)
            elif x < 0.62:
                self._go_product(v, dwell, here, v.category, None)
            elif x < 0.78:
                element = _PRODUCT_ENGAGE[int(r() * len(_PRODUCT_ENGAGE))]
                v.plan = ((dwell, CLICK_SEG, here, segs.click[element]),)
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
                (short(300, 1500), PAGE_VIEW_SEG, segs.page[site.confirmation_url], NO_TAIL),
                (short(500, 3000), PURCHASE_SEG, here, tail(None, None, top.product_id, top.price, order_id, revenue)),
                (dwell, CLICK_SEG, here, segs.click["place-order"]),
            )
            v.page, v.url = CONFIRMATION, site.confirmation_url
            v.cart = ()
        else:  # CONFIRMATION
            self._go(v, dwell, here, "continue-shopping", HOME, site.home_url)
        return True

    def _dwell(self, page: int) -> int:
        r = self._random
        if r() < self.config.idle_rate:
            lo, hi = self._idle
            return lo + int(r() * (hi - lo))
        # Inverse-CDF lookup with linear interpolation: far cheaper than lognormvariate.
        table = self._dwell_tables[page]
        x = r() * _TABLE_STEPS
        i = int(x)
        low = table[i]
        return int(low + (table[i + 1] - low) * (x - i))

    def _short_delay(self, lo_ms: int, hi_ms: int) -> int:
        ms = int((lo_ms + self._random() * (hi_ms - lo_ms)) * self._short)
        return ms if ms > 0 else 1

    def _go(self, v: Visit, dwell: int, here: bytes, element: str, kind: int, url: str) -> None:
        """Click ``element`` on the current page, then view ``url`` (plans are reversed)."""
        segs = self.segments
        v.plan = (
            (self._short_delay(150, 1500), PAGE_VIEW_SEG, segs.page[url], NO_TAIL),
            (dwell, CLICK_SEG, here, segs.click[element]),
        )
        v.page, v.url = kind, url

    def _go_category(self, v: Visit, dwell: int, here: bytes, element: str | None) -> None:
        cat = self.site.pick_category(self._rng)
        self._go(v, dwell, here, element or cat.nav_element, CATEGORY, cat.url)
        v.category = cat

    def _go_product(self, v: Visit, dwell: int, here: bytes, category: Category | None, element: str | None) -> None:
        product = self.site.pick_product(self._rng, category)
        self._go(v, dwell, here, element or product.card_element, PRODUCT, product.url)
        v.product = product
        v.category = self.site.categories_by_slug[product.category]

    def _search(self, v: Visit, dwell: int, here: bytes) -> None:
        """Type a query on the current page, then view its results page."""
        q = self.site.pick_query(self._rng)
        segs = self.segments
        v.plan = (
            (self._short_delay(300, 1200), PAGE_VIEW_SEG, segs.page[q.url], NO_TAIL),
            (dwell, SEARCH_SEG, here, segs.search[q.text]),
        )
        v.page, v.url = SEARCH, q.url


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
