"""`POST /amazon/notifications`: Amazon's pricing notifications, machine to machine (docs/amazon.md
"Notifications"). No session, no CSRF, no API key: the request is authenticated by its signature.

Answers: 202 accepted (also for a seller account nobody here connected: accepted and dropped, so the
answer never tells which accounts exist), 200 duplicate, 400 malformed or invalid, 401 missing, wrong or
stale signature, 405 not POST, 413 too large, 415 not JSON, 422 a notification type not handled, 503 not
configured. Errors use the API's one error shape; nothing is stored on any of them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from amazon.notifications import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NotificationRefused,
    notification_receive,
)


def _error(code: str, message: str, status: int, fields: dict[str, list[str]] | None = None) -> JsonResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    response = JsonResponse({"error": body}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'SellerPilot-Signature realm="amazon-notifications"'
    return response


def _too_large() -> JsonResponse:
    return _error("request_too_large", "The request body is too large.", 413)


@csrf_exempt
@never_cache
def notifications_intake(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        response = _error("method_not_allowed", f'Method "{request.method}" not allowed.', 405)
        response["Allow"] = "POST"
        return response
    limit = settings.AMAZON_NOTIFICATIONS_MAX_BYTES
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limit:
        return _too_large()
    try:
        body = request.body
    except RequestDataTooBig:
        return _too_large()
    if len(body) > limit:
        return _too_large()
    try:
        result = notification_receive(
            body=body,
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature=request.headers.get(SIGNATURE_HEADER),
            content_type=request.content_type,
        )
    except NotificationRefused as refused:
        return _error(refused.code, refused.message, refused.status, refused.fields)
    if result.outcome == "duplicate":
        return JsonResponse({"status": "duplicate"}, status=200)
    return JsonResponse({"status": "accepted"}, status=202)
