"""REST API for the repricing tools: SKU pricing from a CSV file (/api/v1/repricing/bounds-imports...,
/api/v1/repricing/sku-pricing/export) and backtests (/api/v1/repricing/backtests...).

A file is sent as the body (`Content-Type: text/csv`), as a multipart upload (field `file`), or inside
JSON (`{"csv": "...", "file_name": "..."}`, up to the JSON body limit). `RepricingError` from the
services becomes the API's error shape in one place (`ToolsApiView.handle_exception`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, parsers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import IDEMPOTENCY_KEY
from accounts.authentication import AuthContext
from accounts.permissions import auth_context
from accounts.roles import Permission
from config.api import (
    WRITE_ERRORS,
    ApiError,
    CursorPagination,
    IdempotentPostMixin,
    InputSerializer,
    JSONParser,
    StrictCharField,
    error_response,
    error_responses,
)
from repricing import backtest as backtests
from repricing import bounds_import as imports
from repricing.models import Backtest, BoundsImport, RepricingRule
from repricing.services import RepricingError

# --- Uploads: the file's bytes travel beside a JSON-able description -------------------------------------


class CsvUpload(dict[str, Any]):
    """What the CSV parsers hand the view: {"file_name", "size", "sha256"} (so the idempotency
    fingerprint covers the file's content) and the file's bytes in `.content`."""

    content: bytes = b""

    @classmethod
    def of(cls, content: bytes, file_name: str) -> CsvUpload:
        upload = cls(file_name=file_name, size=len(content), sha256=hashlib.sha256(content).hexdigest())
        upload.content = content
        return upload


def _too_large() -> ApiError:
    return ApiError(imports.ImportFileError.too_large_message(), code="file_too_large", status_code=413)


class CsvBodyParser(parsers.BaseParser):
    """`Content-Type: text/csv`: the body is the file (read up to the import's size limit)."""

    media_type = "text/csv"

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> CsvUpload:
        limit = settings.REPRICING_IMPORT_MAX_BYTES
        content = stream.read(limit + 1) if stream is not None else b""
        if len(content) > limit:
            raise _too_large()
        return CsvUpload.of(content, "")


class CsvMultiPartParser(parsers.MultiPartParser):
    """A multipart upload with one file field, `file`, and optionally `file_name`."""

    def parse(  # type: ignore[override]
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> CsvUpload:
        parsed = super().parse(stream, media_type, parser_context)
        unknown = sorted((set(parsed.data) - {"file_name"}) | (set(parsed.files) - {"file"}))
        if unknown:
            raise exceptions.ValidationError({name: ["Unknown field."] for name in unknown})
        upload = parsed.files.get("file")
        if upload is None:
            raise exceptions.ValidationError({"file": ["Attach the CSV file as the field “file”."]})
        if upload.size is not None and upload.size > settings.REPRICING_IMPORT_MAX_BYTES:
            raise _too_large()
        content = upload.read(settings.REPRICING_IMPORT_MAX_BYTES + 1)
        if len(content) > settings.REPRICING_IMPORT_MAX_BYTES:
            raise _too_large()
        return CsvUpload.of(content, str(parsed.data.get("file_name") or upload.name or ""))


# --- Serializers ----------------------------------------------------------------------------------------


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    total = serializers.IntegerField(allow_null=True)


class ImportErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Row of the file; row 1 is the header.")
    column = serializers.CharField(help_text="The column at fault (empty: the whole row).")
    message = serializers.CharField()


def _progress(run: Any) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"done": run.progress_done, "total": run.progress_total}


class BoundsImportSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=BoundsImport.Status.choices,
        help_text="validating → ready (apply it) or invalid (see errors); applying → applied; failed.",
    )
    file_name = serializers.CharField()
    file_size = serializers.IntegerField(help_text="Bytes.")
    delimiter = serializers.CharField()
    columns = serializers.ListField(child=serializers.CharField())
    row_count = serializers.IntegerField(help_text="Data rows (blank rows are skipped).")
    error_count = serializers.IntegerField()
    preview = serializers.DictField(
        help_text="What applying would change (or, once applied, did): counts (rows, changing, unchanged, "
        "new_settings, min_up/min_down/min_set/min_cleared, the same for max, cost/rule/tags/bounds_source "
        "changed) and a sample of the changing rows."
    )
    failure = serializers.CharField(help_text="Why a background check or apply failed.")
    progress = ProgressSerializer(allow_null=True, help_text="Of the background job, when one runs.")
    created_at = serializers.DateTimeField()
    applied_at = serializers.DateTimeField(allow_null=True)


class BoundsImportDetailSerializer(BoundsImportSerializer):
    errors = ImportErrorSerializer(  # type: ignore[assignment]  # a field, not Serializer.errors
        many=True, help_text=f"Every error found (the first {imports.MAX_STORED_ERRORS:,} are kept)."
    )


def _render_import(row: BoundsImport, *, detail: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "public_id": row.public_id,
        "status": imports.effective_status(row),
        "file_name": row.file_name,
        "file_size": row.file_size,
        "delimiter": row.delimiter,
        "columns": row.columns,
        "row_count": row.row_count,
        "error_count": row.error_count,
        "preview": row.preview,
        "failure": row.failure,
        "progress": _progress(row.job_run),
        "created_at": row.created_at,
        "applied_at": row.applied_at,
    }
    if detail:
        data["errors"] = [{"row": r, "column": c, "message": m} for r, c, m in row.errors]
        return dict(BoundsImportDetailSerializer(data).data)
    return dict(BoundsImportSerializer(data).data)


class BoundsImportCreateSerializer(InputSerializer):
    csv = StrictCharField(
        trim_whitespace=False,
        help_text="The file's text (for larger files send it as text/csv or multipart).",
    )
    file_name = StrictCharField(required=False, allow_blank=True, max_length=255, default="")


class BacktestCreateSerializer(InputSerializer):
    name = StrictCharField(required=False, allow_blank=True, max_length=200, default="")
    rule = serializers.UUIDField(required=False, help_text="A saved rule's public_id.")
    config = serializers.DictField(
        required=False,
        help_text="A rule configuration to try (the engine's JSON, as in a rule's `config`); with `rule` "
        "it is an edit of that rule. Give `rule`, `config` or both.",
    )
    skus = serializers.ListField(
        child=StrictCharField(max_length=200),
        required=False,
        max_length=10_000,
        help_text="These SKUs (every marketplace they are sold in). Default: every SKU.",
    )
    tag = StrictCharField(required=False, max_length=100, help_text="Every SKU with this tag.")
    start = serializers.DateField(help_text="First day (the company's repricing timezone).")
    end = serializers.DateField(help_text="Last day, included.")


class BacktestSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Backtest.Status.choices)
    rule = serializers.UUIDField(allow_null=True, help_text="The saved rule it started from, if any.")
    rule_name = serializers.CharField()
    rule_version = serializers.IntegerField(allow_null=True, help_text="Null for an unsaved or edited rule.")
    rule_config = serializers.DictField()
    selection = serializers.DictField(help_text='{"kind": "all"|"tag"|"skus", "tag": ..., "skus": [...]}.')
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField(help_text="Exclusive.")
    progress = ProgressSerializer(help_text="SKUs replayed.")
    summary = serializers.DictField(
        help_text="Across SKUs: observations, changes, holds, pauses, alerts, at_min, at_max, undercuts, "
        "actual_changes; would_/actual_ lowest_pct, at_buy_box_price_pct, hold(held)_buy_box_pct; "
        "average_difference (would minus actual, landed); seconds and observations_per_second."
    )
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class BacktestDetailSerializer(BacktestSerializer):
    results = serializers.ListField(
        child=serializers.DictField(),
        help_text="Per SKU: the same counts and shares, last prices, and `points`: [time, actual landed, "
        "would-have-been landed, Buy Box landed, lowest competitor landed, action] (sampled to "
        f"{backtests.MAX_POINTS}; at most {backtests.MAX_SKU_RESULTS} SKUs).",
    )


def _render_backtest(row: Backtest, *, detail: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "public_id": row.public_id,
        "name": row.name,
        "status": row.status,
        "rule": row.rule.public_id if row.rule else None,
        "rule_name": row.rule_name,
        "rule_version": row.rule_version,
        "rule_config": row.rule_config,
        "selection": row.selection,
        "period_start": row.period_start,
        "period_end": row.period_end,
        "progress": {"done": row.progress_done, "total": row.progress_total},
        "summary": row.summary,
        "error": row.error,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
    }
    if detail:
        data["results"] = row.results
        return dict(BacktestDetailSerializer(data).data)
    return dict(BacktestSerializer(data).data)


def _uuid_path(what: str) -> OpenApiParameter:
    return OpenApiParameter("public_id", UUID, OpenApiParameter.PATH, description=f"The {what}'s public_id.")


# --- Views ----------------------------------------------------------------------------------------------


class ToolsApiView(APIView):
    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RepricingError):
            transaction.set_rollback(True)  # nothing of a refused request is kept
            fields = {exc.field: [exc.message]} if exc.field else None
            return error_response(exc.code, exc.message, exc.status, fields)
        return super().handle_exception(exc)

    @property
    def caller(self) -> AuthContext:
        return auth_context(self.request)


class _Create:
    """`create()` hands the request to `create_from()`; sits after IdempotentPostMixin, which wraps it."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.create(request, *args, **kwargs)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.create_from(request)

    def create_from(self, request: Request) -> Response:
        raise NotImplementedError


@extend_schema_view(
    get=extend_schema(
        operation_id="repricing_bounds_imports_list",
        responses={200: BoundsImportSerializer(many=True), **error_responses(403)},
        tags=["repricing"],
        description="The company's CSV imports of SKU pricing, newest first.",
    ),
    post=extend_schema(
        operation_id="repricing_bounds_imports_create",
        parameters=[IDEMPOTENCY_KEY],
        request={
            "application/json": BoundsImportCreateSerializer,
            "text/csv": OpenApiTypes.STR,
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "file_name": {"type": "string"},
                },
                "required": ["file"],
            },
        },
        responses={201: BoundsImportDetailSerializer, **error_responses(*WRITE_ERRORS, 409, 422)},
        tags=["repricing"],
        description="Upload a CSV of SKU pricing (columns: "
        f"{', '.join(imports.COLUMNS)}; see docs/repricing.md). A file that cannot be read (encoding, "
        "header, unknown column, CSV syntax) answers 400 `invalid_file`; too large 413 `file_too_large` / "
        "`too_many_rows`. Otherwise every row is checked and the import is created: `ready` with a "
        "preview, or `invalid` with every error (row, column, message). Nothing changes until it is "
        "applied. Files over REPRICING_IMPORT_INLINE_ROWS rows are checked in the background "
        "(`validating`, with `progress`).",
    ),
)
class BoundsImportCollectionView(IdempotentPostMixin, _Create, ToolsApiView, generics.ListAPIView):
    required_permissions = {"GET": Permission.CHANGE_AUTOMATION, "POST": Permission.CHANGE_AUTOMATION}
    parser_classes = [JSONParser, CsvBodyParser, CsvMultiPartParser]
    serializer_class = BoundsImportSerializer

    def get_queryset(self) -> Any:
        return BoundsImport.objects.select_related("job_run").defer("csv_text", "errors")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([_render_import(row, detail=False) for row in page or []])

    def create_from(self, request: Request) -> Response:
        data = request.data
        if isinstance(data, CsvUpload):
            content, file_name = data.content, data["file_name"]
        else:
            serializer = BoundsImportCreateSerializer(data=data)
            serializer.is_valid(raise_exception=True)
            content = serializer.validated_data["csv"].encode("utf-8")
            file_name = serializer.validated_data["file_name"]
        auth = self.caller
        row = imports.bounds_import_create(
            data=content, file_name=file_name, actor=auth.user, actor_role=auth.role
        )
        return Response(_render_import(row, detail=True), status=status.HTTP_201_CREATED)


class BoundsImportDetailView(ToolsApiView):
    required_permissions = {"GET": Permission.CHANGE_AUTOMATION}

    @extend_schema(
        operation_id="repricing_bounds_imports_retrieve",
        parameters=[_uuid_path("import")],
        responses={200: BoundsImportDetailSerializer, **error_responses(403, 404)},
        tags=["repricing"],
        description="One import with its preview and every error.",
    )
    def get(self, request: Request, public_id: UUID) -> Response:
        row = BoundsImport.objects.select_related("job_run").filter(public_id=public_id).first()
        if row is None:
            raise exceptions.NotFound("Not found.")
        return Response(_render_import(row, detail=True))


class BoundsImportApplyView(ToolsApiView):
    required_permissions = {"POST": Permission.CHANGE_AUTOMATION}

    @extend_schema(
        operation_id="repricing_bounds_imports_apply",
        parameters=[_uuid_path("import")],
        request=None,
        responses={
            200: BoundsImportDetailSerializer,
            202: BoundsImportDetailSerializer,
            **error_responses(403, 404, 409),
        },
        tags=["repricing"],
        description="Apply a `ready` import: every row is checked again against the settings as they are now "
        "and written in one transaction, with one audit event (200, `applied`); a large file is applied "
        "by a background job (202, `applying`). If a row no longer passes (a rule was deleted, a SKU "
        "removed...), nothing is written: 409 `import_invalid`, and the import is `invalid` with the "
        "errors. Applying twice answers 409 `already_applied`.",
    )
    def post(self, request: Request, public_id: UUID) -> Response:
        row = BoundsImport.objects.filter(public_id=public_id).first()
        if row is None:
            raise exceptions.NotFound("Not found.")
        auth = self.caller
        row = imports.bounds_import_apply(bounds_import=row, actor=auth.user, actor_role=auth.role)
        if row.status == BoundsImport.Status.INVALID:
            # Not raised: the import's new state (invalid, with the errors) is kept.
            return error_response(
                "import_invalid",
                f"Nothing was applied: {row.error_count} error{'s' if row.error_count != 1 else ''} "
                "against the current settings. See the import's errors.",
                status.HTTP_409_CONFLICT,
            )
        code = status.HTTP_202_ACCEPTED if row.status == BoundsImport.Status.APPLYING else status.HTTP_200_OK
        return Response(_render_import(row, detail=True), status=code)


class SkuPricingExportView(ToolsApiView):
    required_permissions = {"GET": Permission.SEE_MONEY}

    @extend_schema(
        operation_id="repricing_sku_pricing_export",
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="The import's columns, one row per listing."
            ),
            **error_responses(403),
        },
        tags=["repricing"],
        description="Every SKU's pricing settings as CSV in the import's format (importing it unchanged "
        "changes nothing). Costs are money: roles without see_money get 403.",
    )
    def get(self, request: Request) -> HttpResponse:
        response = HttpResponse(
            imports.bounds_export_csv(user=self.caller.user), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="sku-pricing.csv"'
        return response


class BacktestPagination(CursorPagination):
    ordering = ("-created_at", "-id")


@extend_schema_view(
    get=extend_schema(
        operation_id="repricing_backtests_list",
        responses={200: BacktestSerializer(many=True), **error_responses(403)},
        tags=["repricing"],
        description="The company's backtests, newest first (without the per-SKU results).",
    ),
    post=extend_schema(
        operation_id="repricing_backtests_create",
        parameters=[IDEMPOTENCY_KEY],
        request=BacktestCreateSerializer,
        responses={202: BacktestSerializer, **error_responses(*WRITE_ERRORS, 409, 422)},
        tags=["repricing"],
        description="Replay a rule over the stored offer history and compare it with what happened. "
        "Runs in the background (202, `queued`; follow `progress` on the detail). Refused with 400: "
        "no rule nor configuration, an invalid configuration (`invalid_rule`), an unknown rule "
        "(`unknown_rule`), SKU (`unknown_sku`) or tag (`unknown_tag`), a period longer than "
        "REPRICING_BACKTEST_MAX_DAYS, or no offer history for the SKUs in the period (`no_history`).",
    ),
)
class BacktestCollectionView(IdempotentPostMixin, _Create, ToolsApiView, generics.ListAPIView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD, "POST": Permission.CHANGE_AUTOMATION}
    serializer_class = BacktestSerializer
    pagination_class = BacktestPagination

    def get_queryset(self) -> Any:
        return Backtest.objects.select_related("rule").defer("results")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([_render_backtest(row, detail=False) for row in page or []])

    def create_from(self, request: Request) -> Response:
        serializer = BacktestCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rule = None
        if data.get("rule") is not None:
            rule = RepricingRule.objects.filter(public_id=data["rule"]).first()
            if rule is None:
                raise RepricingError("No such rule in your company.", code="unknown_rule", field="rule")
        auth = self.caller
        row = backtests.backtest_create(
            actor=auth.user,
            actor_role=auth.role,
            rule=rule,
            config=data.get("config"),
            skus=data.get("skus"),
            tag=data.get("tag"),
            start=data["start"],
            end=data["end"],
            name=data["name"],
        )
        return Response(_render_backtest(row, detail=False), status=status.HTTP_202_ACCEPTED)


class BacktestDetailView(ToolsApiView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD}

    @extend_schema(
        operation_id="repricing_backtests_retrieve",
        parameters=[_uuid_path("backtest")],
        responses={200: BacktestDetailSerializer, **error_responses(403, 404)},
        tags=["repricing"],
        description="One backtest with its progress, summary and per-SKU results.",
    )
    def get(self, request: Request, public_id: UUID) -> Response:
        row = Backtest.objects.select_related("rule").filter(public_id=public_id).first()
        if row is None:
            raise exceptions.NotFound("Not found.")
        return Response(_render_backtest(row, detail=True))
