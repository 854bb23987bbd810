"""Dashboard pages: home (recent automation runs) and the settings pages.

Each view parses input, relies on `@dashboard_page` for sign-in/MFA/membership/role, looks objects up
filtered by `request.tenant` (404 across tenants) and calls one service, which re-checks the role.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts import mfa
from accounts.forms import (
    ApiKeyCreateForm,
    AuditFilterForm,
    CompanySettingsForm,
    InviteForm,
    ProfileForm,
    RoleChangeForm,
)
from accounts.models import ApiKey, Invitation, Membership, User
from accounts.pages import dashboard_page
from accounts.roles import Permission, Role, can_assign, role_allows
from accounts.services import (
    AccountError,
    api_key_create,
    api_key_revoke,
    invitation_create,
    invitation_revoke,
    membership_change_role,
    membership_remove,
    tenant_set_require_mfa,
    user_update_preferences,
)
from tenants.models import AuditEvent, JobRun

RECENT_RUNS = 25
AUDIT_PAGE_SIZE = 25


def _actor(request: HttpRequest) -> tuple[User, str]:
    return request.user, request.membership.role  # type: ignore[attr-defined,return-value]


# --- Home ------------------------------------------------------------------------------------------------


@dashboard_page(Permission.VIEW_DASHBOARD)
def home(request: HttpRequest) -> HttpResponse:
    runs = list(JobRun.objects.all()[:RECENT_RUNS])
    failed = sum(1 for run in runs if run.outcome == JobRun.Outcome.FAILED)
    return render(request, "dashboard/home.html", {"runs": runs, "failed_count": failed})


# --- Profile and preferences -----------------------------------------------------------------------------


@dashboard_page(tenant_required=False)
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = ProfileForm(request.POST or None, initial=ProfileForm.initial_for(user))
    if request.method == "POST" and form.is_valid():
        try:
            user_update_preferences(
                user=user,
                full_name=form.cleaned_data["full_name"],
                theme=form.cleaned_data["theme"],
                dashboard_layout={"density": form.cleaned_data["density"]},
                notification_preferences=form.notification_preferences(),
            )
        except AccountError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Your profile and preferences are saved.")
            return redirect("dashboard:profile")
    return render(
        request, "dashboard/profile.html", {"form": form, "mfa_enabled": mfa.has_confirmed_device(user)}
    )


# --- Members and invitations -----------------------------------------------------------------------------


def _membership(request: HttpRequest, public_id: UUID) -> Membership:
    membership = (
        Membership.objects.select_related("user", "tenant")
        .filter(tenant=request.tenant, public_id=public_id)  # type: ignore[attr-defined]
        .first()
    )
    if membership is None:
        raise Http404("No such member.")
    return membership


@dashboard_page(Permission.VIEW_DASHBOARD)
@require_http_methods(["GET", "POST"])
def members(request: HttpRequest) -> HttpResponse:
    actor, actor_role = _actor(request)
    can_manage = role_allows(actor_role, Permission.MANAGE_MEMBERS)
    invite_form = InviteForm(request.POST or None, actor_role=actor_role) if can_manage else None
    if request.method == "POST":
        if invite_form is None:
            from accounts.pages import forbidden

            return forbidden(request)
        if invite_form.is_valid():
            try:
                invitation_create(
                    tenant=request.tenant,  # type: ignore[attr-defined]
                    actor=actor,
                    actor_role=actor_role,
                    email=invite_form.cleaned_data["email"],
                    role=invite_form.cleaned_data["role"],
                    accept_url_base=request.build_absolute_uri("/").rstrip("/"),
                )
            except AccountError as error:
                invite_form.add_error(None, error.message)
            else:
                messages.success(request, f"Invitation sent to {invite_form.cleaned_data['email']}.")
                return redirect("dashboard:members")
    rows = []
    tenant = request.tenant  # type: ignore[attr-defined]
    for membership in Membership.objects.select_related("user").filter(tenant=tenant).order_by("user__email"):
        editable = can_manage and can_assign(actor_role, membership.role)
        rows.append(
            {
                "membership": membership,
                "is_me": membership.user_id == actor.pk,
                "editable": editable,
                "role_form": RoleChangeForm(
                    initial={"role": membership.role}, prefix=str(membership.public_id)
                )
                if editable
                else None,
            }
        )
    pending = []
    if can_manage:
        now = timezone.now()
        pending = list(Invitation.objects.filter(accepted_at=None, revoked_at=None, expires_at__gt=now))
    assignable = [(v, label) for v, label in Role.choices if can_assign(actor_role, v)]
    return render(
        request,
        "dashboard/members.html",
        {
            "rows": rows,
            "can_manage": can_manage,
            "invite_form": invite_form,
            "pending": pending,
            "assignable_roles": assignable,
        },
        status=400 if request.method == "POST" else 200,
    )


@dashboard_page(Permission.MANAGE_MEMBERS)
@require_POST
def member_role(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor, actor_role = _actor(request)
    membership = _membership(request, public_id)
    form = RoleChangeForm(request.POST, prefix=str(membership.public_id))
    if not form.is_valid():
        form = RoleChangeForm(request.POST)  # plain field name, for scripts and tests
    if not form.is_valid():
        messages.error(request, "Choose a role.")
        return redirect("dashboard:members")
    try:
        membership_change_role(
            membership=membership, actor=actor, actor_role=actor_role, role=form.cleaned_data["role"]
        )
    except AccountError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{membership.user.email} is now {Role(form.cleaned_data['role']).label}.")
    return redirect("dashboard:members")


@dashboard_page(Permission.MANAGE_MEMBERS)
@require_POST
def member_remove(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor, actor_role = _actor(request)
    membership = _membership(request, public_id)
    try:
        membership_remove(membership=membership, actor=actor, actor_role=actor_role)
    except AccountError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{membership.user.email} was removed from {request.tenant.name}.")  # type: ignore[attr-defined]
    return redirect("dashboard:members")


@dashboard_page(Permission.MANAGE_MEMBERS)
@require_POST
def invitation_revoke_view(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor, actor_role = _actor(request)
    invitation = Invitation.objects.filter(public_id=public_id).first()  # tenant-scoped manager
    if invitation is None:
        raise Http404("No such invitation.")
    try:
        invitation_revoke(invitation=invitation, actor=actor, actor_role=actor_role)
    except AccountError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"The invitation to {invitation.email} was revoked.")
    return redirect("dashboard:members")


# --- API keys ----------------------------------------------------------------------------------------------


@dashboard_page(Permission.MANAGE_API_KEYS)
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    actor, actor_role = _actor(request)
    form = ApiKeyCreateForm(request.POST or None, actor_role=actor_role)
    created: tuple[ApiKey, str] | None = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created = api_key_create(
                    tenant=request.tenant,  # type: ignore[attr-defined]
                    actor=actor,
                    actor_role=actor_role,
                    name=form.cleaned_data["name"],
                    role=form.cleaned_data["role"],
                    expires_at=form.expires_at(),
                )
            except AccountError as error:
                form.add_error(None, error.message)
        if created is None:
            status = 400
        else:
            # The raw key is rendered in this response only (never stored, never redirected through).
            form = ApiKeyCreateForm(actor_role=actor_role)
    keys = ApiKey.objects.filter(tenant=request.tenant).select_related("created_by")  # type: ignore[attr-defined]
    response = render(
        request,
        "dashboard/api_keys.html",
        {
            "form": form,
            "keys": keys,
            "created_key": created[0] if created else None,
            "raw_key": created[1] if created else None,
            "now": timezone.now(),
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


@dashboard_page(Permission.MANAGE_API_KEYS)
@require_POST
def api_key_revoke_view(request: HttpRequest, public_id: UUID) -> HttpResponse:
    actor, actor_role = _actor(request)
    key = ApiKey.objects.filter(tenant=request.tenant, public_id=public_id).first()  # type: ignore[attr-defined]
    if key is None:
        raise Http404("No such API key.")
    try:
        api_key_revoke(key=key, actor=actor, actor_role=actor_role)
    except AccountError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, f"The key “{key.name}” is revoked; requests using it are refused from now on."
        )
    return redirect("dashboard:api_keys")


# --- Audit log ---------------------------------------------------------------------------------------------


@dashboard_page(Permission.VIEW_AUDIT_LOG)
def audit_log(request: HttpRequest) -> HttpResponse:
    actions = list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())
    form = AuditFilterForm(request.GET or None, actions=actions)
    events = AuditEvent.objects.all()
    if form.is_bound and form.is_valid():
        data: dict[str, Any] = form.cleaned_data
        if data["action"]:
            events = events.filter(action=data["action"])
        if data["actor"]:
            events = events.filter(actor_label__icontains=data["actor"])
        if data["since"]:
            events = events.filter(
                created_at__gte=timezone.make_aware(datetime.combine(data["since"], time.min))
            )
        if data["until"]:
            events = events.filter(
                created_at__lte=timezone.make_aware(datetime.combine(data["until"], time.max))
            )
    elif form.is_bound:
        events = events.none()
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "dashboard/audit_log.html", {"form": form, "page": page})


# --- Company settings -------------------------------------------------------------------------------------


@dashboard_page(Permission.MANAGE_TENANT)
@require_http_methods(["GET", "POST"])
def company(request: HttpRequest) -> HttpResponse:
    actor, actor_role = _actor(request)
    tenant = request.tenant  # type: ignore[attr-defined]
    # An unticked box sends nothing: bind on POST even when the body is empty.
    form = CompanySettingsForm(
        request.POST if request.method == "POST" else None, initial={"require_mfa": tenant.require_mfa}
    )
    if request.method == "POST" and form.is_valid():
        require = form.cleaned_data["require_mfa"]
        if require and not mfa.is_verified(request.user):
            form.add_error(
                "require_mfa",
                "Turn on two-factor authentication for your own account first, so you keep access.",
            )
        else:
            try:
                tenant_set_require_mfa(tenant=tenant, actor=actor, actor_role=actor_role, require_mfa=require)
            except AccountError as error:
                form.add_error(None, error.message)
            else:
                messages.success(
                    request,
                    "Two-factor authentication is now required for every member."
                    if require
                    else "Two-factor authentication is no longer required.",
                )
                return redirect("dashboard:company")
    return render(
        request, "dashboard/company.html", {"form": form}, status=400 if request.method == "POST" else 200
    )
