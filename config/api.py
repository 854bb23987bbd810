"""What every API endpoint shares: one error shape, cursor pagination, per-tenant throttling that is
atomic across processes, and `Idempotency-Key` on POST.

Error shape (always):
    {"error": {"code": "validation_error", "message": "…", "fields": {"email": ["…"]}}}
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import transaction
from django.http import Http404
from rest_framework import exceptions, pagination, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:
    from rest_framework.views import APIView


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


class ApiError(exceptions.APIException):
    """An error a user can cause, with a stable machine-readable code."""

    status_code = status.HTTP_400_BAD_REQUEST
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


def error_response(code: str, message: str, http_status: int, fields: Any = None,
                   headers: dict[str, str] | None = None) -> Response:
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
    fields = exc.detail if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict) else None
    message = _message(exc.detail)
    if isinstance(exc, exceptions.ValidationError) and fields:
        non_field = fields.get("non_field_errors")
        message = str(non_field[0]) if non_field else "Some fields are not valid."
    return error_response(code, message, exc.status_code, fields, headers)


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
        rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope]
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
        client = _redis()
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
    """Honour `Idempotency-Key` on POST: the first response is stored for 24 hours (per tenant and key)
    and replayed for a retry with the same body; a different body with the same key is refused (422);
    a retry while the first is still running gets 409."""

    def _idempotency_key(self, request: Request) -> str | None:
        raw = request.headers.get("Idempotency-Key")
        if raw is None:
            return None
        raw = raw.strip()
        if not raw or len(raw) > 200:
            raise ApiError("Idempotency-Key must be 1 to 200 characters.", code="invalid_idempotency_key")
        auth = request.auth
        who = f"{auth.tenant.pk}:{auth.api_key.pk if auth.api_key else 'u' + str(auth.user.pk)}"
        return f"idempotency:{who}:{hashlib.sha256(raw.encode()).hexdigest()}"

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = self._idempotency_key(request)
        if key is None:
            return super().create(request, *args, **kwargs)  # type: ignore[misc]
        fingerprint = hashlib.sha256(
            f"{request.method} {request.path} ".encode() + json.dumps(request.data, sort_keys=True).encode()
        ).hexdigest()
        client = _redis()
        ttl = settings.IDEMPOTENCY_KEY_TTL_SECONDS
        claimed = client.set(key, json.dumps({"state": "running", "fingerprint": fingerprint}), nx=True, ex=ttl)
        if not claimed:
            stored = json.loads(client.get(key) or "{}")
            if stored.get("fingerprint") != fingerprint:
                raise ApiError("This Idempotency-Key was used with a different request.",
                               code="idempotency_key_reused", status_code=422)
            if stored.get("state") == "running":
                raise ApiError("A request with this Idempotency-Key is still being processed.",
                               code="idempotency_in_progress", status_code=409)
            response = Response(stored["body"], status=stored["status"])
            response["Idempotent-Replayed"] = "true"
            return response
        try:
            response = super().create(request, *args, **kwargs)  # type: ignore[misc]
        except Exception:
            client.delete(key)
            raise
        record = {"state": "done", "fingerprint": fingerprint, "status": response.status_code,
                  "body": response.data}
        # Stored only once the work is committed; a rolled-back request frees the key for a retry.
        transaction.on_commit(lambda: client.set(key, json.dumps(record, default=str), ex=ttl))
        return response
