"""Dashboard pages for the repricing tools: SKU pricing from a CSV file (upload, check, preview, apply,
the errors as CSV, the export) and backtests (start one, the list, the result with a chart per SKU).

Importing and starting a backtest need `change_automation`; the export holds costs, so it needs
`see_money`; backtest results need `view_dashboard`. Long work (large files, backtests) runs in the
background: its page shows the progress and reloads itself (a `Refresh` header, no script) until done.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F, Func
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.forms import NoColonLabels
from accounts.models import User
from accounts.pages import dashboard_page
from accounts.roles import Permission, role_allows
from amazon.models import OfferSnapshot
from repricing import backtest as backtests
from repricing import bounds_import as imports
from repricing.display import price_chart, reason_label
from repricing.models import Backtest, BoundsImport, RepricingRule, SkuPricing
from repricing.selectors import repricing_settings
from repricing.services import RepricingError

#: Errors listed on the page (all kept ones are in the errors CSV).
ERRORS_SHOWN = 500
RECENT_IMPORTS = 10
BACKTESTS_PER_PAGE = 25
SKUS_PER_PAGE = 10
#: Seconds between reloads of a page that waits for a background job.
REFRESH_SECONDS = 3
COLUMN_HELP = (
    ("sku", "Required. Your seller SKU."),
    ("marketplace_id", "Only when the SKU is sold in several marketplaces, e.g. ATVPDKIKX0DER."),
    ("cost", "Unit cost, landed at Amazon."),
    ("referral_fee_percent", "Amazon's referral fee, percent (e.g. 15)."),
    ("fba_fee", "FBA fulfilment fee per unit (plus any other fixed per-unit fee to cover)."),
    ("bounds_source", "entered (you give min_price), margin or roi (the min price is computed)."),
    ("target_percent", "The target margin or ROI, percent, for bounds_source margin or roi."),
    ("min_price", "The lowest price the repricer may set (leave empty with margin or roi)."),
    ("max_price", "The highest price the repricer may set."),
    ("rule", "The name of a rule for this SKU; empty for none of its own."),
    ("tags", "Tags separated by ; (e.g. summer;clearance)."),
)


def _actor(request: HttpRequest) -> tuple[User, str]:
    return request.user, request.membership.role  # type: ignore[attr-defined,return-value]


def _can(request: HttpRequest, permission: Permission) -> bool:
    return role_allows(request.membership.role, permission)  # type: ignore[attr-defined]


def _waiting(response: HttpResponse) -> HttpResponse:
    response["Refresh"] = str(REFRESH_SECONDS)
    return response


def _csv_response(text: str, file_name: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    return response


# --- SKU pricing from a CSV file ---------------------------------------------------------------------------


class UploadForm(NoColonLabels, forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, comma- or semicolon-separated, with a header row. "
        f"Up to {settings.REPRICING_IMPORT_MAX_BYTES / 1024 / 1024:g} MB and "
        f"{settings.REPRICING_IMPORT_MAX_ROWS:,} rows.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )


def _import_or_404(public_id: UUID) -> BoundsImport:
    row = (
        BoundsImport.objects.select_related("job_run", "created_by", "applied_by")
        .filter(public_id=public_id)
        .first()
    )
    if row is None:
        raise Http404("No such import.")
    return row


def _too_large(request: HttpRequest) -> bool:
    declared = request.META.get("CONTENT_LENGTH", "")
    # The form's other fields and the multipart framing take a few kilobytes at most.
    return declared.isdigit() and int(declared) > settings.REPRICING_IMPORT_MAX_BYTES + 64 * 1024


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_http_methods(["GET", "POST"])
def bounds_import(request: HttpRequest) -> HttpResponse:
    """Upload a file: it is checked at once (or by a job) and shown on its own page before anything
    changes."""
    actor, role = _actor(request)
    status = 200
    if request.method == "POST" and _too_large(request):
        form = UploadForm()
        form.add_error("file", imports.ImportFileError.too_large_message())
        status = 413
    else:
        form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and status == 200:
        status = 400
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                if upload.size > settings.REPRICING_IMPORT_MAX_BYTES:
                    raise imports.ImportFileError(
                        imports.ImportFileError.too_large_message(), code="file_too_large", status=413
                    )
                row = imports.bounds_import_create(
                    data=upload.read(), file_name=upload.name or "", actor=actor, actor_role=role
                )
            except RepricingError as error:
                form.add_error("file", error.message)
                status = error.status
            else:
                return redirect("repricing:bounds_import_detail", public_id=row.public_id)
    recent = list(
        BoundsImport.objects.select_related("job_run", "created_by").defer("csv_text", "errors")[
            :RECENT_IMPORTS
        ]
    )
    for row in recent:
        row.shown_status = imports.effective_status(row)
    return render(
        request,
        "repricing/import_upload.html",
        {
            "form": form,
            "recent": recent,
            "columns": COLUMN_HELP,
            "see_money": _can(request, Permission.SEE_MONEY),
            "inline_rows": settings.REPRICING_IMPORT_INLINE_ROWS,
            "can_import": True,
        },
        status=status,
    )


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_GET
def bounds_import_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    row = _import_or_404(public_id)
    status = imports.effective_status(row)
    counts = (row.result if status == BoundsImport.Status.APPLIED else row.preview.get("counts")) or {}
    run = row.job_run
    response = render(
        request,
        "repricing/import_detail.html",
        {
            "row": row,
            "status": status,
            "status_label": BoundsImport.Status(status).label,
            "counts": counts,
            "sample": row.preview.get("sample", []),
            "errors": row.errors[:ERRORS_SHOWN],
            "errors_hidden": max(row.error_count - ERRORS_SHOWN, 0),
            "errors_not_kept": max(row.error_count - len(row.errors), 0),
            "run": run,
            "waiting": status in (BoundsImport.Status.VALIDATING, BoundsImport.Status.APPLYING),
            "can_retry": status == BoundsImport.Status.FAILED and bool(row.applied_by_id),
            "can_import": True,
        },
    )
    if status in (BoundsImport.Status.VALIDATING, BoundsImport.Status.APPLYING):
        _waiting(response)
    return response


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_POST
def bounds_import_apply(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor, role = _actor(request)
    row = _import_or_404(public_id)
    try:
        row = imports.bounds_import_apply(bounds_import=row, actor=actor, actor_role=role)
    except RepricingError as error:
        messages.error(request, error.message)
    else:
        if row.status == BoundsImport.Status.APPLIED:
            changed = int(row.result.get("changing", 0))
            messages.success(
                request, f"Applied: {changed:,} SKU{'s' if changed != 1 else ''} changed, in one go."
            )
        elif row.status == BoundsImport.Status.APPLYING:
            messages.info(request, "Applying in the background: this page shows when it is done.")
        else:
            messages.error(
                request,
                "Nothing was applied: some rows no longer pass against your current settings. "
                "See the errors below.",
            )
    return redirect("repricing:bounds_import_detail", public_id=row.public_id)


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_GET
def bounds_import_errors(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Every kept error of an import as CSV (row, column, message), to fix the file in a spreadsheet."""
    row = _import_or_404(public_id)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["row", "column", "message"])
    writer.writerows(row.errors)
    stem = (row.file_name.rsplit(".", 1)[0] or "import")[:80]
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)
    return _csv_response(out.getvalue(), f"{safe}-errors.csv")


@dashboard_page(Permission.SEE_MONEY)
@require_GET
def bounds_export(request: HttpRequest) -> HttpResponse:
    """Every SKU's pricing settings in the import's format (with a byte-order mark for spreadsheets)."""
    text = imports.bounds_export_csv(user=request.user, byte_order_mark=True)  # type: ignore[arg-type]
    return _csv_response(text, f"sku-pricing-{timezone.now():%Y-%m-%d}.csv")


# --- Backtests ----------------------------------------------------------------------------------------------


class BacktestForm(NoColonLabels, forms.Form):
    name = forms.CharField(label="Name (optional)", required=False, max_length=200)
    rule = forms.ChoiceField(
        label="Rule",
        required=False,
        help_text="A saved rule; edit its configuration below to try a change before saving it.",
    )
    config = forms.CharField(
        label="Rule configuration (JSON, optional)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "class": "code-input"}),
        help_text="Empty: the chosen rule as saved. Otherwise this configuration is replayed (an edit of "
        "the chosen rule, or a new one).",
    )
    scope = forms.ChoiceField(
        label="SKUs",
        choices=[("all", "All SKUs"), ("tag", "SKUs with a tag"), ("skus", "These SKUs")],
        initial="all",
        widget=forms.RadioSelect,
    )
    tag = forms.ChoiceField(label="Tag", required=False)
    skus = forms.CharField(
        label="SKUs",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One per line, or separated by commas.",
    )
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (included)", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, rules: list[RepricingRule], tags: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rule_field, tag_field = self.fields["rule"], self.fields["tag"]
        assert isinstance(rule_field, forms.ChoiceField) and isinstance(tag_field, forms.ChoiceField)
        rule_field.choices = [("", "No saved rule: use the configuration")] + [
            (str(rule.public_id), rule.name + ("" if rule.is_active else " (inactive)")) for rule in rules
        ]
        tag_field.choices = [("", "Choose a tag")] + [(tag, tag) for tag in tags]

    def clean_config(self) -> Any:
        text = self.cleaned_data.get("config", "").strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"This is not valid JSON: {error}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The configuration is a JSON object ({...}).")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope = data.get("scope")
        if scope == "tag" and not data.get("tag"):
            self.add_error("tag", "Choose the tag.")
        if scope == "skus" and not data.get("skus", "").strip():
            self.add_error("skus", "Name at least one SKU.")
        return data


def _tags() -> list[str]:
    rows = (
        SkuPricing.objects.annotate(tag=Func(F("tags"), function="unnest"))
        .values_list("tag", flat=True)
        .order_by("tag")
        .distinct()
    )
    return [str(tag) for tag in rows[:500]]


def _zone() -> ZoneInfo:
    return ZoneInfo(repricing_settings().timezone or "UTC")


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def backtest_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(Backtest.objects.select_related("rule").defer("results"), BACKTESTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    waiting = any(row.status in (Backtest.Status.QUEUED, Backtest.Status.RUNNING) for row in page.object_list)
    response = render(
        request,
        "repricing/backtest_list.html",
        {
            "page": page,
            "has_history": OfferSnapshot.objects.exists(),
            "can_run": _can(request, Permission.CHANGE_AUTOMATION),
            "can_import": _can(request, Permission.CHANGE_AUTOMATION),
            "zone": _zone(),
        },
    )
    return _waiting(response) if waiting else response


@dashboard_page(Permission.CHANGE_AUTOMATION)
@require_http_methods(["GET", "POST"])
def backtest_new(request: HttpRequest) -> HttpResponse:
    actor, role = _actor(request)
    rules = list(RepricingRule.objects.all())
    zone = _zone()
    today = timezone.now().astimezone(zone).date()
    initial: dict[str, Any] = {"start": today - timedelta(days=6), "end": today, "scope": "all"}
    chosen = next((rule for rule in rules if str(rule.public_id) == request.GET.get("rule")), None)
    if chosen is not None:
        initial.update(rule=str(chosen.public_id), config=json.dumps(chosen.config, indent=2))
    else:
        default = repricing_settings().default_rule_id
        initial["rule"] = next((str(rule.public_id) for rule in rules if rule.pk == default), "")
    form = BacktestForm(request.POST or None, initial=initial, rules=rules, tags=_tags())
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            rule = next((r for r in rules if str(r.public_id) == data["rule"]), None)
            skus = [s.strip() for s in data["skus"].replace(",", "\n").splitlines() if s.strip()]
            try:
                row = backtests.backtest_create(
                    actor=actor,
                    actor_role=role,
                    rule=rule,
                    config=data["config"],
                    skus=skus if data["scope"] == "skus" else None,
                    tag=data["tag"] if data["scope"] == "tag" else None,
                    start=data["start"],
                    end=data["end"],
                    name=data["name"],
                )
            except RepricingError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
                status = error.status
            else:
                return redirect("repricing:backtest_detail", public_id=row.public_id)
    return render(
        request,
        "repricing/backtest_new.html",
        {
            "form": form,
            "has_history": OfferSnapshot.objects.exists(),
            "has_rules": bool(rules),
            "max_days": settings.REPRICING_BACKTEST_MAX_DAYS,
            "can_import": True,
        },
        status=status,
    )


def _series(points: list[list[Any]], index: int) -> list[tuple[datetime, Any]]:
    return [(datetime.fromisoformat(point[0]), point[index]) for point in points]


def _sku_view(result: dict[str, Any], start: datetime, end: datetime, zone: ZoneInfo) -> dict[str, Any]:
    points = result.get("points") or []
    if points:  # the axis starts where the history does, not at an empty start of the period
        start = max(start, datetime.fromisoformat(points[0][0]))
    chart = price_chart(
        start=start.astimezone(zone),
        end=end.astimezone(zone),
        series={
            "actual": _series(points, 1),
            "would": _series(points, 2),
            "buy_box": _series(points, 3),
            "lowest": _series(points, 4),
        },
        min_price=None if result.get("min_price") is None else Decimal(result["min_price"]),
        max_price=None if result.get("max_price") is None else Decimal(result["max_price"]),
    )
    return {
        **result,
        "chart": chart,
        "reasons": [(reason_label(code), count) for code, count in result.get("reasons", {}).items()],
        "table": [
            {
                "at": datetime.fromisoformat(p[0]).astimezone(zone),
                "actual": p[1],
                "would": p[2],
                "buy_box": p[3],
                "lowest": p[4],
                "action": p[5],
            }
            for p in points
        ],
    }


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_GET
def backtest_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    row = Backtest.objects.select_related("rule", "job_run").filter(public_id=public_id).first()
    if row is None:
        raise Http404("No such backtest.")
    zone = _zone()
    end = min(row.period_end, timezone.now())
    page = Paginator(row.results, SKUS_PER_PAGE).get_page(request.GET.get("page"))
    waiting = row.status in (Backtest.Status.QUEUED, Backtest.Status.RUNNING)
    response = render(
        request,
        "repricing/backtest_detail.html",
        {
            "row": row,
            "summary": row.summary,
            "page": page,
            "skus": [_sku_view(result, row.period_start, end, zone) for result in page.object_list],
            "zone": zone,
            "period_last_day": (row.period_end.astimezone(zone) - timedelta(seconds=1)).date(),
            "waiting": waiting,
            "can_run": _can(request, Permission.CHANGE_AUTOMATION),
            "can_import": _can(request, Permission.CHANGE_AUTOMATION),
            "progress_percent": round(100 * row.progress_done / row.progress_total)
            if row.progress_total
            else 0,
        },
    )
    return _waiting(response) if waiting else response
