"""Sign-in, MFA, password reset, the dashboard bearer token, the tenant switcher, invitations."""

from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.logout_view, name="logout"),
    path("accounts/mfa/verify/", views.mfa_challenge, name="mfa_challenge"),
    path("accounts/mfa/setup/", views.mfa_setup, name="mfa_setup"),
    path("accounts/password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password-reset/complete/",
        views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("session/token", views.session_token, name="session_token"),
    path("tenant/switch/", views.tenant_switch, name="tenant_switch"),
    path(
        "invitations/<uuid:tenant_public_id>/<str:token>/",
        views.invitation_accept_view,
        name="invitation_accept",
    ),
]
