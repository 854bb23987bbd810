"""SKU pricing (cost, fees, bounds, rule, tags) from a CSV file, and the same settings exported as one.

The file: UTF-8 text (with or without a byte-order mark), comma-, semicolon- or tab-separated (told from
the header row), at most REPRICING_IMPORT_MAX_BYTES bytes and REPRICING_IMPORT_MAX_ROWS rows. Row 1 names
the columns, any of `COLUMNS` in any order; `sku` is required, an unknown column refuses the file:

    sku, marketplace_id, cost, referral_fee_percent, fba_fee, bounds_source, target_percent,
    min_price, max_price, rule, tags

- `marketplace_id` may be left out when the SKU is sold in one marketplace only.
- A column left out of the file leaves that setting unchanged; an empty cell clears it (no cost, no own
  rule, no tags; an empty bounds_source is "entered").
- `bounds_source` is entered | margin | roi; with margin or roi the min price is computed from cost,
  referral fee, FBA fee and `target_percent` (`services.sku_pricing_values_clean`, the same check as the
  dashboard), so `min_price` is left empty (or equal to the computed value).
- `rule` is a rule's name; `tags` are separated by ";" (quote the cell in a semicolon-separated file).
- In a semicolon-separated file a decimal comma is read as a decimal point ("12,50").

Flow: `bounds_import_create` reads the file (a file it cannot read is refused at once and nothing is
stored), then checks every row: a SKU of this company (another company's is unknown), numbers, min ≤
max, each SKU once. The import is then READY with a preview of what would change, or INVALID with every
error (row, column, message). `bounds_import_apply`, when the seller confirms, checks again against the
settings as they are then and writes every row in one transaction with one audit event, or nothing.
Files over REPRICING_IMPORT_INLINE_ROWS rows are checked, and applied, by background jobs whose
progress is a `JobRun`.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.roles import Permission, role_allows
from amazon.models import Listing
from amazon.selectors import seller_connection_list
from config.celery import app
from repricing.models import BoundsImport, RepricingRule, SkuPricing
from repricing.services import SKU_FIELDS, RepricingError, sku_pricing_values_clean
from tenants.audit import audit_record
from tenants.context import require_tenant, tenant_context
from tenants.jobs import TenantTask, enqueue, job_run
from tenants.models import JobRun

logger = logging.getLogger(__name__)

COLUMNS = (
    "sku",
    "marketplace_id",
    "cost",
    "referral_fee_percent",
    "fba_fee",
    "bounds_source",
    "target_percent",
    "min_price",
    "max_price",
    "rule",
    "tags",
)
NUMBER_COLUMNS = frozenset(
    {"cost", "referral_fee_percent", "fba_fee", "target_percent", "min_price", "max_price"}
)
DELIMITERS = (",", ";", "\t")
#: Errors kept per import (all are counted); the page and the API show the kept ones.
MAX_STORED_ERRORS = 20_000
PREVIEW_SAMPLE = 100
LOOKUP_CHUNK = 5_000
PROGRESS_EVERY = 2_000
#: Spreadsheets run a cell starting with one of these as a formula; the export prefixes such a cell
#: with an apostrophe and the import takes it off again, so the file still round-trips.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "rule": None,
    "tags": [],
    "cost": None,
    "referral_fee_percent": None,
    "fba_fee": None,
    "bounds_source": SkuPricing.BoundsSource.ENTERED,
    "target_percent": None,
    "min_price": None,
    "max_price": None,
}


class ImportFileError(RepricingError):
    """The file as a whole cannot be read (encoding, header, CSV syntax, size): nothing is stored."""

    def __init__(self, message: str, *, code: str = "invalid_file", status: int = 400) -> None:
        super().__init__(message, code=code, status=status, field="file")

    @staticmethod
    def too_large_message() -> str:
        limit = _limit_text(settings.REPRICING_IMPORT_MAX_BYTES)
        return f"The file is larger than {limit}: split it into smaller files."


def _require(actor_role: str) -> None:
    if not role_allows(actor_role, Permission.CHANGE_AUTOMATION):
        raise RepricingError(
            "Your role does not allow changing repricing.", code="permission_denied", status=403
        )


# --- Reading the file ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvFile:
    text: str
    delimiter: str
    columns: tuple[str, ...]
    #: (row number in the file, the header being row 1; the cells as written)
    rows: list[tuple[int, list[str]]]


def _limit_text(limit: int) -> str:
    return f"{limit / 1024 / 1024:g} MB" if limit >= 1024 * 1024 else f"{limit:,} bytes"


def read_csv(data: bytes) -> CsvFile:
    """Decode and parse an uploaded file, or refuse it with `ImportFileError`."""
    limit = settings.REPRICING_IMPORT_MAX_BYTES
    if len(data) > limit:
        raise ImportFileError(ImportFileError.too_large_message(), code="file_too_large", status=413)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFileError(
            f"The file is not UTF-8 text (byte {error.start + 1}). In your spreadsheet, save it as "
            "“CSV UTF-8”."
        ) from None
    return parse_csv_text(text)


def _column_name(cell: str) -> str:
    return cell.strip().lower().replace(" ", "_").replace("-", "_")


def _detect_delimiter(text: str) -> str:
    """The delimiter that makes the most known column names of the header line (comma on a tie)."""
    header = text.split("\n", 1)[0]
    best, best_known = ",", -1
    for delimiter in DELIMITERS:
        try:
            cells = next(csv.reader([header], delimiter=delimiter), [])
        except csv.Error:
            continue
        known = sum(1 for cell in cells if _column_name(cell) in COLUMNS)
        if known > best_known:
            best, best_known = delimiter, known
    return best


def parse_csv_text(text: str) -> CsvFile:
    """Parse decoded CSV text: header, columns, rows (blank rows skipped), size limits."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        raise ImportFileError("The file contains NUL characters: it is not a text CSV file.")
    if not text.strip():
        raise ImportFileError(
            "The file is empty: the first row names the columns, e.g. sku,min_price,max_price."
        )
    delimiter = _detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    max_rows = settings.REPRICING_IMPORT_MAX_ROWS
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    number = 0
    try:
        for cells in reader:
            number += 1
            if header is None:
                header = cells
                continue
            if not any(cell.strip() for cell in cells):
                continue
            rows.append((number, cells))
            if len(rows) > max_rows:
                raise ImportFileError(
                    f"The file has more than {max_rows:,} rows: split it into smaller files.",
                    code="too_many_rows",
                    status=413,
                )
    except csv.Error as error:
        raise ImportFileError(f"Line {reader.line_num}: this is not valid CSV ({error}).") from None
    columns = tuple(_column_name(cell) for cell in header or [])
    for index, name in enumerate(columns, start=1):
        if not name:
            raise ImportFileError(f"Column {index} of the header has no name: remove the empty column.")
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        raise ImportFileError(
            f"Unknown column{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
            f"The columns are: {', '.join(COLUMNS)}."
        )
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise ImportFileError(f"The header names {', '.join(repeated)} more than once.")
    if "sku" not in columns:
        raise ImportFileError(
            "The first row must name the columns, and one of them must be sku "
            f"(the columns are: {', '.join(COLUMNS)})."
        )
    if len(columns) == 1:
        raise ImportFileError(
            "The file has only the sku column: add the settings to change (e.g. min_price)."
        )
    return CsvFile(text=text, delimiter=delimiter, columns=columns, rows=rows)


# --- Checking the rows ----------------------------------------------------------------------------------


def visible_listings(user: User | None) -> Any:
    """The listings `user` may work on: the company's, within the Amazon accounts a per-connection grant
    restricts them to (API keys: all). A SKU outside them is unknown, as another company's is."""
    listings = Listing.objects.all()
    if user is None:
        return listings
    connections = seller_connection_list(tenant=require_tenant(), user=user, include_disconnected=True)
    return listings.filter(connection__in=connections)


class ListingRef(NamedTuple):
    id: int
    sku: str
    marketplace_id: str


@dataclass
class Lookup:
    """What the rows are checked against: the company's listings by SKU, their current pricing
    settings, its rules by name."""

    listings: dict[str, list[ListingRef]]
    pricing: dict[int, SkuPricing]
    rules: dict[str, RepricingRule]


def _unquote_formula(cell: str) -> str:
    if len(cell) > 1 and cell[0] == "'" and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def _skus(csv_file: CsvFile) -> set[str]:
    index = csv_file.columns.index("sku")
    return {_unquote_formula(cells[index].strip()) for _, cells in csv_file.rows if len(cells) > index}


def load_lookup(skus: Iterable[str], *, user: User | None, lock: bool = False) -> Lookup:
    """Read what the check needs (in the current tenant's transaction), as `user` may see it; `lock`
    locks the SKUs' pricing rows until the transaction ends (applying)."""
    wanted = sorted(sku for sku in skus if sku)
    listings: dict[str, list[ListingRef]] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        for ref in (
            visible_listings(user)
            .filter(sku__in=wanted[start : start + LOOKUP_CHUNK])
            .values_list("id", "sku", "marketplace_id")
        ):
            listings.setdefault(ref[1], []).append(ListingRef(*ref))
    ids = sorted(ref.id for refs in listings.values() for ref in refs)
    pricing: dict[int, SkuPricing] = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        rows = SkuPricing.objects.filter(listing_id__in=ids[start : start + LOOKUP_CHUNK]).select_related(
            "rule"
        )
        if lock:
            rows = rows.select_for_update(of=("self",))
        pricing.update((row.listing_id, row) for row in rows)
    rules = {rule.name: rule for rule in RepricingRule.objects.all()}
    return Lookup(listings=listings, pricing=pricing, rules=rules)


@dataclass
class Change:
    row: int
    listing_id: int
    sku: str
    marketplace_id: str
    current: SkuPricing | None
    values: dict[str, Any]
    changed: tuple[str, ...]


@dataclass
class Check:
    rows: int = 0
    errors: list[list[Any]] = field(default_factory=list)
    error_count: int = 0
    error_rows: int = 0
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def fail(self, row: int, column: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_STORED_ERRORS:
            self.errors.append([row, column, message])


def _number_text(raw: str, delimiter: str) -> str:
    """A semicolon-separated file comes from a decimal-comma locale: "12,50" is 12.50."""
    if delimiter == ";" and raw.count(",") == 1 and "." not in raw:
        return raw.replace(",", ".")
    return raw


def _comparable(name: str, value: Any) -> Any:
    if name == "rule":
        return None if value is None else value.pk
    if name == "tags":
        return sorted(value or [])
    return value


def _money_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _column_errors(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Each column's own problem (the service stops at the first; a seller wants them all)."""
    found = []
    for name, value in values.items():
        if name in NUMBER_COLUMNS or name == "tags":
            try:
                sku_pricing_values_clean({name: value})
            except RepricingError as error:
                found.append((name, error.message))
        elif name == "bounds_source" and value not in SkuPricing.BoundsSource.values:
            found.append((name, "bounds_source is one of entered, margin, roi."))
    return found


def check_rows(csv_file: CsvFile, lookup: Lookup, progress: Callable[[int], None] | None = None) -> Check:
    """Check every row against `lookup` (no database access): every error, and what would change."""
    check = Check(rows=len(csv_file.rows))
    columns = csv_file.columns
    width = len(columns)
    settings_columns = [name for name in columns if name not in ("sku", "marketplace_id")]
    seen: dict[int, int] = {}
    for done, (number, cells) in enumerate(csv_file.rows, start=1):
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done)
        errors_before = check.error_count
        if len(cells) != width:
            check.fail(number, "", f"This row has {len(cells)} values; the header has {width} columns.")
            check.error_rows += 1
            continue
        cell = {name: _unquote_formula(value.strip()) for name, value in zip(columns, cells, strict=True)}
        sku, marketplace = cell["sku"], cell.get("marketplace_id", "")
        listing: ListingRef | None = None
        if not sku:
            check.fail(number, "sku", "A SKU is required.")
        else:
            known = lookup.listings.get(sku, [])
            candidates = [ref for ref in known if not marketplace or ref.marketplace_id == marketplace]
            marketplaces = sorted({ref.marketplace_id for ref in candidates})
            if not known:
                check.fail(number, "sku", f"No listing of yours has the SKU “{sku}”.")
            elif not candidates:
                check.fail(
                    number,
                    "marketplace_id",
                    f"SKU “{sku}” is not sold in marketplace {marketplace} "
                    f"(it is in {', '.join(sorted({ref.marketplace_id for ref in known}))}).",
                )
            elif len(marketplaces) > 1:
                check.fail(
                    number,
                    "marketplace_id",
                    f"SKU “{sku}” is sold in several marketplaces ({', '.join(marketplaces)}): "
                    "say which in marketplace_id.",
                )
            elif len(candidates) > 1:
                check.fail(
                    number,
                    "sku",
                    f"SKU “{sku}” is in {len(candidates)} of your Amazon accounts in marketplace "
                    f"{marketplaces[0]}; a file cannot tell them apart: set it on the SKU's page.",
                )
            else:
                listing = candidates[0]
                first = seen.get(listing.id)
                if first is not None:
                    check.fail(number, "sku", f"SKU “{sku}” is also on row {first}: give each SKU once.")
                    listing = None
                else:
                    seen[listing.id] = number
        values: dict[str, Any] = {}
        for name in settings_columns:
            raw = cell[name]
            if name in NUMBER_COLUMNS:
                values[name] = _number_text(raw, csv_file.delimiter) or None
            elif name == "bounds_source":
                values[name] = raw.lower() or SkuPricing.BoundsSource.ENTERED
            elif name == "tags":
                values[name] = [tag.strip() for tag in raw.split(";") if tag.strip()]
            elif name == "rule":
                if not raw:
                    values[name] = None
                elif raw in lookup.rules:
                    values[name] = lookup.rules[raw]
                else:
                    check.fail(number, "rule", f"No rule is named “{raw}”.")
        current = lookup.pricing.get(listing.id) if listing is not None else None
        clean: dict[str, Any] | None = None
        try:
            clean = sku_pricing_values_clean(values, current)
        except RepricingError as error:
            for name, message in _column_errors(values) or [(error.field, error.message)]:
                check.fail(number, name, message)
        if clean is not None and values.get("min_price") is not None and clean["bounds_source"] != "entered":
            entered = sku_pricing_values_clean({"min_price": values["min_price"]})["min_price"]
            if entered != clean["min_price"]:
                check.fail(
                    number,
                    "min_price",
                    f"With bounds_source {clean['bounds_source']} the min price is computed: "
                    f"{clean['min_price']}. Leave min_price empty.",
                )
        if check.error_count > errors_before:
            check.error_rows += 1
            continue
        assert listing is not None and clean is not None
        before = {name: getattr(current, name) for name in SKU_FIELDS} if current is not None else _DEFAULTS
        changed = tuple(
            name for name in SKU_FIELDS if _comparable(name, before[name]) != _comparable(name, clean[name])
        )
        if changed:
            check.changes.append(
                Change(number, listing.id, sku, listing.marketplace_id, current, clean, changed)
            )
        else:
            check.unchanged += 1
    if progress is not None:
        progress(len(csv_file.rows))
    return check


def _direction(before: Decimal | None, after: Decimal | None) -> str | None:
    if before == after:
        return None
    if before is None:
        return "set"
    if after is None:
        return "cleared"
    return "up" if after > before else "down"


def preview_of(check: Check) -> dict[str, Any]:
    """Counts of what applying would change (SKUs, bounds up/down...) and a sample of the rows."""
    counts: dict[str, int] = {
        "rows": check.rows,
        "changing": len(check.changes),
        "unchanged": check.unchanged,
        "new_settings": 0,
    }
    for bound in ("min", "max"):
        for way in ("up", "down", "set", "cleared"):
            counts[f"{bound}_{way}"] = 0
    for name in ("cost", "rule", "tags", "bounds_source"):
        counts[f"{name}_changed"] = 0
    sample: list[dict[str, Any]] = []
    for change in check.changes:
        before = change.current
        if before is None:
            counts["new_settings"] += 1
        for bound in ("min", "max"):
            direction = _direction(
                getattr(before, f"{bound}_price") if before else None, change.values[f"{bound}_price"]
            )
            if direction:
                counts[f"{bound}_{direction}"] += 1
        for name in ("cost", "rule", "tags", "bounds_source"):
            if name in change.changed:
                counts[f"{name}_changed"] += 1
        if len(sample) < PREVIEW_SAMPLE:
            sample.append(
                {
                    "row": change.row,
                    "sku": change.sku,
                    "marketplace_id": change.marketplace_id,
                    "min_before": _money_text(before.min_price if before else None),
                    "min_after": _money_text(change.values["min_price"]),
                    "max_before": _money_text(before.max_price if before else None),
                    "max_after": _money_text(change.values["max_price"]),
                    "changed": list(change.changed),
                }
            )
    return {"counts": counts, "sample": sample}


# --- Services -------------------------------------------------------------------------------------------


def _store_check(row: BoundsImport, check: Check) -> None:
    row.errors = check.errors
    row.error_count = check.error_count
    if check.error_count:
        row.status = BoundsImport.Status.INVALID
        row.preview = {"counts": {"rows": check.rows, "error_rows": check.error_rows}, "sample": []}
        row.csv_text = ""  # not needed any more: the seller fixes the file and uploads it again
    else:
        row.status = BoundsImport.Status.READY
        row.preview = preview_of(check)
    row.save()


def _runs_in_background(row_count: int) -> bool:
    return row_count > settings.REPRICING_IMPORT_INLINE_ROWS


@transaction.atomic
def bounds_import_create(*, data: bytes, file_name: str, actor: User | None, actor_role: str) -> BoundsImport:
    """Read an uploaded file and check it: at once for a small file, by a background job for a large
    one. A file that cannot be read raises `ImportFileError` and nothing is stored."""
    _require(actor_role)
    csv_file = read_csv(data)
    row = BoundsImport.objects.create(
        file_name=(file_name or "").strip()[:255],
        file_size=len(data),
        delimiter=csv_file.delimiter,
        columns=list(csv_file.columns),
        row_count=len(csv_file.rows),
        csv_text=csv_file.text,
        created_by=actor,
    )
    if _runs_in_background(row.row_count):
        enqueue(bounds_import_check_task, tenant=require_tenant(), import_id=str(row.public_id))
    else:
        _store_check(row, check_rows(csv_file, load_lookup(_skus(csv_file), user=actor)))
    return row


def effective_status(row: BoundsImport) -> str:
    """The status to show: a check or apply whose job died (the run is marked failed by the reaper)
    shows as failed."""
    if (
        row.status in (BoundsImport.Status.VALIDATING, BoundsImport.Status.APPLYING)
        and row.job_run is not None
        and row.job_run.outcome == JobRun.Outcome.FAILED
    ):
        return BoundsImport.Status.FAILED
    return row.status


@transaction.atomic
def bounds_import_apply(*, bounds_import: BoundsImport, actor: User | None, actor_role: str) -> BoundsImport:
    """Apply a checked import (the seller confirmed). Small files are applied in this transaction; large
    ones are marked APPLYING and handed to a background job. Either way the file is checked again
    against the current settings first: if a row no longer passes, nothing is written and the import
    turns INVALID with the errors."""
    _require(actor_role)
    row = (
        BoundsImport.objects.select_for_update(of=("self",))
        .select_related("job_run")
        .get(pk=bounds_import.pk)
    )
    status = effective_status(row)
    if status == BoundsImport.Status.APPLIED:
        raise RepricingError("This file has already been applied.", code="already_applied", status=409)
    retry = status == BoundsImport.Status.FAILED and bool(row.csv_text)
    if status != BoundsImport.Status.READY and not retry:
        raise RepricingError(
            f"This file cannot be applied: it is “{BoundsImport.Status(status).label}”.",
            code="not_ready",
            status=409,
        )
    row.applied_by = actor
    if _runs_in_background(row.row_count):
        row.status = BoundsImport.Status.APPLYING
        row.failure = ""
        row.save()
        enqueue(bounds_import_apply_task, tenant=require_tenant(), import_id=str(row.public_id))
        return row
    _apply_now(row)
    return row


def _apply_now(row: BoundsImport) -> None:
    """Check again with the SKUs' pricing locked, then write every change, in the caller's transaction."""
    csv_file = parse_csv_text(row.csv_text)
    check = check_rows(csv_file, load_lookup(_skus(csv_file), user=row.applied_by, lock=True))
    if check.error_count:
        _store_check(row, check)
        return
    preview = preview_of(check)
    _write(check.changes)
    row.status = BoundsImport.Status.APPLIED
    row.preview = preview
    row.result = preview["counts"]
    row.applied_at = timezone.now()
    row.csv_text = ""
    row.failure = ""
    row.save()
    audit_record(
        actor=row.applied_by,
        action="repricing.bounds_import_apply",
        target=row,
        target_label=row.file_name or "CSV import",
        changes={
            **preview["counts"],
            "skus": [f"{change.sku} ({change.marketplace_id})" for change in check.changes[:100]],
        },
    )


def _write(changes: list[Change]) -> None:
    """One upsert per 1,000 SKUs on (tenant, listing): new settings are created, existing ones get the
    settings the file gives (the guard state is left alone)."""
    tenant = require_tenant()
    rows = [
        SkuPricing(
            tenant=tenant, listing_id=change.listing_id, **{name: change.values[name] for name in SKU_FIELDS}
        )
        for change in changes
    ]
    SkuPricing.objects.bulk_create(
        rows,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["tenant", "listing"],
        update_fields=[*SKU_FIELDS, "updated_at"],
    )


# --- Background jobs (files over REPRICING_IMPORT_INLINE_ROWS rows) --------------------------------------


class ImportTask(TenantTask):
    abstract = True
    atomic = False  # progress is committed as it goes; the apply itself is one transaction


def _mark_failed(import_id: str, error: BaseException) -> None:
    with tenant_context(require_tenant()):
        BoundsImport.objects.filter(public_id=import_id).update(
            status=BoundsImport.Status.FAILED,
            failure=f"{type(error).__name__}: {error}"[:2000],
            updated_at=timezone.now(),
        )


def bounds_import_check(*, import_id: str) -> None:
    """Check a large file's rows, with progress, and store the outcome (READY or INVALID)."""
    tenant = require_tenant()
    with tenant_context(tenant):
        row = (
            BoundsImport.objects.select_related("created_by")
            .filter(public_id=import_id, status=BoundsImport.Status.VALIDATING)
            .first()
        )
        if row is None:
            return
        csv_file = parse_csv_text(row.csv_text)
    try:
        with job_run("repricing.bounds_import_check", triggered_by="upload") as run:
            with tenant_context(tenant):
                BoundsImport.objects.filter(pk=row.pk).update(job_run=run.run)
            run.progress(0, len(csv_file.rows) or 1)
            with tenant_context(tenant):
                lookup = load_lookup(_skus(csv_file), user=row.created_by)
            check = check_rows(csv_file, lookup, progress=run.progress)
            with tenant_context(tenant):
                locked = BoundsImport.objects.select_for_update().get(pk=row.pk)
                if locked.status == BoundsImport.Status.VALIDATING:
                    _store_check(locked, check)
            run.count("rows", check.rows)
            run.count("errors", check.error_count)
            run.count("changing", len(check.changes))
    except Exception as error:
        _mark_failed(import_id, error)
        raise


def bounds_import_apply_job(*, import_id: str) -> None:
    """Apply a large file the seller confirmed: one transaction, recorded as a run."""
    tenant = require_tenant()
    try:
        with job_run("repricing.bounds_import_apply", triggered_by="user") as run, tenant_context(tenant):
            row = (
                BoundsImport.objects.select_for_update()
                .filter(public_id=import_id, status=BoundsImport.Status.APPLYING)
                .first()
            )
            if row is None:
                return
            row.job_run = run.run
            run.progress(0, row.row_count or 1)
            _apply_now(row)
            run.progress(row.row_count or 1)
            run.count("rows", row.row_count)
            run.count("changed", int(row.result.get("changing", 0)))
            run.count("errors", row.error_count)
    except Exception as error:
        _mark_failed(import_id, error)
        raise


@app.task(base=ImportTask, name="repricing.bounds_import_check", ignore_result=True)
def bounds_import_check_task(*, import_id: str) -> None:
    bounds_import_check(import_id=import_id)


@app.task(base=ImportTask, name="repricing.bounds_import_apply", ignore_result=True)
def bounds_import_apply_task(*, import_id: str) -> None:
    bounds_import_apply_job(import_id=import_id)


# --- Export ---------------------------------------------------------------------------------------------


def _export_cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def bounds_export_rows(user: User | None) -> Iterator[list[str]]:
    """The header and one row per listing `user` may see (removed ones only when they have settings), in
    the import's format: importing the file unchanged changes nothing."""
    pricing = {row.listing_id: row for row in SkuPricing.objects.select_related("rule")}
    yield list(COLUMNS)
    listings = (
        visible_listings(user)
        .order_by("sku", "marketplace_id", "id")
        .values_list("id", "sku", "marketplace_id", "status")
    )
    for listing_id, sku, marketplace_id, status in listings.iterator(chunk_size=5000):
        row = pricing.get(listing_id)
        if row is None and status == Listing.Status.REMOVED:
            continue
        values = {name: getattr(row, name) for name in SKU_FIELDS} if row else _DEFAULTS
        yield [
            _export_cell(sku),
            marketplace_id,
            *(_money_text(values[name]) or "" for name in ("cost", "referral_fee_percent", "fba_fee")),
            str(values["bounds_source"]),
            _money_text(values["target_percent"]) or "",
            _money_text(values["min_price"]) or "",
            _money_text(values["max_price"]) or "",
            _export_cell(values["rule"].name) if values["rule"] is not None else "",
            _export_cell(";".join(sorted(values["tags"]))),
        ]


def bounds_export_csv(*, user: User | None, byte_order_mark: bool = False) -> str:
    """The export as one string (built inside the request's transaction: row-level security needs it)."""
    out = io.StringIO()
    if byte_order_mark:
        out.write("\ufeff")  # spreadsheets then read the file as UTF-8
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(bounds_export_rows(user))
    return out.getvalue()
