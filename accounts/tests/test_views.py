"""Dashboard pages through the Django test client: sign-in, lockout, logout, the tenant switcher,
settings pages, members, API keys, audit log, invitations and the MFA requirement."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import tokens
from accounts.models import ApiKey, Invitation, Membership, User
from accounts.roles import Role
from accounts.services import invitation_create
from tenants.context import tenant_context
from tenants.models import AuditEvent, JobRun
from tests.factories import PASSWORD, make_api_key, make_member, make_tenant, make_user

pytestmark = pytest.mark.django_db
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def sign_in(client: Client, user: User, device: TOTPDevice | None = None) -> Client:
    client.force_login(user, backend=MODEL_BACKEND)
    if device is not None:
        session = client.session
        session["otp_device_id"] = device.persistent_id
        session.save()
    return client


def confirmed_device(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def current_code(device: TOTPDevice, offset_steps: int = 0) -> str:
    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = timezone.now().timestamp() + offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture
def tenant():
    return make_tenant("Acme Sellers")


@pytest.fixture
def owner(tenant):
    return make_member(tenant, Role.OWNER, email="owner@acme.test")


@pytest.fixture
def viewer(tenant):
    return make_member(tenant, Role.VIEWER, email="viewer@acme.test")


# --- Login, lockout, logout --------------------------------------------------------------------------------


def test_login_page_renders_labelled_form_with_csp_nonce(client):
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username">Email' in html
    assert '<label for="id_password">Password' in html
    assert "csrfmiddlewaretoken" in html
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    assert f'nonce="{nonce}"' in html
    assert "<script>" not in html and "style=" not in html


def test_login_with_email_and_password_opens_the_dashboard(client, owner, tenant):
    response = client.post(reverse("accounts:login"), {"username": "OWNER@acme.test", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:home")
    home = client.get(reverse("dashboard:home"))
    assert home.status_code == 200
    assert "Acme Sellers" in home.content.decode()


def test_wrong_password_shows_an_error_and_no_session(client, owner):
    response = client.post(reverse("accounts:login"), {"username": owner.email, "password": "nope-nope-nope"})
    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_lockout_after_the_failure_limit(client, owner):
    url = reverse("accounts:login")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(url, {"username": owner.email, "password": "wrong-password-1"}).status_code == 200
    locked = client.post(url, {"username": owner.email, "password": "wrong-password-1"})
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    # Even the right password is refused while locked out.
    again = client.post(url, {"username": owner.email, "password": PASSWORD})
    assert again.status_code == 429
    assert "_auth_user_id" not in client.session


def test_logout_is_post_only_and_revokes_bearer_tokens(client, owner):
    sign_in(client, owner)
    token = client.post(reverse("accounts:session_token")).json()["token"]
    assert tokens.token_check(token) is not None
    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert tokens.token_check(token) is None
    assert client.get(reverse("dashboard:home")).status_code == 302  # back to login


def test_dashboard_requires_login(client):
    response = client.get(reverse("dashboard:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_password_reset_sends_a_working_link(client, owner):
    response = client.post(reverse("accounts:password_reset"), {"email": owner.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/\S+)", mail.outbox[0].body).group(1)
    confirm = client.get(link, follow=True)
    assert confirm.status_code == 200
    assert "Choose a new password" in confirm.content.decode()
    done = client.post(
        confirm.redirect_chain[-1][0],
        {"new_password1": "a-fresh-passphrase-42", "new_password2": "a-fresh-passphrase-42"},
    )
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("a-fresh-passphrase-42")


def test_password_reset_does_not_reveal_unknown_emails(client):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 0


# --- Bearer token endpoint --------------------------------------------------------------------------------


def test_session_token_is_issued_for_the_current_tenant(client, owner, tenant):
    sign_in(client, owner)
    assert client.get(reverse("accounts:session_token")).status_code == 405
    response = client.post(reverse("accounts:session_token"))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["expires_in"] == settings.DASHBOARD_TOKEN_IDLE_SECONDS
    record = tokens.token_check(body["token"])
    assert record.user_id == owner.pk and record.tenant_id == tenant.pk
    assert record.session_key == client.session.session_key


def test_session_token_refused_without_login_or_csrf(owner):
    assert Client().post(reverse("accounts:session_token")).status_code == 401
    strict = Client(enforce_csrf_checks=True)
    sign_in(strict, owner)
    assert strict.post(reverse("accounts:session_token")).status_code == 403


# --- Tenant switcher ----------------------------------------------------------------------------------


def test_switcher_changes_tenant_for_members(client, owner, tenant):
    other = make_tenant("Beta Goods")
    make_member(other, Role.VIEWER, user=owner)
    sign_in(client, owner)
    page = client.get(reverse("dashboard:home")).content.decode()
    assert "Beta Goods" in page and 'id="tenant-switcher-select"' in page
    response = client.post(reverse("accounts:tenant_switch"), {"tenant": str(other.public_id)})
    assert response.status_code == 302
    assert client.session["tenant_id"] == str(other.public_id)
    assert "<h1>Beta Goods</h1>" in client.get(reverse("dashboard:home")).content.decode()


def test_switcher_refuses_a_foreign_tenant_with_404(client, owner, tenant):
    foreign = make_tenant("Not Yours")
    make_member(foreign, Role.OWNER)
    sign_in(client, owner)
    response = client.post(reverse("accounts:tenant_switch"), {"tenant": str(foreign.public_id)})
    assert response.status_code == 404
    assert client.session["tenant_id"] == str(tenant.public_id)
    assert client.post(reverse("accounts:tenant_switch"), {"tenant": "not-a-uuid"}).status_code == 404


def test_switching_revokes_tokens_of_the_previous_tenant(client, owner, tenant):
    other = make_tenant()
    make_member(other, Role.ADMIN, user=owner)
    sign_in(client, owner)
    token = client.post(reverse("accounts:session_token")).json()["token"]
    client.post(reverse("accounts:tenant_switch"), {"tenant": str(other.public_id)})
    assert tokens.token_check(token) is None
    fresh = client.post(reverse("accounts:session_token")).json()["token"]
    assert tokens.token_check(fresh).tenant_id == other.pk


# --- Home ---------------------------------------------------------------------------------------------


def test_home_shows_recent_job_runs_of_this_tenant_only(client, owner, tenant):
    other = make_tenant()
    now = timezone.now()
    with tenant_context(tenant):
        JobRun.objects.create(
            kind="repricing.cycle",
            started_at=now,
            outcome=JobRun.Outcome.FAILED,
            error="Amazon throttled us",
            progress_done=3,
            progress_total=10,
        )
    with tenant_context(other):
        JobRun.objects.create(kind="secret.other.tenant.job", started_at=now)
    sign_in(client, owner)
    html = client.get(reverse("dashboard:home")).content.decode()
    assert "repricing.cycle" in html and "Amazon throttled us" in html
    assert "secret.other.tenant.job" not in html


def test_home_empty_state(client, owner):
    sign_in(client, owner)
    assert "No automation has run yet" in client.get(reverse("dashboard:home")).content.decode()


def test_user_without_company_sees_guidance(client):
    user = make_user()
    sign_in(client, user)
    response = client.get(reverse("dashboard:home"))
    assert response.status_code == 200
    assert "not part of a company yet" in response.content.decode()


# --- Profile and preferences ---------------------------------------------------------------------------


def test_profile_saves_preferences_and_theme_applies(client, owner):
    sign_in(client, owner)
    response = client.post(
        reverse("dashboard:profile"),
        {
            "full_name": "Olivia Owner",
            "theme": "dark",
            "density": "compact",
            "notifications": ["order_alerts"],
        },
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.full_name == "Olivia Owner"
    assert owner.theme == "dark"
    assert owner.dashboard_layout == {"density": "compact"}
    assert owner.notification_preferences == {
        "order_alerts": True,
        "account_notifications": False,
        "report_delivery": False,
        "automation_alerts": False,
    }
    html = client.get(reverse("dashboard:home")).content.decode()
    assert 'data-theme="dark"' in html and 'data-density="compact"' in html


def test_profile_rejects_bad_input_and_changes_nothing(client, owner):
    sign_in(client, owner)
    response = client.post(
        reverse("dashboard:profile"), {"full_name": "New Name", "theme": "neon", "density": "compact"}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    owner.refresh_from_db()
    assert owner.full_name == "" and owner.theme == "system" and owner.dashboard_layout == {}


# --- Members -----------------------------------------------------------------------------------------


def test_members_page_shows_controls_only_to_managers(client, owner, viewer):
    sign_in(client, viewer)
    html = client.get(reverse("dashboard:members")).content.decode()
    assert "owner@acme.test" in html
    assert "Invite someone" not in html and "Change role" not in html and "Remove" not in html
    sign_in(client, owner)
    html = client.get(reverse("dashboard:members")).content.decode()
    assert "Invite someone" in html and "Change role" in html


def test_viewer_posts_are_refused(client, tenant, owner, viewer):
    owner_membership = Membership.objects.get(user=owner, tenant=tenant)
    sign_in(client, viewer)
    assert (
        client.post(reverse("dashboard:members"), {"email": "x@y.test", "role": "viewer"}).status_code == 403
    )
    url = reverse("dashboard:member_role", args=[owner_membership.public_id])
    assert client.post(url, {"role": "viewer"}).status_code == 403
    remove = reverse("dashboard:member_remove", args=[owner_membership.public_id])
    assert client.post(remove).status_code == 403
    owner_membership.refresh_from_db()
    assert owner_membership.role == Role.OWNER


def test_owner_invites_changes_role_and_removes(
    client, tenant, owner, viewer, django_capture_on_commit_callbacks
):
    sign_in(client, owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("dashboard:members"), {"email": "New@Acme.test", "role": "analyst"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and "/invitations/" in mail.outbox[0].body
    with tenant_context(tenant):
        invitation = Invitation.objects.get()
    assert invitation.email == "new@acme.test" and invitation.role == "analyst"

    membership = Membership.objects.get(user=viewer, tenant=tenant)
    client.post(reverse("dashboard:member_role", args=[membership.public_id]), {"role": "operator"})
    membership.refresh_from_db()
    assert membership.role == Role.OPERATOR

    client.post(reverse("dashboard:invitation_revoke", args=[invitation.public_id]))
    with tenant_context(tenant):
        invitation.refresh_from_db()
    assert invitation.revoked_at is not None

    client.post(reverse("dashboard:member_remove", args=[membership.public_id]))
    assert not Membership.objects.filter(pk=membership.pk).exists()
    with tenant_context(tenant):
        actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"member.invite", "member.role_change", "member.invite_revoke", "member.remove"} <= actions


def test_invite_errors_are_shown_and_nothing_is_written(client, tenant, owner, viewer):
    sign_in(client, owner)
    response = client.post(reverse("dashboard:members"), {"email": viewer.email, "role": "viewer"})
    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    response = client.post(reverse("dashboard:members"), {"email": "not-an-email", "role": "viewer"})
    assert response.status_code == 400
    with tenant_context(tenant):
        assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_admin_cannot_touch_owner_and_last_owner_is_kept(client, tenant, owner):
    admin = make_member(tenant, Role.ADMIN)
    owner_membership = Membership.objects.get(user=owner, tenant=tenant)
    sign_in(client, admin)
    html = client.get(reverse("dashboard:members")).content.decode()
    assert f'id="role-{owner_membership.public_id}"' not in html  # no control for the owner row
    response = client.post(
        reverse("dashboard:member_role", args=[owner_membership.public_id]), {"role": "viewer"}, follow=True
    )
    assert "Only an owner" in response.content.decode()
    sign_in(client, owner)
    response = client.post(
        reverse("dashboard:member_role", args=[owner_membership.public_id]), {"role": "viewer"}, follow=True
    )
    assert "at least one owner" in response.content.decode()
    owner_membership.refresh_from_db()
    assert owner_membership.role == Role.OWNER


def test_members_of_another_tenant_are_404(client, owner):
    foreign_tenant = make_tenant()
    foreign_user = make_member(foreign_tenant, Role.VIEWER)
    foreign = Membership.objects.get(user=foreign_user)
    sign_in(client, owner)
    assert client.post(reverse("dashboard:member_remove", args=[foreign.public_id])).status_code == 404
    assert (
        client.post(reverse("dashboard:member_role", args=[foreign.public_id]), {"role": "admin"}).status_code
        == 404
    )
    assert Membership.objects.filter(pk=foreign.pk, role=Role.VIEWER).exists()


# --- API keys ------------------------------------------------------------------------------------------


def test_api_key_created_shown_once_and_revoked(client, tenant, owner):
    sign_in(client, owner)
    response = client.post(
        reverse("dashboard:api_keys"), {"name": "ERP sync", "role": "analyst", "expires_on": ""}
    )
    assert response.status_code == 200
    raw = re.search(r'<code id="new-api-key">([^<]+)</code>', response.content.decode()).group(1)
    key = ApiKey.objects.get(tenant=tenant)
    assert raw.startswith(f"sp_key_{key.prefix}_") and key.role == "analyst"
    assert raw not in client.get(reverse("dashboard:api_keys")).content.decode()
    client.post(reverse("dashboard:api_key_revoke", args=[key.public_id]))
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_api_key_form_validation(client, tenant, owner):
    sign_in(client, owner)
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    response = client.post(
        reverse("dashboard:api_keys"), {"name": "x", "role": "viewer", "expires_on": yesterday}
    )
    assert response.status_code == 400
    assert "after today" in response.content.decode()
    assert not ApiKey.objects.filter(tenant=tenant).exists()


def test_api_keys_page_needs_the_permission(client, tenant, viewer):
    key, _ = make_api_key(tenant)
    sign_in(client, viewer)
    assert client.get(reverse("dashboard:api_keys")).status_code == 403
    assert client.post(reverse("dashboard:api_key_revoke", args=[key.public_id])).status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None


def test_api_key_of_another_tenant_is_404(client, owner):
    foreign_key, _ = make_api_key(make_tenant())
    sign_in(client, owner)
    assert client.post(reverse("dashboard:api_key_revoke", args=[foreign_key.public_id])).status_code == 404


# --- Audit log --------------------------------------------------------------------------------------------


def test_audit_log_visible_to_owner_filtered_and_paginated(client, tenant, owner):
    with tenant_context(tenant):
        from tenants.audit import audit_record

        for n in range(30):
            audit_record(actor=owner, action="repricing.rule_change", target_label=f"rule {n}")
        audit_record(actor=owner, action="member.invite", target_label="someone")
    sign_in(client, owner)
    first = client.get(reverse("dashboard:audit_log"))
    assert first.status_code == 200
    html = first.content.decode()
    assert "Page 1 of 2" in html and "rule 29" in html
    filtered = client.get(reverse("dashboard:audit_log"), {"action": "member.invite"}).content.decode()
    assert "someone" in filtered and "rule 29" not in filtered
    page_two = client.get(reverse("dashboard:audit_log"), {"action": "repricing.rule_change", "page": 2})
    assert "rule 0" in page_two.content.decode()


def test_audit_log_refused_to_roles_without_permission(client, tenant, owner, viewer):
    sign_in(client, viewer)
    assert client.get(reverse("dashboard:audit_log")).status_code == 403
    analyst = make_member(tenant, Role.ANALYST)
    sign_in(client, analyst)
    assert client.get(reverse("dashboard:audit_log")).status_code == 403


# --- Company settings and the MFA requirement ------------------------------------------------------------


def test_only_owner_reaches_company_settings(client, tenant, owner):
    admin = make_member(tenant, Role.ADMIN)
    sign_in(client, admin)
    assert client.get(reverse("dashboard:company")).status_code == 403
    assert client.post(reverse("dashboard:company"), {"require_mfa": "on"}).status_code == 403
    tenant.refresh_from_db()
    assert not tenant.require_mfa


def test_owner_must_be_verified_before_requiring_mfa(client, tenant, owner):
    sign_in(client, owner)
    response = client.post(reverse("dashboard:company"), {"require_mfa": "on"})
    assert response.status_code == 400
    assert "your own account first" in response.content.decode()
    tenant.refresh_from_db()
    assert not tenant.require_mfa
    sign_in(client, owner, confirmed_device(owner))
    assert client.post(reverse("dashboard:company"), {"require_mfa": "on"}).status_code == 302
    tenant.refresh_from_db()
    assert tenant.require_mfa


def test_required_mfa_redirects_members_to_setup_and_blocks_tokens(client, tenant, viewer):
    tenant.require_mfa = True
    tenant.save()
    sign_in(client, viewer)
    for name in ("dashboard:home", "dashboard:members", "dashboard:profile"):
        response = client.get(reverse(name))
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("accounts:mfa_setup"))
    token = client.post(reverse("accounts:session_token"))
    assert token.status_code == 403 and token.json()["error"]["code"] == "mfa_required"


def test_required_mfa_with_device_but_unverified_goes_to_challenge(client, tenant, viewer):
    tenant.require_mfa = True
    tenant.save()
    confirmed_device(viewer)
    sign_in(client, viewer)  # logged in without the OTP step (e.g. device added from another session)
    response = client.get(reverse("dashboard:home"))
    assert response["Location"].startswith(reverse("accounts:mfa_challenge"))
    # Setting up another device is no way around the challenge.
    assert client.get(reverse("accounts:mfa_setup"))["Location"].startswith(reverse("accounts:mfa_challenge"))


# --- MFA setup and challenge -----------------------------------------------------------------------------


def test_mfa_setup_with_a_real_totp_code_then_challenge_at_next_login(client, tenant, owner):
    sign_in(client, owner)
    page = client.get(reverse("accounts:mfa_setup"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and 'class="qr-code"' in html and "style=" not in html
    device = TOTPDevice.objects.get(user=owner, confirmed=False)

    wrong = client.post(
        reverse("accounts:mfa_setup"), {"code": "000000" if current_code(device) != "000000" else "111111"}
    )
    assert wrong.status_code == 200 and "not right" in wrong.content.decode()
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save()

    done = client.post(reverse("accounts:mfa_setup"), {"code": current_code(device)})
    assert done.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("dashboard:home")).status_code == 200  # verified in this session
    with tenant_context(tenant):
        assert AuditEvent.objects.filter(action="user.mfa_enable").exists()

    client.post(reverse("accounts:logout"))
    response = client.post(reverse("accounts:login"), {"username": owner.email, "password": PASSWORD})
    assert response["Location"] == reverse("accounts:mfa_challenge")
    assert "_auth_user_id" not in client.session  # the password alone does not log in
    assert client.get(reverse("dashboard:home"))["Location"].startswith(reverse("accounts:login"))

    bad = client.post(reverse("accounts:mfa_challenge"), {"code": "12345"})
    assert bad.status_code == 200 and "6 digits" in bad.content.decode()
    # The setup code was consumed; the app's next code is accepted (TOTP tolerates one step of drift).
    ok = client.post(reverse("accounts:mfa_challenge"), {"code": current_code(device, offset_steps=1)})
    assert ok.status_code == 302 and ok["Location"] == reverse("dashboard:home")
    assert client.get(reverse("dashboard:home")).status_code == 200
    assert client.post(reverse("accounts:session_token")).status_code == 200


def test_challenge_keeps_next_and_refuses_replayed_code(client, owner):
    device = confirmed_device(owner)
    client.post(
        reverse("accounts:login") + "?next=/settings/members/",
        {"username": owner.email, "password": PASSWORD, "next": "/settings/members/"},
    )
    code = current_code(device)
    assert client.post(reverse("accounts:mfa_challenge"), {"code": code})["Location"] == "/settings/members/"
    client.post(reverse("accounts:logout"))
    client.post(reverse("accounts:login"), {"username": owner.email, "password": PASSWORD})
    replay = client.post(reverse("accounts:mfa_challenge"), {"code": code})
    assert replay.status_code == 200
    assert "_auth_user_id" not in client.session


def test_challenge_without_pending_login_goes_back_to_login(client):
    response = client.get(reverse("accounts:mfa_challenge"))
    assert response["Location"] == reverse("accounts:login")


def test_login_next_cannot_point_offsite(client, owner):
    device = confirmed_device(owner)
    client.post(
        reverse("accounts:login"),
        {"username": owner.email, "password": PASSWORD, "next": "https://evil.example/steal"},
    )
    response = client.post(reverse("accounts:mfa_challenge"), {"code": current_code(device)})
    assert response["Location"] == reverse("dashboard:home")


# --- Invitations ---------------------------------------------------------------------------------------


def invite(tenant, owner, email: str, role: str = Role.ANALYST) -> tuple[Invitation, str]:
    with tenant_context(tenant):
        return invitation_create(tenant=tenant, actor=owner, actor_role=Role.OWNER, email=email, role=role)


def test_invitation_sign_up_creates_account_and_membership(client, tenant, owner):
    _, raw = invite(tenant, owner, "newbie@example.com")
    url = reverse("accounts:invitation_accept", args=[tenant.public_id, raw])
    page = client.get(url)
    assert page.status_code == 200
    assert "Create your account" in page.content.decode()

    short = client.post(url, {"full_name": "New Bie", "password1": "short", "password2": "short"})
    assert short.status_code == 200 and "too short" in short.content.decode()
    assert not User.objects.filter(email="newbie@example.com").exists()

    response = client.post(
        url,
        {"full_name": "New Bie", "password1": "a-long-passphrase-77", "password2": "a-long-passphrase-77"},
    )
    assert response.status_code == 302
    user = User.objects.get(email="newbie@example.com")
    assert user.full_name == "New Bie" and user.check_password("a-long-passphrase-77")
    assert Membership.objects.get(user=user, tenant=tenant).role == Role.ANALYST
    assert client.session["tenant_id"] == str(tenant.public_id)
    assert client.get(reverse("dashboard:home")).status_code == 200
    # Used: the link now answers 410.
    assert Client().get(url).status_code == 410


def test_invitation_accept_by_signed_in_invitee(client, tenant, owner):
    other = make_tenant("Home Co")
    person = make_member(other, Role.OWNER, email="person@example.com")
    _, raw = invite(tenant, owner, "Person@Example.com")
    url = reverse("accounts:invitation_accept", args=[tenant.public_id, raw])
    sign_in(client, person)
    page = client.get(url)
    assert "Accept and join Acme Sellers" in page.content.decode()
    assert not Membership.objects.filter(user=person, tenant=tenant).exists()  # GET changes nothing
    assert client.post(url).status_code == 302
    assert Membership.objects.get(user=person, tenant=tenant).role == Role.ANALYST
    assert client.session["tenant_id"] == str(tenant.public_id)


def test_invitation_for_existing_account_asks_to_sign_in(client, tenant, owner):
    make_user(email="known@example.com")
    _, raw = invite(tenant, owner, "known@example.com")
    url = reverse("accounts:invitation_accept", args=[tenant.public_id, raw])
    html = client.get(url).content.decode()
    assert "Sign in to accept" in html
    assert (
        client.post(url, {"password1": "x-long-passphrase-1", "password2": "x-long-passphrase-1"}).status_code
        == 200
    )
    assert not Membership.objects.filter(user__email="known@example.com").exists()


def test_invitation_refuses_another_signed_in_user(client, tenant, owner, viewer):
    _, raw = invite(tenant, owner, "someone.else@example.com")
    url = reverse("accounts:invitation_accept", args=[tenant.public_id, raw])
    sign_in(client, owner)
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    assert not User.objects.filter(email="someone.else@example.com").exists()


def test_expired_revoked_and_forged_invitations(client, tenant, owner):
    invitation, raw = invite(tenant, owner, "late@example.com")
    with tenant_context(tenant):
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    url = reverse("accounts:invitation_accept", args=[tenant.public_id, raw])
    expired = client.get(url)
    assert expired.status_code == 410 and "expired or was already used" in expired.content.decode()
    assert (
        client.post(
            url, {"password1": "a-long-passphrase-77", "password2": "a-long-passphrase-77"}
        ).status_code
        == 410
    )
    assert not User.objects.filter(email="late@example.com").exists()

    assert (
        client.get(reverse("accounts:invitation_accept", args=[tenant.public_id, "forged-token"])).status_code
        == 404
    )
    # A real token presented under another tenant's id is unknown there.
    _, fresh = invite(tenant, owner, "fresh@example.com")
    elsewhere = make_tenant()
    assert (
        client.get(reverse("accounts:invitation_accept", args=[elsewhere.public_id, fresh])).status_code
        == 404
    )
    import uuid

    assert client.get(reverse("accounts:invitation_accept", args=[uuid.uuid4(), fresh])).status_code == 404
