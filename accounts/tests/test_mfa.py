"""accounts.mfa: the enforcement rule, the pending (password-only) login, TOTP setup/verification
with real codes computed from the device key, throttling, and the QR code's CSP safety."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.cache import SessionStore
from django.test import RequestFactory
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from accounts.roles import Role
from tests.factories import PASSWORD, make_member, make_tenant, make_user

pytestmark = pytest.mark.django_db


def code_for(device: TOTPDevice, offset_steps: int = 0) -> str:
    """What the user's authenticator app shows now (RFC 6238, from the device's own key)."""
    value = totp(
        device.bin_key, step=device.step, t0=device.t0 - offset_steps * device.step, digits=device.digits
    )
    return f"{value:0{device.digits}d}"


def request_for(user, tenant=None, verified_device=None):
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request.user = user
    if user.is_authenticated:
        user.otp_device = verified_device
        user.is_verified = lambda: user.otp_device is not None
    request.tenant = tenant
    return request


# --- Enforcement rule ---------------------------------------------------------------------------------


def test_no_requirement_for_anonymous_or_users_without_device_in_relaxed_tenant():
    tenant = make_tenant()
    user = make_member(tenant, Role.VIEWER)
    assert mfa.mfa_requirement(request_for(AnonymousUser())) is None
    assert mfa.mfa_requirement(request_for(user, tenant)) is None


def test_tenant_requiring_mfa_sends_users_without_device_to_setup():
    tenant = make_tenant(require_mfa=True)
    user = make_member(tenant, Role.OWNER)
    assert mfa.mfa_requirement(request_for(user, tenant)) == "setup"


def test_a_confirmed_device_always_means_challenge_until_verified():
    tenant = make_tenant()
    user = make_member(tenant, Role.OWNER)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    assert mfa.mfa_requirement(request_for(user, tenant)) == "challenge"
    assert mfa.mfa_requirement(request_for(user, tenant, verified_device=device)) is None
    # An unconfirmed (half set up) device does not count.
    other = make_member(tenant, Role.VIEWER)
    TOTPDevice.objects.create(user=other, name="phone", confirmed=False)
    assert mfa.mfa_requirement(request_for(other, tenant)) is None


# --- TOTP ------------------------------------------------------------------------------------------------


def test_setup_device_is_reused_until_confirmed():
    user = make_user()
    first = mfa.totp_setup_device(user)
    assert not first.confirmed
    assert mfa.totp_setup_device(user).pk == first.pk


def test_qr_code_is_inline_svg_without_style_attributes():
    user = make_user(email="qr@example.com")
    device = mfa.totp_setup_device(user)
    svg = mfa.totp_qr_svg(device)
    assert svg.startswith("<svg") and "style" not in svg and "<script" not in svg
    assert "otpauth" not in svg  # the secret is only in the drawn modules, not in text
    secret = mfa.totp_secret(device).replace(" ", "")
    assert len(secret) == 32 and secret.isalnum()


def test_verify_accepts_the_current_code_once_and_rejects_others():
    user = make_user()
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    code = code_for(device)
    assert mfa.totp_verify(user=user, code=code) == device
    assert mfa.totp_verify(user=user, code=code) is None  # no replay
    wrong = "000000" if code_for(device, 1) != "000000" else "111111"
    assert mfa.totp_verify(user=user, code=wrong) is None


def test_wrong_codes_throttle_the_device():
    user = make_user()
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    assert not mfa.totp_throttled(user)
    assert mfa.totp_verify(user=user, code="not-a-code") is None
    assert mfa.totp_throttled(user)
    # Even the right code is refused while throttled.
    assert mfa.totp_verify(user=user, code=code_for(device)) is None


def test_another_users_device_never_verifies():
    owner, stranger = make_user(), make_user()
    device = TOTPDevice.objects.create(user=owner, name="phone", confirmed=True)
    assert mfa.totp_verify(user=stranger, code=code_for(device)) is None


# --- Pending login --------------------------------------------------------------------------------------


def test_pending_login_expires():
    user = make_user()
    request = request_for(AnonymousUser())
    user.backend = "django.contrib.auth.backends.ModelBackend"
    mfa.pending_login_start(request, user, "/next/")
    pending = mfa.pending_login(request)
    assert pending is not None and pending.user == user and pending.next_url == "/next/"
    request.session[mfa.PENDING_SESSION_KEY]["at"] = time.time() - mfa.PENDING_SECONDS - 1
    assert mfa.pending_login(request) is None
    assert mfa.PENDING_SESSION_KEY not in request.session


def test_pending_login_of_a_deactivated_user_is_dropped():
    user = make_user()
    request = request_for(AnonymousUser())
    mfa.pending_login_start(request, user, "")
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert mfa.pending_login(request) is None


# --- Through the views ------------------------------------------------------------------------------------


def test_full_flow_setup_logout_login_challenge(client):
    tenant = make_tenant(require_mfa=True)
    user = make_member(tenant, Role.ANALYST, email="analyst@example.com")
    response = client.post(reverse("accounts:login"), {"username": user.email, "password": PASSWORD})
    assert response["Location"] == reverse("dashboard:home")  # no device yet: logged in...
    home = client.get(reverse("dashboard:home"))
    assert home["Location"].startswith(reverse("accounts:mfa_setup"))  # ...but sent to setup
    client.get(home["Location"])
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert client.post(reverse("accounts:mfa_setup"), {"code": code_for(device)}).status_code == 302
    assert client.get(reverse("dashboard:home")).status_code == 200

    client.post(reverse("accounts:logout"))
    client.post(reverse("accounts:login"), {"username": user.email, "password": PASSWORD})
    assert client.get(reverse("dashboard:home"))["Location"].startswith(reverse("accounts:login"))
    page = client.get(reverse("accounts:mfa_challenge"))
    assert page.status_code == 200 and 'autocomplete="one-time-code"' in page.content.decode()
    device.refresh_from_db()
    assert client.post(reverse("accounts:mfa_challenge"), {"code": code_for(device, 1)}).status_code == 302
    assert client.get(reverse("dashboard:home")).status_code == 200


def test_challenge_session_key_changes_on_login(client):
    user = make_user()
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.post(reverse("accounts:login"), {"username": user.email, "password": PASSWORD})
    before = client.session.session_key
    client.post(reverse("accounts:mfa_challenge"), {"code": code_for(device)})
    assert client.session.session_key != before
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session["otp_device_id"] == device.persistent_id
