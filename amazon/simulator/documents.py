"""Reports and feeds 2021-06-30 for the simulator: report and feed jobs whose status moves over
simulated time, the documents they read and write (served and accepted by the simulator itself, like
Amazon's presigned S3 URLs), the GET_MERCHANT_LISTINGS_ALL_DATA report and JSON_LISTINGS_FEED
processing (validated against Amazon's listings feed schema when it is available)."""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .models_dir import spapi_models_path

if TYPE_CHECKING:
    from .market import Listing, Market

REPORT_TYPES = ("GET_MERCHANT_LISTINGS_ALL_DATA",)
FEED_TYPES = ("JSON_LISTINGS_FEED",)
# Amazon's models beside the repository (see models_dir.py); absent in some deployments
DEFAULT_SCHEMA_DIR = spapi_models_path("schemas", "feeds")


@dataclass
class Document:
    document_id: str
    content_type: str
    content: bytes | None  # as stored (gzip-compressed when ``compressed``); None until uploaded
    compressed: bool = False
    upload: bool = False  # a feed document awaiting (or having received) its PUT


def _status(now: datetime, started: datetime, finished: datetime, fatal: bool = False) -> str:
    if now < started:
        return "IN_QUEUE"
    if now < finished:
        return "IN_PROGRESS"
    return "FATAL" if fatal else "DONE"


@dataclass
class Report:
    report_id: str
    seller_id: str
    report_type: str
    marketplace_ids: list[str]
    created: datetime
    started: datetime
    finished: datetime
    options: dict[str, Any] = field(default_factory=dict)
    document_id: str | None = None

    def status_at(self, now: datetime) -> str:
        return _status(now, self.started, self.finished)


@dataclass
class Feed:
    feed_id: str
    seller_id: str
    feed_type: str
    marketplace_ids: list[str]
    input_document_id: str
    created: datetime
    started: datetime
    finished: datetime
    result_document_id: str | None = None
    fatal: bool = False

    def status_at(self, now: datetime) -> str:
        return _status(now, self.started, self.finished, self.fatal)


# ------------------------------------------------------------------ GET_MERCHANT_LISTINGS_ALL_DATA

MERCHANT_LISTINGS_COLUMNS = (
    "item-name",
    "item-description",
    "listing-id",
    "seller-sku",
    "price",
    "quantity",
    "open-date",
    "image-url",
    "item-is-marketplace",
    "product-id-type",
    "zshop-shipping-fee",
    "item-note",
    "item-condition",
    "zshop-category1",
    "zshop-browse-path",
    "zshop-storefront-feature",
    "asin1",
    "asin2",
    "asin3",
    "will-ship-internationally",
    "expedited-shipping",
    "zshop-boldface",
    "product-id",
    "bid-for-featured-placement",
    "add-delete",
    "pending-quantity",
    "fulfillment-channel",
    "merchant-shipping-group",
    "status",
)
CONDITIONS = {"new_new": "11", "used_like_new": "1", "used_very_good": "2", "used_good": "3"}


def merchant_listings_report(
    listings: list[Listing], titles: dict[tuple[str, str], str], marketplace_ids: list[str]
) -> bytes:
    """The tab-separated "All Listings Report" as Amazon lays it out (FBA rows leave quantity empty)."""
    lines = ["\t".join(MERCHANT_LISTINGS_COLUMNS)]
    for li in listings:
        status = "Active" if "BUYABLE" in li.status else ("Inactive" if li.active else "Incomplete")
        row = {
            "item-name": li.item_name or titles.get((li.marketplace_id, li.asin), ""),
            "listing-id": f"{zlib.crc32(f'{li.seller_id}/{li.sku}'.encode()):010d}{li.asin[-4:]}",
            "seller-sku": li.sku,
            "price": str(li.price),
            "quantity": "" if li.is_fba else str(li.quantity),
            "open-date": li.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "image-url": f"https://m.media-amazon.com/images/I/{li.asin}.jpg",
            "item-is-marketplace": "y",
            "product-id-type": "1",
            "item-condition": CONDITIONS.get(li.condition_type, "11"),
            "asin1": li.asin,
            "product-id": li.asin,
            "pending-quantity": "0",
            "fulfillment-channel": li.fulfillment_channel,
            "merchant-shipping-group": "Migrated Template",
            "status": status,
        }
        lines.append("\t".join(row.get(c, "").replace("\t", " ") for c in MERCHANT_LISTINGS_COLUMNS))
    return ("\n".join(lines) + "\n").encode()


def stored(content: bytes, compress: bool) -> bytes:
    return gzip.compress(content, mtime=0) if compress else content


# ------------------------------------------------------------------ JSON_LISTINGS_FEED


@cache
def _feed_validator(directory: str) -> Any:
    path = Path(directory) / "listings-feed-schema-v2.json"
    if not path.is_file():
        return None
    try:
        import jsonschema
    except ImportError:  # pragma: no cover
        return None
    return jsonschema.Draft7Validator(json.loads(path.read_text()))


def _issue(message_id: int | None, sku: str | None, code: str, message: str, **extra: Any) -> dict[str, Any]:
    issue: dict[str, Any] = {"code": code, "severity": "ERROR", "message": message}
    if message_id is not None:
        issue["messageId"] = message_id
    if sku:
        issue["sku"] = sku
    issue.update(extra)
    return issue


def process_listings_feed(market: Market, feed: Feed, content: bytes | None) -> tuple[bytes, bool]:
    """Process a JSON_LISTINGS_FEED: returns (the processing report document, fatal?). PATCH and
    PARTIAL_UPDATE messages become listings submissions (``market.submit_patch``); UPDATE and DELETE are
    not modelled and come back as ERROR issues."""
    header: dict[str, Any] = {"sellerId": feed.seller_id, "version": "2.0", "feedId": feed.feed_id}
    issues: list[dict[str, Any]] = []
    accepted = invalid = 0
    messages: list[Any] = []
    fatal = False
    if feed.feed_type not in FEED_TYPES:
        issues.append(_issue(None, None, "90000900", f"Feed type {feed.feed_type} is not supported."))
        fatal = True
    elif content is None:
        issues.append(_issue(None, None, "90000001", "The feed document was never uploaded."))
        fatal = True
    else:
        try:
            document = json.loads(gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content)
        except (ValueError, OSError):
            document = None
        if not isinstance(document, dict):
            issues.append(_issue(None, None, "90000001", "The feed is not a valid JSON document."))
            fatal = True
        else:
            validator = _feed_validator(market.feed_schema_dir or str(DEFAULT_SCHEMA_DIR))
            bad_messages: dict[int, str] = {}
            if validator is not None:
                for error in validator.iter_errors(document):
                    path = list(error.absolute_path)
                    if len(path) >= 2 and path[0] == "messages" and isinstance(path[1], int):
                        bad_messages.setdefault(path[1], error.message)
                    else:
                        issues.append(_issue(None, None, "90000001", f"Invalid feed: {error.message}"))
                        fatal = True
            if str((document.get("header") or {}).get("sellerId")) != feed.seller_id:
                issues.append(_issue(None, None, "90000002", "header.sellerId is not the feed's seller."))
                fatal = True
            messages = document.get("messages") or [] if not fatal else []
            for index, message in enumerate(messages):
                ok = _process_message(market, feed, index, message, bad_messages.get(index), issues)
                accepted += ok
                invalid += not ok
    errors = sum(1 for i in issues if i["severity"] == "ERROR")
    report = {
        "header": header,
        "issues": issues,
        "summary": {
            "errors": errors,
            "warnings": sum(1 for i in issues if i["severity"] == "WARNING"),
            "messagesProcessed": len(messages),
            "messagesAccepted": accepted,
            "messagesInvalid": invalid,
        },
    }
    return json.dumps(report, indent=2).encode(), fatal


def _process_message(
    market: Market,
    feed: Feed,
    index: int,
    message: Any,
    schema_error: str | None,
    issues: list[dict[str, Any]],
) -> bool:
    if not isinstance(message, dict):
        issues.append(_issue(None, None, "90000001", f"messages[{index}] is not an object."))
        return False
    message_id = message.get("messageId") if isinstance(message.get("messageId"), int) else None
    sku = message.get("sku") if isinstance(message.get("sku"), str) else None
    if schema_error is not None:
        issues.append(_issue(message_id, sku, "90000001", schema_error))
        return False
    assert sku is not None
    operation = message["operationType"]
    if operation == "PATCH":
        body = {"productType": message.get("productType"), "patches": message.get("patches") or []}
    elif operation == "PARTIAL_UPDATE":
        body = {
            "productType": message.get("productType"),
            "patches": [
                {"op": "replace", "path": f"/attributes/{name}", "value": value}
                for name, value in (message.get("attributes") or {}).items()
            ],
        }
    else:
        issues.append(
            _issue(message_id, sku, "90000900", f"The simulator does not support {operation} messages.")
        )
        return False
    marketplace_id = feed.marketplace_ids[0]
    if market.listing(feed.seller_id, sku, marketplace_id) is None:
        issues.append(
            _issue(message_id, sku, "4000004", f"SKU '{sku}' does not exist in marketplace {marketplace_id}.")
        )
        return False
    result = market.submit_patch(feed.seller_id, sku, [marketplace_id], body)
    if result["status"] != "ACCEPTED":
        for problem in result["issues"]:
            extra = {"attributeName": problem["attributeNames"][0]} if problem.get("attributeNames") else {}
            issues.append(_issue(message_id, sku, problem["code"], problem["message"], **extra))
        return False
    return True
