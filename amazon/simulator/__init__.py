"""A local fake of Amazon's Selling Partner API (LWA, Sellers, Listings Items, Product Pricing v0,
Orders v0, Finances v0, FBA Inventory, Reports, Feeds, ANY_OFFER_CHANGED notifications) backed by a
deterministic marketplace model. Pure Python + werkzeug: no Django. See README.md."""

from .app import SimulatorApp
from .market import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    DEMO_SELLER_ID,
    MARKETPLACES,
    Clock,
    Listing,
    Market,
    Offer,
    Product,
)
from .orders import Order, OrderItem
from .server import SimulatorServer

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_REFRESH_TOKEN",
    "DEMO_SELLER_ID",
    "MARKETPLACES",
    "Clock",
    "Listing",
    "Market",
    "Offer",
    "Order",
    "OrderItem",
    "Product",
    "SimulatorApp",
    "SimulatorServer",
]
