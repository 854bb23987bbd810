"""What every API endpoint shares: one error shape, cursor pagination, per-tenant throttling that is
atomic across processes, and `Idempotency-Key` on POST.

Error shape (always):
    {"error": {"code": "validation_error", "message": "…", "fields": {"email": ["…"]}}}
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import transaction
from django.http import Http404
from rest_framework import exceptions, pagination, parsers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from config.redis import redis_client

if TYPE_CHECKING:
    from rest_framework.views import APIView


class ApiError(exceptions.APIException):
    """An error a user can cause, with a stable machine-readable code."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None) -> None:
        super().__init__(detail=message, code=code or self.default_code)
        if status_code is not None:
            self.status_code = status_code


_CODES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def _message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _message(detail[0])
    if isinstance(detail, dict):
        return "Some fields are not valid."
    return str(detail)


def error_response(
    code: str, message: str, http_status: int, fields: Any = None, headers: dict[str, str] | None = None
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return Response({"error": body}, status=http_status, headers=headers)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = ApiError("The request body is too large.", code="request_too_large", status_code=413)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django answers 500 and the request transaction rolls back
    transaction.set_rollback(True)  # nothing of a refused request is kept
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), None)
    if code is None:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "invalid_request"
    fields = (
        exc.detail if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict) else None
    )
    message = _message(exc.detail)
    if isinstance(exc, exceptions.ValidationError) and fields:
        non_field: Any = fields.get("non_field_errors")
        message = str(non_field[0]) if non_field else "Some fields are not valid."
    return error_response(code, message, exc.status_code, fields, headers)


class JSONParser(parsers.JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE; larger ones answer 413 (through `exception_handler`).

    DRF 3.18 already hands JSON parsers `request.body`, which enforces the limit; older DRF versions that
    the dependency range allows parsed the raw stream and skipped it. This parser keeps the promise on
    either: it never reads more than the limit, whatever Content-Length claims."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and stream is not None:
            request = (parser_context or {}).get("request")
            declared = request.META.get("CONTENT_LENGTH") if request is not None else None
            if declared and declared.isdigit() and int(declared) > limit:
                raise RequestDataTooBig("The request body is too large.")
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise RequestDataTooBig("The request body is too large.")
            stream = io.BytesIO(body)
        return super().parse(stream, media_type, parser_context)


class InputSerializer(serializers.Serializer):
    """Base of every request body: a key the endpoint does not take is refused (400), never ignored, so a
    typo (`requre_mfa`) cannot look like success."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(name) for name in set(data) - writable)
            if unknown:
                raise exceptions.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true/false only (DRF would also take "yes", "on", 1...)."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictCharField(serializers.CharField):
    """A JSON string only (DRF would turn 42 into "42")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


PAGINATION_QUERY_PARAMS = frozenset({"cursor", "page_size"})


def parse_query(request: Request, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
    """A list endpoint's filters from the query string, validated like a body: a filter the endpoint does not
    know is refused (400), so a misspelt filter never silently returns everything."""
    params = {
        name: value for name, value in request.query_params.items() if name not in PAGINATION_QUERY_PARAMS
    }
    serializer = serializer_class(data=params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- The error shape, for the OpenAPI schema ----------------------------------------------------------


def _error_body() -> serializers.Serializer:
    from drf_spectacular.utils import inline_serializer

    # Built inline: a declared field named `fields` would shadow Serializer.fields.
    return inline_serializer(
        name="ErrorBody",
        fields={
            "code": serializers.CharField(
                help_text="Stable, machine-readable (validation_error, not_found...)."
            ),
            "message": serializers.CharField(help_text="For people."),
            "fields": serializers.DictField(
                required=False, help_text="Per-field messages (validation errors)."
            ),
        },
    )


class ErrorSerializer(serializers.Serializer):
    error = _error_body()


_ERROR_DESCRIPTIONS = {
    400: "Invalid input (validation_error, malformed_request, ...).",
    401: "No credentials, or they are invalid, expired or revoked (not_authenticated).",
    403: "Your role does not allow this (permission_denied).",
    404: "No such object in your company (not_found).",
    409: "Conflicts with the current state, or the same Idempotency-Key is still being processed.",
    413: "The request body is too large (request_too_large).",
    415: "Send application/json (unsupported_media_type).",
    422: "This Idempotency-Key was used with a different request (idempotency_key_reused).",
    429: "Too many requests for your company; retry after the Retry-After header (throttled).",
}


def error_responses(*statuses: int) -> dict[int, Any]:
    """`responses=` entries for extend_schema: every error answers with the one error shape. 401 and 429 are
    always included (every endpoint authenticates and is throttled)."""
    from drf_spectacular.utils import OpenApiResponse

    wanted = sorted({401, 429, *statuses})
    return {code: OpenApiResponse(ErrorSerializer, description=_ERROR_DESCRIPTIONS[code]) for code in wanted}


WRITE_ERRORS = (400, 403, 413, 415)


class CursorPagination(pagination.CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-created_at", "-id")


class TenantRateThrottle(BaseThrottle):
    """A fixed-window counter per tenant (or per client address when anonymous), in Redis.

    INCR is atomic, so any number of web processes share one budget. Rate from
    REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["tenant"], e.g. "600/min".
    """

    scope = "tenant"
    _PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}

    def __init__(self) -> None:
        rates: Any = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        rate: str = rates[self.scope]
        count, _, period = rate.partition("/")
        self.limit = int(count)
        self.period = self._PERIODS[period]
        self._wait = 0.0

    def _identity(self, request: Request) -> str:
        auth = getattr(request, "auth", None)
        tenant = getattr(auth, "tenant", None)
        if tenant is not None:
            return f"tenant:{tenant.pk}"
        return f"ip:{request.META.get('REMOTE_ADDR', '')}"

    def allow_request(self, request: Request, view: APIView) -> bool:
        now = time.time()
        window = int(now // self.period)
        key = f"throttle:{self.scope}:{self._identity(request)}:{window}"
        client = redis_client()
        pipe = client.pipeline()
        pipe.incr(key)
        pipe.expire(key, self.period + 1)
        used, _ = pipe.execute()
        if int(used) > self.limit:
            self._wait = (window + 1) * self.period - now
            return False
        return True

    def wait(self) -> float:
        return max(1.0, self._wait)


class IdempotentPostMixin:
    """Honour `Idempotency-Key` on POST: the first response is stored for IDEMPOTENCY_KEY_TTL_SECONDS (per
    tenant, caller and key) and replayed for a retry with the same body (header `Idempotent-Replayed:
    true`); the same key with a different body or path is refused (422); a retry while the first is still
    running gets 409.

    The view's `create()` does the work (put this mixin first in the bases). A refused or failed first
    request frees the key, so the client can retry it.

    `idempotency_omit_on_replay` names response fields that are never stored and come back as null on a
    replay: secrets shown once (a new API key) must not sit in Redis in clear text for a day.
    """

    idempotency_omit_on_replay: tuple[str, ...] = ()

    def _idempotency_key(self, request: Request) -> str | None:
        raw = request.headers.get("Idempotency-Key")
        if raw is None:
            return None
        raw = raw.strip()
        if not raw or len(raw) > 200:
            raise ApiError("Idempotency-Key must be 1 to 200 characters.", code="invalid_idempotency_key")
        auth: Any = request.auth  # accounts.authentication.AuthContext
        who = f"{auth.tenant.pk}:{'k' + str(auth.api_key.pk) if auth.api_key else 'u' + str(auth.user.pk)}"
        return f"idempotency:{who}:{hashlib.sha256(raw.encode()).hexdigest()}"

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = self._idempotency_key(request)
        if key is None:
            return super().create(request, *args, **kwargs)  # type: ignore[misc]
        fingerprint = hashlib.sha256(
            f"{request.method} {request.path} ".encode() + json.dumps(request.data, sort_keys=True).encode()
        ).hexdigest()
        client = redis_client()
        # The "running" claim has a short life of its own: if the request dies without an exception reaching
        # us (rolled back for a 5xx, worker killed, commit failed), the key must not stay blocked for a day.
        claimed = client.set(
            key,
            json.dumps({"state": "running", "fingerprint": fingerprint}),
            nx=True,
            ex=settings.IDEMPOTENCY_LOCK_SECONDS,
        )
        if not claimed:
            stored = json.loads(client.get(key) or '{"state": "running"}')
            if stored.get("fingerprint", fingerprint) != fingerprint:
                raise ApiError(
                    "This Idempotency-Key was used with a different request.",
                    code="idempotency_key_reused",
                    status_code=422,
                )
            if stored.get("state") != "done":
                raise ApiError(
                    "A request with this Idempotency-Key is still being processed.",
                    code="idempotency_in_progress",
                    status_code=409,
                )
            response = Response(stored["body"], status=stored["status"])
            response["Idempotent-Replayed"] = "true"
            return response
        try:
            response = super().create(request, *args, **kwargs)  # type: ignore[misc]
        except Exception:
            client.delete(key)
            raise
        if response.status_code >= 400:
            client.delete(key)  # nothing was done; a retry should really run
            return response
        body = response.data
        if isinstance(body, dict) and self.idempotency_omit_on_replay:
            body = {
                name: None if name in self.idempotency_omit_on_replay else value
                for name, value in body.items()
            }
        record = {"state": "done", "fingerprint": fingerprint, "status": response.status_code, "body": body}
        payload = json.dumps(record, default=str)
        ttl = settings.IDEMPOTENCY_KEY_TTL_SECONDS
        # Stored only once the work is committed; a rolled-back request leaves only the short-lived claim.
        transaction.on_commit(lambda: client.set(key, payload, ex=ttl))
        return response
