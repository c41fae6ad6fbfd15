"""The simulated shop: categories, a product catalogue, search queries and page URLs.

The catalogue is built from its own fixed seed, independent of the simulation seed, so
product ids, names and prices are the same in every run: dashboards and tests can rely
on ``p-10042`` always being the same product. Everything is precomputed once (URLs,
percent-encoded search URLs, element ids) so the engine's hot loop only looks
things up.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from decimal import Decimal
from itertools import accumulate
from typing import Final, NamedTuple
from urllib.parse import quote_plus

DEFAULT_HOST: Final = "https://shop.example.com"

# (slug, price floor, price ceiling): a rough price band per category.
_CATEGORIES: Final = (
    ("womens-clothing", 9, 180),
    ("mens-clothing", 9, 160),
    ("shoes", 25, 220),
    ("accessories", 5, 120),
    ("electronics", 15, 1800),
    ("home-kitchen", 6, 400),
    ("beauty", 4, 90),
    ("sports-outdoors", 8, 650),
    ("toys-games", 6, 150),
    ("books", 5, 45),
    ("garden", 6, 300),
    ("pet-supplies", 3, 110),
)

# Mostly ordinary queries; a few carry characters that break naive SQL, JSON or HTML
# handling. They are legitimate user input and must survive the pipeline byte for byte.
ORDINARY_QUERIES: Final = (
    "running shoes",
    "wireless earbuds",
    "summer dress",
    "coffee maker",
    "yoga mat",
    "winter jacket",
    "phone case",
    "kids lego",
    "desk lamp",
    "backpack",
    "sunglasses",
    "air fryer",
    "bluetooth speaker",
    "linen shirt",
    "garden hose",
    "dog bed",
    "mechanical keyboard",
    "water bottle",
    "hiking boots",
    "face serum",
    "board games",
    "cast iron pan",
    "usb c cable",
    "office chair",
    "rain coat",
    "gift card",
)
ODD_QUERIES: Final = (
    'women\'s "summer" dress',
    "50% off shoes",
    "café au lait mug",
    "naïve art print",
    "東京 tote bag",
    "👟 sneakers size 42",
    "C:\\Users\\gifts",
    "'; DROP TABLE events; --",
    '{"size": "M"}',
    "<b>bold</b> & co",
    "tab\tseparated",
    "emoji 🎁🎄 bundle",
)
ODD_QUERY_SHARE: Final = 0.05


class Product(NamedTuple):
    product_id: str
    category: str
    price: Decimal
    url: str
    card_element: str


class Category(NamedTuple):
    slug: str
    url: str
    nav_element: str
    products: tuple[Product, ...]
    cum_weights: tuple[float, ...]
    """Cumulative popularity weights of ``products``, for ``random.choices``."""


class SearchQuery(NamedTuple):
    text: str
    url: str


def _price(rng: random.Random, low: int, high: int) -> Decimal:
    # Log-uniform within the band, then shop-style endings (.99, .49, .00, .95).
    value = low * (high / low) ** rng.random()
    whole = max(1, int(value))
    cents = rng.choice((99, 99, 99, 49, 0, 95))
    return Decimal(f"{whole}.{cents:02d}")


class SiteMap:
    """The shop's pages. Build once; all attributes are read-only afterwards."""

    def __init__(self, host: str = DEFAULT_HOST, products_per_category: int = 150, catalogue_seed: int = 0) -> None:
        if not host.startswith(("https://", "http://")) or host.endswith("/"):
            raise ValueError("host must be like https://shop.example.com (no trailing slash)")
        self.host = host
        rng = random.Random(f"catalogue:{catalogue_seed}")
        self.home_url = host + "/"
        self.cart_url = host + "/cart"
        self.checkout_url = host + "/checkout"
        self.confirmation_url = host + "/checkout/confirmation"
        categories: list[Category] = []
        next_id = 10000
        for slug, low, high in _CATEGORIES:
            products = []
            for _ in range(products_per_category):
                pid = f"p-{next_id}"
                next_id += 1
                products.append(Product(pid, slug, _price(rng, low, high), f"{host}/p/{pid}", f"product-card-{pid}"))
            rng.shuffle(products)  # popularity rank independent of id order
            weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(products))]  # Zipf-like
            categories.append(
                Category(slug, f"{host}/c/{slug}", f"nav-{slug}", tuple(products), tuple(accumulate(weights)))
            )
        self.categories: tuple[Category, ...] = tuple(categories)
        self.categories_by_slug: dict[str, Category] = {c.slug: c for c in categories}
        # Category popularity: a few big departments, a long tail.
        self.category_cum_weights: tuple[float, ...] = tuple(
            accumulate(1.0 / (i + 1) ** 0.7 for i in range(len(categories)))
        )
        self.products: dict[str, Product] = {p.product_id: p for c in categories for p in c.products}
        self.ordinary_queries = tuple(SearchQuery(q, f"{host}/search?q={quote_plus(q)}") for q in ORDINARY_QUERIES)
        self.odd_queries = tuple(SearchQuery(q, f"{host}/search?q={quote_plus(q)}") for q in ODD_QUERIES)

    def pick_category(self, rng: random.Random) -> Category:
        """A category, big departments more often (bisect: cheaper than ``random.choices``)."""
        cum = self.category_cum_weights
        return self.categories[bisect_right(cum, rng.random() * cum[-1])]

    def pick_product(self, rng: random.Random, category: Category | None = None) -> Product:
        """A product of ``category`` (or of a random one), popular products more often."""
        cat = category if category is not None else self.pick_category(rng)
        cum = cat.cum_weights
        return cat.products[bisect_right(cum, rng.random() * cum[-1])]

    def pick_query(self, rng: random.Random) -> SearchQuery:
        pool = self.odd_queries if rng.random() < ODD_QUERY_SHARE else self.ordinary_queries
        return pool[int(rng.random() * len(pool))]
