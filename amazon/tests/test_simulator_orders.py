"""Orders, finances, FBA inventory, reports, feeds and ANY_OFFER_CHANGED notifications from the
simulator: the market model directly, and the real python-amazon-sp-api client against the server."""

from __future__ import annotations

import gzip
import io
import json
import threading
import time
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
import pytest
from sp_api.api import Feeds, Finances, Inventories, Orders, Reports
from sp_api.base import Marketplaces

from amazon.simulator.market import US, Market
from amazon.simulator.models_dir import spapi_models_path
from amazon.tests.test_simulator_sp_api import token_client_for

SCHEMAS = spapi_models_path("schemas")


def _schema(relative: str) -> Any:
    path = SCHEMAS / relative
    if not path.is_file():
        pytest.skip(f"Amazon's schema {relative} is not at {SCHEMAS} (set SPAPI_MODELS_DIR)")
    return json.loads(path.read_text())


def client(cls, simulator, **kwargs):
    api = cls(
        marketplace=Marketplaces.US,
        credentials=simulator.credentials,
        auth_token_client_class=token_client_for(simulator.lwa_url),
        **kwargs,
    )
    api.endpoint = simulator.base_url
    return api


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ the model


def test_bulk_generation_is_fast_deterministic_and_lives_over_time():
    market = Market.demo(seed=3, skus=40)
    started = time.perf_counter()
    orders = market.generate_orders(100_000, days=90)
    assert time.perf_counter() - started < 10
    assert len(market.orders) == 100_000 and len({o.order_id for o in orders}) == 100_000
    now = market.clock.now()
    statuses = Counter(o.status_at(now) for o in orders)
    assert statuses["Shipped"] > 90_000 and statuses["Canceled"] > 2000
    assert statuses["Pending"] and statuses["Unshipped"]

    again = Market.demo(seed=3, skus=40).generate_orders(100_000, days=90)
    assert [(o.order_id, o.purchased, o.total_cents, o.shipped_at) for o in again] == [
        (o.order_id, o.purchased, o.total_cents, o.shipped_at) for o in orders
    ]

    # status and last-update time move with the clock
    pending = next(o for o in orders if o.status_at(now) == "Pending")
    before = pending.last_update_at(now)
    market.clock.advance(3 * 86400)
    later = market.clock.now()
    assert pending.status_at(later) in ("Shipped", "Canceled")
    assert pending.last_update_at(later) > before


def test_live_buyers_create_orders_for_our_seller_and_generation_does_not_change_the_market():
    a, b = Market.demo(seed=7, skus=20), Market.demo(seed=7, skus=20)
    b.generate_orders(500)
    a.clock.advance(2 * 86400)
    b.clock.advance(2 * 86400)
    assert a.snapshot() == b.snapshot()  # the bulk history has its own random stream
    ours = [s for s in a.sales if s.sku is not None]
    assert ours and all(s.order_id in a.orders for s in ours)
    order = a.orders[ours[0].order_id]
    assert order.items[0].price_cents == int(ours[0].item_price * 100)


def test_finance_events_carry_fees_charges_refunds_and_reimbursements():
    market = Market.demo(seed=5, skus=30)
    orders = market.generate_orders(3000, days=90)
    kinds = Counter(kind for o in orders for _, kind, _ in o.financial_events())
    assert (
        kinds["ShipmentEventList"] > 2500 and kinds["RefundEventList"] > 50 and kinds["AdjustmentEventList"]
    )
    afn = next(o for o in orders if o.afn and o.shipped_at)
    (_, _, shipment), *_ = afn.financial_events()
    item = shipment["ShipmentItemList"][0]
    assert [f["FeeType"] for f in item["ItemFeeList"]] == ["Commission", "FBAPerUnitFulfillmentFee"]
    assert all(f["FeeAmount"]["CurrencyAmount"] < 0 for f in item["ItemFeeList"])
    assert item["ItemChargeList"][0] == {
        "ChargeType": "Principal",
        "ChargeAmount": {"CurrencyCode": "USD", "CurrencyAmount": afn.items[0].price_cents / 100},
    }


# ------------------------------------------------------------------ sp_api against the server


def test_orders_incremental_sync_with_sp_api(simulator):
    market = simulator.market
    market.throttling = False
    market.generate_orders(750, days=10)
    orders_api = client(Orders, simulator)
    since = iso(market.clock.now() - timedelta(days=11))

    seen: dict[str, str] = {}
    response = orders_api.get_orders(CreatedAfter=since, MaxResultsPerPage=100)
    pages = 1
    while True:
        for o in response.payload["Orders"]:
            seen[o["AmazonOrderId"]] = o["OrderStatus"]
        if not response.next_token:
            break
        response = orders_api.get_orders(NextToken=response.next_token)
        pages += 1
    assert len(seen) == 750 and pages == 8
    cursor = response.payload["CreatedBefore"]

    order_id = next(k for k, v in seen.items() if v == "Shipped")
    assert orders_api.get_order(order_id).payload["OrderTotal"]["CurrencyCode"] == "USD"
    items = orders_api.get_order_items(order_id).payload["OrderItems"]
    assert items[0]["ItemPrice"]["Amount"] and items[0]["SellerSKU"].startswith("DM-")

    # a day later: only what changed since the cursor comes back, with the new statuses
    market.clock.advance(86400)
    orders_api = client(Orders, simulator)  # the old access token has expired meanwhile
    changed = orders_api.get_orders(LastUpdatedAfter=cursor, MaxResultsPerPage=100)
    ids = [o["AmazonOrderId"] for o in changed.payload["Orders"]]
    assert ids and "LastUpdatedBefore" in changed.payload
    moved = [o for o in changed.payload["Orders"] if o["AmazonOrderId"] in seen]
    assert moved and all(o["LastUpdateDate"] > cursor for o in moved)
    assert any(o["OrderStatus"] != seen[o["AmazonOrderId"]] for o in moved)
    unshipped = orders_api.get_orders(CreatedAfter=since, OrderStatuses=["Unshipped"]).payload["Orders"]
    assert all(o["OrderStatus"] == "Unshipped" for o in unshipped)


def test_finances_inventory_with_sp_api(simulator):
    market = simulator.market
    market.throttling = False
    orders = market.generate_orders(300, days=30)
    finances = client(Finances, simulator)
    posted_after = iso(market.clock.now() - timedelta(days=31))
    events = finances.list_financial_events(PostedAfter=posted_after, MaxResultsPerPage=100)
    shipments = list(events.payload["FinancialEvents"]["ShipmentEventList"])
    while events.next_token:
        events = finances.list_financial_events(NextToken=events.next_token)
        shipments += events.payload["FinancialEvents"]["ShipmentEventList"]
    assert len(shipments) == sum(
        1 for o in orders if o.shipped_at and o.canceled_at is None and o.shipped_at <= market.clock.now()
    )
    shipped = next(
        o for o in orders if o.shipped_at and o.canceled_at is None and o.shipped_at < market.clock.now()
    )
    by_order = finances.get_financial_events_for_order(shipped.order_id).payload["FinancialEvents"]
    assert by_order["ShipmentEventList"][0]["AmazonOrderId"] == shipped.order_id

    inventory = client(Inventories, simulator)
    summary = inventory.get_inventory_summary_marketplace(details=True, marketplaceIds=US)
    fba = sorted(li.sku for li in market.seller_listings(simulator.seller_id, US) if li.is_fba)
    assert [s["sellerSku"] for s in summary.payload["inventorySummaries"]] == fba
    first = summary.payload["inventorySummaries"][0]
    assert (
        first["inventoryDetails"]["fulfillableQuantity"]
        == market.listing(simulator.seller_id, fba[0]).quantity
    )
    some = inventory.get_inventory_summary_marketplace(sellerSkus=fba[:2], marketplaceIds=US)
    assert [s["sellerSku"] for s in some.payload["inventorySummaries"]] == fba[:2]


def test_merchant_listings_report_with_sp_api_plain_and_gzip(simulator):
    market = simulator.market
    market.throttling = False
    reports = client(Reports, simulator)
    for gzipped in (False, True):
        market.gzip_documents = gzipped
        report_id = reports.create_report(
            reportType="GET_MERCHANT_LISTINGS_ALL_DATA", marketplaceIds=[US]
        ).payload["reportId"]
        assert reports.get_report(report_id).payload["processingStatus"] == "IN_QUEUE"
        market.clock.advance(100)
        done = reports.get_report(report_id).payload
        assert done["processingStatus"] == "DONE"
        document = reports.get_report_document(done["reportDocumentId"], download=True)
        assert ("compressionAlgorithm" in document.payload) is gzipped
        rows = document.payload["document"].splitlines()
        header = rows[0].split("\t")
        assert header[:4] == ["item-name", "item-description", "listing-id", "seller-sku"]
        assert len(rows) == 41
        skus = {r.split("\t")[header.index("seller-sku")] for r in rows[1:]}
        assert skus == {li.sku for li in market.seller_listings(simulator.seller_id, US)}


def test_json_listings_feed_with_sp_api_applies_through_the_delayed_patch_path(simulator):
    market, seller = simulator.market, simulator.seller_id
    market.throttling = False
    li = next(x for x in market.seller_listings(seller, US) if not x.is_fba and "BUYABLE" in x.status)
    old_price = li.price
    new_price = old_price - 1
    feed = {
        "header": {"sellerId": seller, "version": "2.0", "issueLocale": "en_US"},
        "messages": [
            {
                "messageId": 1,
                "sku": li.sku,
                "operationType": "PATCH",
                "productType": li.product_type,
                "patches": [
                    {
                        "op": "replace",
                        "path": "/attributes/purchasable_offer",
                        "value": [
                            {
                                "marketplace_id": US,
                                "currency": "USD",
                                "our_price": [{"schedule": [{"value_with_tax": float(new_price)}]}],
                            }
                        ],
                    }
                ],
            },
            {
                "messageId": 2,
                "sku": li.sku,
                "operationType": "PARTIAL_UPDATE",
                "productType": li.product_type,
                "attributes": {
                    "fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}]
                },
            },
            {"messageId": 3, "sku": "NO-SUCH-SKU", "operationType": "DELETE"},
            {"messageId": 4, "sku": li.sku, "operationType": "PATCH"},  # no productType / patches
        ],
    }
    schema = _schema("feeds/listings-feed-schema-v2.json")
    assert not list(
        jsonschema.Draft7Validator(schema).iter_errors({**feed, "messages": feed["messages"][:3]})
    )

    feeds = client(Feeds, simulator)
    document = feeds.create_feed_document(io.StringIO(json.dumps(feed)), "application/json; charset=UTF-8")
    feed_id = feeds.create_feed(
        "JSON_LISTINGS_FEED", document.payload["feedDocumentId"], marketplaceIds=[US]
    ).payload["feedId"]
    assert feeds.get_feed(feed_id).payload["processingStatus"] == "IN_QUEUE"
    market.clock.advance(40)
    assert feeds.get_feed(feed_id).payload["processingStatus"] == "IN_PROGRESS"
    market.clock.advance(90)
    done = feeds.get_feed(feed_id).payload
    assert done["processingStatus"] == "DONE"
    report = json.loads(feeds.get_feed_result_document(done["resultFeedDocumentId"]))
    report_schema = _schema("feeds/listings-feed-processing-report-schema-v2.json")
    assert not list(jsonschema.Draft7Validator(report_schema).iter_errors(report))
    assert report["summary"]["messagesAccepted"] == 2 and report["summary"]["messagesInvalid"] == 2
    assert {i["messageId"] for i in report["issues"]} == {3, 4}

    # accepted at processing time (40 s after createFeed); applied patch_delay_seconds later
    assert li.price == old_price and li.quantity != 3
    market.clock.advance(market.patch_delay_seconds)
    assert li.price == new_price and li.quantity == 3


def test_gzip_feed_upload_and_fatal_feed(simulator):
    market, seller = simulator.market, simulator.seller_id
    market.throttling = False
    feeds = client(Feeds, simulator)
    body = gzip.compress(
        json.dumps({"header": {"sellerId": "AOTHER", "version": "2.0"}, "messages": []}).encode()
    )
    document = feeds.create_feed_document(io.BytesIO(body), "application/json")
    feed_id = feeds.create_feed("JSON_LISTINGS_FEED", document.payload["feedDocumentId"]).payload["feedId"]
    market.clock.advance(200)
    done = feeds.get_feed(feed_id).payload
    assert done["processingStatus"] == "FATAL"
    report = json.loads(feeds.get_feed_result_document(done["resultFeedDocumentId"]))
    assert report["issues"] and report["header"]["sellerId"] == seller


# ------------------------------------------------------------------ notifications


@pytest.fixture
def receiver():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/notifications", received
    server.shutdown()
    server.server_close()


def test_any_offer_changed_notifications_validate_and_are_posted(simulator, receiver):
    url, received = receiver
    market = simulator.market
    market.subscribe(url)
    market.clock.advance(2 * 3600)  # competitors reprice
    notifications = list(market.pending_notifications)
    assert notifications
    schema = _schema("notifications/AnyOfferChangedNotification.json")
    validator = jsonschema.Draft7Validator(schema)
    ours = {li.asin for li in market.seller_listings(simulator.seller_id, US)}
    for n in notifications:
        assert not list(validator.iter_errors(n)), list(validator.iter_errors(n))[:1]
        body = n["Payload"]["AnyOfferChangedNotification"]
        assert body["SellerId"] == simulator.seller_id and body["OfferChangeTrigger"]["ASIN"] in ours
    # ... and shaped like Amazon's own examples
    example = _schema("../notification-examples/aoc-01-selling-partner-api-models-schema-example.json")
    assert set(example["Payload"]["AnyOfferChangedNotification"]["Summary"]) == set(body["Summary"])

    assert simulator.server.notifications.flush(timeout=20)
    assert len(received) == len(notifications)
    assert received[0] == json.loads(json.dumps(notifications[0]))
    assert {status for _, _, status in market.deliveries} == {204}


def test_notifications_without_http_and_an_unreachable_subscriber_do_not_block(simulator):
    market = simulator.market
    market.notifications_enabled = True  # record only
    market.clock.advance(3600)
    assert market.pending_notifications and market.outbox.empty()
    market.subscribe("http://127.0.0.1:9/unreachable")
    started = time.perf_counter()
    market.clock.advance(3600)
    assert time.perf_counter() - started < 5  # delivery happens on the dispatcher's thread
    assert simulator.server.notifications.flush(timeout=30)
    assert all(str(status).startswith("error") for _, _, status in market.deliveries)
