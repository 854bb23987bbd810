"""Dashboard forms: they parse and validate input; the services in accounts/services.py do the writes."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.utils import timezone

from accounts.models import User
from accounts.roles import ASSIGNABLE_ROLES, Role
from accounts.services import DASHBOARD_LAYOUTS, NOTIFICATION_KINDS

NOTIFICATION_LABELS = {
    "order_alerts": "Order alerts (new orders, cancellations, refunds)",
    "account_notifications": "Account notifications (security and membership changes)",
    "report_delivery": "Scheduled report delivery",
    "automation_alerts": "Automation alerts (repricing, stock, advertising)",
}
DENSITY_LABELS = {"comfortable": "Comfortable", "compact": "Compact"}


class NoColonLabels:
    """Labels read "Email", not "Email:" (the colon adds noise for screen readers and the eye)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def assignable_role_choices(actor_role: str) -> list[tuple[str, str]]:
    allowed = ASSIGNABLE_ROLES.get(actor_role, frozenset())
    return [(value, label) for value, label in Role.choices if value in allowed]


class LoginForm(NoColonLabels, AuthenticationForm):
    """Email + password. The field stays named `username` (what django-axes and Django expect)."""

    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    error_messages = {
        "invalid_login": "That email and password do not match an account. Check both and try again.",
        "inactive": "This account is disabled.",
    }

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()


class TotpCodeForm(NoColonLabels, forms.Form):
    code = forms.CharField(
        label="6-digit code",
        max_length=10,
        help_text="Open your authenticator app and type the code it shows for SellerPilot.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9 ]*",
                "autofocus": True,
            }
        ),
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].replace(" ", "")
        if not code.isdigit() or len(code) != 6:
            raise forms.ValidationError("Enter the 6 digits your authenticator app shows.")
        return code


class TenantSwitchForm(NoColonLabels, forms.Form):
    tenant = forms.UUIDField()
    next = forms.CharField(required=False, max_length=2000)


class ProfileForm(NoColonLabels, forms.Form):
    full_name = forms.CharField(
        label="Full name",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    theme = forms.ChoiceField(label="Theme", choices=User.Theme.choices, widget=forms.RadioSelect)
    density = forms.ChoiceField(
        label="Dashboard density",
        choices=[(d, DENSITY_LABELS[d]) for d in DASHBOARD_LAYOUTS],
        widget=forms.RadioSelect,
        help_text="Compact fits more rows on the screen.",
    )
    notifications = forms.MultipleChoiceField(
        label="Email me about",
        choices=[(kind, NOTIFICATION_LABELS.get(kind, kind)) for kind in NOTIFICATION_KINDS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    @classmethod
    def initial_for(cls, user: User) -> dict[str, Any]:
        prefs = user.notification_preferences or {}
        return {
            "full_name": user.full_name,
            "theme": user.theme,
            "density": (user.dashboard_layout or {}).get("density", "comfortable"),
            # A kind the user never set is on: we only stop mail the user asked us to stop.
            "notifications": [kind for kind in NOTIFICATION_KINDS if prefs.get(kind, True)],
        }

    def notification_preferences(self) -> dict[str, bool]:
        chosen = set(self.cleaned_data["notifications"])
        return {kind: kind in chosen for kind in NOTIFICATION_KINDS}


class InviteForm(NoColonLabels, forms.Form):
    email = forms.EmailField(label="Email address", widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args: Any, actor_role: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = assignable_role_choices(actor_role)  # type: ignore[attr-defined]
        self.fields["role"].initial = Role.VIEWER


class RoleChangeForm(NoColonLabels, forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices)


class ApiKeyCreateForm(NoColonLabels, forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="What uses this key, e.g. “ERP sync”.")
    role = forms.ChoiceField(label="Role", help_text="The key can do what a member with this role can do.")
    expires_on = forms.DateField(
        label="Expires on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty for a key that never expires (you can revoke it at any time).",
    )

    def __init__(self, *args: Any, actor_role: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = assignable_role_choices(actor_role)  # type: ignore[attr-defined]
        self.fields["role"].initial = Role.VIEWER

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the key a name.")
        return name

    def clean_expires_on(self) -> Any:
        day = self.cleaned_data.get("expires_on")
        if day is not None and day <= timezone.localdate():
            raise forms.ValidationError("Choose a date after today.")
        return day

    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        # The key works through the whole chosen day (UTC).
        return timezone.make_aware(datetime.combine(day, time.max))


class AuditFilterForm(NoColonLabels, forms.Form):
    action = forms.ChoiceField(label="Action", required=False)
    actor = forms.CharField(
        label="Who", required=False, max_length=255, help_text="Part of an email address or key name."
    )
    since = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, actions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "Any action"), *[(a, a) for a in actions]]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("“From” must be on or before “To”.")
        return data


class CompanySettingsForm(NoColonLabels, forms.Form):
    require_mfa = forms.BooleanField(
        label="Require two-factor authentication for all members",
        required=False,
        help_text="Members without an authenticator app are asked to set one up before they can see "
        "this company's data. Amazon expects this for access to Amazon data.",
    )


class InvitationSignupForm(NoColonLabels, forms.Form):
    full_name = forms.CharField(
        label="Full name",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters; not a common password and not only digits.",
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords differ.")
        elif first:
            candidate = User(email=self.email, full_name=data.get("full_name", ""))
            try:
                password_validation.validate_password(first, candidate)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return data


class ResetRequestForm(NoColonLabels, PasswordResetForm):
    pass


class ResetPasswordForm(NoColonLabels, SetPasswordForm):
    pass
