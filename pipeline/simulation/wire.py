"""Pre-encoded pieces of the wire form, so the engine joins bytes instead of building events.

The hot loop never builds an ``Event``: it joins pre-encoded JSON segments in contract
field order. Every segment comes from the same msgspec encoder as ``encode_event``, and
a test checks ``encode_event(decode(value)) == value`` on generated streams, so the two
paths cannot disagree. What varies per event (event id, timestamp, session id) is
formatted by the engine itself; everything else is looked up here.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Iterable
from decimal import Decimal
from typing import Final

import msgspec

from pipeline.simulation.epoch import EPOCH
from pipeline.simulation.population import UserProfile
from pipeline.simulation.sitemap import SiteMap
from pipeline.simulation.tracker import Attribution

ENCODE: Final = msgspec.json.Encoder(decimal_format="number").encode


def _type_seg(event_type: str) -> bytes:
    """From the end of the event id to the opening quote of ``occurred_at``."""
    return b'","schema_version":1,"event_type":' + ENCODE(event_type) + b',"occurred_at":"'


PAGE_VIEW_SEG: Final = _type_seg("page_view")
CLICK_SEG: Final = _type_seg("click")
SEARCH_SEG: Final = _type_seg("search")
ADD_TO_CART_SEG: Final = _type_seg("add_to_cart")
PURCHASE_SEG: Final = _type_seg("purchase")


def tail(
    element: str | None = None,
    query: str | None = None,
    product_id: str | None = None,
    price: Decimal | None = None,
    order_id: str | None = None,
    revenue: Decimal | None = None,
) -> bytes:
    """The type-specific fields, encoded: the last six keys of the wire form."""
    return (
        b',"element_id":' + ENCODE(element) + b',"search_query":' + ENCODE(query)
        + b',"product_id":' + ENCODE(product_id) + b',"price":' + ENCODE(price)
        + b',"order_id":' + ENCODE(order_id) + b',"revenue":' + ENCODE(revenue) + b"}"
    )  # fmt: skip


NO_TAIL: Final = tail()


def attribution_seg(a: Attribution) -> bytes:
    return (
        b',"referrer":' + ENCODE(a.referrer) + b',"utm_source":' + ENCODE(a.utm_source)
        + b',"utm_medium":' + ENCODE(a.utm_medium) + b',"utm_campaign":' + ENCODE(a.utm_campaign)
    )  # fmt: skip


MS_PER_MINUTE: Final = 60_000


def minute_prefix(minute: int) -> bytes:
    """``occurred_at`` up to its seconds: ``YYYY-MM-DDTHH:MM:`` of minute ``minute`` since the epoch."""
    return (EPOCH + _dt.timedelta(minutes=minute)).isoformat()[:17].encode()


@functools.cache
def second_stamps() -> tuple[bytes, ...]:
    """The rest of ``occurred_at`` for every millisecond of a minute: ``SS.mmmZ``, by index.

    With ``minute_prefix`` this writes a timestamp with one lookup per event instead of
    formatting a datetime (at backfill rates nearly every event starts a new second).
    60,000 small bytes objects, about 3 MB, built once per process on first use.
    """
    return tuple(b"%02d.%03dZ" % (second, ms) for second in range(60) for ms in range(1000))


COUNTER_LOW_MASK: Final = 0xFFF
"""The counter's last three hex digits: an event id is ``event_id_prefix`` + ``counter_lows()[n & mask]``."""


@functools.cache
def counter_lows() -> tuple[bytes, ...]:
    """The last three hex digits of an event id's counter, by value: a lookup, not a format, per event."""
    return tuple(b"%03x" % low for low in range(COUNTER_LOW_MASK + 1))


def event_id_prefix(head: bytes, counter: int) -> bytes:
    """An event id up to the last three hex digits of its 48-bit counter (changes every 4096 events)."""
    return head + b"%09x" % (counter >> 12)


def event_id_head(bits: int) -> bytes:
    """The start of every event of a run, up to its 48-bit counter, from 80 random bits.

    Event ids are an RFC 9562 version-8 ("custom") UUID: a random 74-bit prefix per run
    and a counter. Unique within a run by construction and across runs by the prefix;
    far cheaper than 128 fresh random bits per event.
    """
    head = f"{bits >> 48:08x}-{(bits >> 32) & 0xFFFF:04x}-8{(bits >> 20) & 0xFFF:03x}-"
    head += f"{0x8 | ((bits >> 18) & 0x3):x}{(bits >> 6) & 0xFFF:03x}-"
    return b'{"event_id":"' + head.encode()


class Segments:
    """Pre-encoded wire segments of everything on a site: page URLs, event tails, attributions."""

    def __init__(self, site: SiteMap, fixed_elements: Iterable[str], attributions: Iterable[Attribution]) -> None:
        urls = [site.home_url, site.cart_url, site.checkout_url, site.confirmation_url]
        urls += [c.url for c in site.categories] + [p.url for p in site.products.values()]
        urls += [q.url for q in site.ordinary_queries + site.odd_queries]
        self.page = {u: b',"page_url":' + ENCODE(u) for u in urls}
        elements = list(fixed_elements) + [c.nav_element for c in site.categories]
        elements += [p.card_element for p in site.products.values()]
        self.click = {e: tail(element=e) for e in elements}
        self.search = {q.text: tail(query=q.text) for q in site.ordinary_queries + site.odd_queries}
        self.add_to_cart = {p.product_id: tail(product_id=p.product_id, price=p.price) for p in site.products.values()}
        self.attribution = {a: attribution_seg(a) for a in attributions}


UserCard = tuple[str, bytes, bytes, bytes, float]
"""What a visit needs of its user, pre-encoded: (user_id, key, user_id segment,
device/browser/os/country segment, buyer multiplier)."""


def user_card(profile: UserProfile) -> UserCard:
    device_seg = (
        b',"device_type":' + ENCODE(profile.device_type) + b',"browser":' + ENCODE(profile.browser)
        + b',"os":' + ENCODE(profile.os) + b',"country":' + ENCODE(profile.country)
    )  # fmt: skip
    user_seg = b'","user_id":' + ENCODE(profile.user_id)
    return profile.user_id, profile.user_id.encode(), user_seg, device_seg, profile.buyer
