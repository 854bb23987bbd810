"""Two-factor authentication (TOTP) for the dashboard: setup, the login challenge and enforcement.

How sign-in works for a user with a confirmed authenticator: the password step does *not* log the user
in. It parks the user id in the session ("pending"), and only a correct TOTP code turns that into a
Django login (`auth.login`) plus an OTP verification (`django_otp.login`). So a password alone never
yields an authenticated session for such a user, whichever view a later page uses.

Enforcement (`mfa_requirement`): a signed-in user who is not OTP-verified is sent to the challenge if
they own a confirmed device, or to setup if their current company requires two-factor authentication.
Dashboard pages (accounts.pages.dashboard_page) and the bearer-token endpoint apply it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from tenants.audit import audit_record
from tenants.context import current_tenant

DEVICE_NAME = "Authenticator app"
PENDING_SESSION_KEY = "mfa_pending"
# How long a correct password stays good for while the user fetches their code.
PENDING_SECONDS = 5 * 60

MfaStep = Literal["challenge", "setup"]


def is_verified(user: object) -> bool:
    check = getattr(user, "is_verified", None)
    return bool(check()) if callable(check) else getattr(user, "otp_device", None) is not None


def has_confirmed_device(user: User) -> bool:
    return bool(user_has_device(user, confirmed=True))


def mfa_requirement(request: HttpRequest) -> MfaStep | None:
    """What a signed-in user must do before seeing dashboard data, or None if nothing."""
    user = request.user
    if not user.is_authenticated or is_verified(user):
        return None
    if has_confirmed_device(user):
        return "challenge"
    tenant = getattr(request, "tenant", None)
    if tenant is not None and tenant.require_mfa:
        return "setup"
    return None


# --- Setup ------------------------------------------------------------------------------------------------


def totp_setup_device(user: User) -> TOTPDevice:
    """The unconfirmed device the user is setting up (created on first visit, reused after)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def totp_secret(device: TOTPDevice) -> str:
    """The base32 secret, grouped in fours, for people who type it into their app."""
    from base64 import b32encode

    raw = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def totp_qr_svg(device: TOTPDevice) -> str:
    """The provisioning URI as an inline SVG QR code (no external image, CSP-safe: no style attrs)."""
    import segno

    qr = segno.make(device.config_url, error="m")
    return qr.svg_inline(
        scale=5,
        border=4,
        dark="#000000",
        light="#ffffff",
        svgclass="qr-code",
        title="QR code for your authenticator app",
    )


@transaction.atomic
def totp_confirm(*, request: HttpRequest, device: TOTPDevice, code: str) -> bool:
    """Confirm a device being set up with a code from the app; on success the session is verified."""
    user = request.user
    assert isinstance(user, User)
    locked = (
        TOTPDevice.objects.select_for_update().filter(pk=device.pk, user_id=user.pk, confirmed=False).first()
    )
    if locked is None or not locked.verify_token(code):
        return False
    locked.confirmed = True
    locked.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).delete()
    session_cycle(request)
    otp_login(request, locked)
    if current_tenant() is not None:
        audit_record(actor=user, action="user.mfa_enable", target=user, target_label=user.email)
    return True


def session_cycle(request: HttpRequest) -> None:
    """New session key on a privilege change (OTP verification). Bearer tokens are tracked per session
    key, so the old key's tokens are revoked first; otherwise logout could no longer find them."""
    from accounts.tokens import tokens_revoke_for_session

    if request.session.session_key:
        tokens_revoke_for_session(request.session.session_key)
    request.session.cycle_key()


def totp_throttled(user: User) -> bool:
    """True if every confirmed device is refusing codes for now (too many wrong ones)."""
    devices = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    return bool(devices) and all(not d.verify_is_allowed()[0] for d in devices)


def totp_verify(*, user: User, code: str) -> TOTPDevice | None:
    """The confirmed device that accepts `code` (each code is accepted once; wrong codes throttle)."""
    code = code.strip().replace(" ", "")
    with transaction.atomic():
        for device in TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"):
            if device.verify_token(code):
                return device
    return None


# --- The pending (password-checked, code-not-yet-checked) login ---------------------------------------------


@dataclass(frozen=True)
class PendingLogin:
    user: User
    backend: str
    next_url: str


def pending_login_start(request: HttpRequest, user: User, next_url: str) -> None:
    request.session[PENDING_SESSION_KEY] = {
        "user_id": user.pk,
        "backend": getattr(user, "backend", "django.contrib.auth.backends.ModelBackend"),
        "next": next_url,
        "at": time.time(),
    }


def pending_login(request: HttpRequest) -> PendingLogin | None:
    data = request.session.get(PENDING_SESSION_KEY)
    if not isinstance(data, dict) or time.time() - float(data.get("at", 0)) > PENDING_SECONDS:
        request.session.pop(PENDING_SESSION_KEY, None)
        return None
    user_id = data.get("user_id")
    if not isinstance(user_id, int):
        request.session.pop(PENDING_SESSION_KEY, None)
        return None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        request.session.pop(PENDING_SESSION_KEY, None)
        return None
    return PendingLogin(user=user, backend=str(data["backend"]), next_url=str(data.get("next") or ""))


def pending_login_clear(request: HttpRequest) -> None:
    request.session.pop(PENDING_SESSION_KEY, None)
