"""Sign-in, sign-out, two-factor authentication, the dashboard bearer token, the tenant switcher and
invitation acceptance. Dashboard pages (home, settings) are in accounts/dashboard_views.py."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from accounts import mfa
from accounts.forms import (
    InvitationSignupForm,
    LoginForm,
    ResetPasswordForm,
    ResetRequestForm,
    TenantSwitchForm,
    TotpCodeForm,
)
from accounts.models import Invitation, User
from accounts.selectors import memberships_of
from accounts.services import AccountError, hash_secret, invitation_accept, invitation_find, user_create
from accounts.tokens import token_issue, tokens_revoke_for_session, tokens_revoke_for_user
from tenants.context import tenant_context
from tenants.middleware import SESSION_KEY as TENANT_SESSION_KEY
from tenants.models import Tenant

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _safe_next(request: HttpRequest, candidate: str | None, default: str = "") -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default or reverse(settings.LOGIN_REDIRECT_URL)


# --- Login / logout ---------------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """Password step. Users with an authenticator continue to the challenge before they are logged in."""

    template_name = "accounts/login.html"
    form_class = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        if mfa.has_confirmed_device(user):
            mfa.pending_login_start(self.request, user, self.get_success_url())
            return redirect("accounts:mfa_challenge")
        return super().form_valid(form)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    # Revoke the bearer tokens handed to this browser session *before* the session (and its key) is gone.
    if request.session.session_key:
        tokens_revoke_for_session(request.session.session_key)
    auth_logout(request)
    messages.info(request, "You are signed out.")
    return redirect(settings.LOGOUT_REDIRECT_URL)


# --- Two-factor authentication ----------------------------------------------------------------------------


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def mfa_challenge(request: HttpRequest) -> HttpResponse:
    pending: mfa.PendingLogin | None = None
    if request.user.is_authenticated:
        user = request.user
        next_url = _safe_next(request, request.GET.get("next") or request.POST.get("next"))
        if mfa.is_verified(user):
            return redirect(next_url)
        if not mfa.has_confirmed_device(user):
            return redirect(f"{reverse('accounts:mfa_setup')}?next={next_url}")
    else:
        pending = mfa.pending_login(request)
        if pending is None:
            messages.info(request, "Your sign-in took too long. Enter your email and password again.")
            return redirect("accounts:login")
        user = pending.user
        next_url = _safe_next(request, pending.next_url)

    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = mfa.totp_verify(user=user, code=form.cleaned_data["code"])
        if device is not None:
            if pending is not None:
                auth_login(request, pending.user, backend=pending.backend)
                mfa.pending_login_clear(request)
            else:
                mfa.session_cycle(request)
            otp_login(request, device)
            return redirect(next_url)
        if mfa.totp_throttled(user):
            form.add_error("code", "Too many wrong codes. Wait a minute, then try the newest code.")
        else:
            form.add_error("code", "That code is not right or has expired. Try the newest code in your app.")
    return render(request, "accounts/mfa_challenge.html", {"form": form, "next": next_url})


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def mfa_setup(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect(f"{reverse('accounts:login')}?next={request.get_full_path()}")
    user: User = request.user
    next_url = _safe_next(request, request.GET.get("next") or request.POST.get("next"))
    if mfa.has_confirmed_device(user):
        if not mfa.is_verified(user):
            # Adding a device must not become a way around the challenge.
            return redirect(f"{reverse('accounts:mfa_challenge')}?next={next_url}")
        return render(request, "accounts/mfa_setup.html", {"enabled": True, "next": next_url})

    device = mfa.totp_setup_device(user)
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if mfa.totp_confirm(request=request, device=device, code=form.cleaned_data["code"]):
            messages.success(
                request, "Two-factor authentication is on. You will be asked for a code when you sign in."
            )
            return redirect(next_url)
        form.add_error(
            "code", "That code is not right. Check the time on your phone and try the newest code."
        )
    required = bool(getattr(request, "tenant", None) and request.tenant.require_mfa)  # type: ignore[attr-defined]
    return render(
        request,
        "accounts/mfa_setup.html",
        {
            "enabled": False,
            "form": form,
            "qr_svg": mfa.totp_qr_svg(device),
            "secret": mfa.totp_secret(device),
            "required": required,
            "next": next_url,
        },
    )


# --- Dashboard bearer token ------------------------------------------------------------------------------


def _json_error(code: str, message: str, status: int) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def session_token(request: HttpRequest) -> JsonResponse:
    """A short-lived bearer token for the dashboard's API calls (kept by the page in sessionStorage)."""
    if not request.user.is_authenticated:
        return _json_error("not_authenticated", "Sign in first.", 401)
    if mfa.mfa_requirement(request) is not None:
        return _json_error("mfa_required", "Complete two-factor authentication first.", 403)
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        return _json_error("no_tenant", "You are not a member of a company yet.", 403)
    if not request.session.session_key:
        request.session.save()
    raw, expires_in = token_issue(
        user_id=request.user.pk,
        tenant_id=tenant.pk,
        session_key=request.session.session_key or "",
        mfa_verified=mfa.is_verified(request.user),
    )
    response = JsonResponse({"token": raw, "expires_in": expires_in})
    response["Cache-Control"] = "no-store"
    return response


# --- Tenant switcher ------------------------------------------------------------------------------------


@require_POST
def tenant_switch(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    form = TenantSwitchForm(request.POST)
    if not form.is_valid():
        raise Http404("No such company.")
    membership = memberships_of(request.user).filter(tenant__public_id=form.cleaned_data["tenant"]).first()
    if membership is None:
        raise Http404("No such company.")
    if request.session.session_key:
        # Tokens carry the tenant they were issued for; the page fetches a fresh one for the new company.
        tokens_revoke_for_session(request.session.session_key)
    request.session[TENANT_SESSION_KEY] = str(membership.tenant.public_id)
    messages.success(request, f"You are now working in {membership.tenant.name}.")
    return redirect(_safe_next(request, form.cleaned_data.get("next")))


# --- Invitations -----------------------------------------------------------------------------------------


def _invitation_gone(request: HttpRequest, *, status: int) -> HttpResponse:
    return render(request, "accounts/invitation_invalid.html", {"status": status}, status=status)


@sensitive_post_parameters("password1", "password2")
@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept_view(request: HttpRequest, tenant_public_id: UUID, token: str) -> HttpResponse:
    tenant = Tenant.objects.filter(public_id=tenant_public_id, is_active=True).first()
    if tenant is None or len(token) > 100:
        return _invitation_gone(request, status=404)
    with tenant_context(tenant):
        invitation = invitation_find(raw_token=token)
        if invitation is None:
            exists = Invitation.objects.filter(token_hash=hash_secret(token)).exists()
            return _invitation_gone(request, status=410 if exists else 404)

    context: dict[str, Any] = {"invitation": invitation, "tenant": tenant}
    user = request.user
    if user.is_authenticated:
        if user.email.lower() != invitation.email.lower():
            return render(request, "accounts/invitation.html", {**context, "state": "wrong_user"}, status=403)
        if mfa.has_confirmed_device(user) and not mfa.is_verified(user):
            return redirect(f"{reverse('accounts:mfa_challenge')}?next={request.get_full_path()}")
        if request.method == "POST":
            try:
                with tenant_context(tenant):
                    invitation_accept(invitation=invitation, user=user)
            except AccountError as error:
                return render(
                    request,
                    "accounts/invitation.html",
                    {**context, "state": "accept", "error": error.message},
                    status=error.status,
                )
            return _joined(request, tenant)
        return render(request, "accounts/invitation.html", {**context, "state": "accept"})

    if User.objects.filter(email__iexact=invitation.email).exists():
        login_url = f"{reverse('accounts:login')}?next={request.get_full_path()}"
        return render(
            request, "accounts/invitation.html", {**context, "state": "sign_in", "login_url": login_url}
        )

    form = InvitationSignupForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            with tenant_context(tenant):  # one transaction: no account without its membership
                new_user = user_create(
                    email=invitation.email,
                    password=form.cleaned_data["password1"],
                    full_name=form.cleaned_data["full_name"],
                )
                invitation_accept(invitation=invitation, user=new_user)
        except AccountError as error:
            form.add_error(None, error.message)
        else:
            auth_login(request, new_user, backend=MODEL_BACKEND)
            return _joined(request, tenant)
    return render(request, "accounts/invitation.html", {**context, "state": "sign_up", "form": form})


def _joined(request: HttpRequest, tenant: Tenant) -> HttpResponseRedirect:
    request.session[TENANT_SESSION_KEY] = str(tenant.public_id)
    messages.success(request, f"Welcome to {tenant.name}.")
    return redirect(settings.LOGIN_REDIRECT_URL)


# --- Password reset (Django's views, our templates and namespaced URLs) ----------------------------------


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "registration/password_reset_form.html"
    form_class = ResetRequestForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    form_class = ResetPasswordForm
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        # Django ends the user's sessions (their auth hash changed); end their API tokens too.
        tokens_revoke_for_user(form.user.pk)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"
