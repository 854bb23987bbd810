"""The dashboard namespace: home and settings. Other apps add their pages under their own namespaces
and protect them with accounts.pages.dashboard_page."""

from django.urls import path

from accounts import dashboard_views as views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("settings/profile/", views.profile, name="profile"),
    path("settings/members/", views.members, name="members"),
    path("settings/members/<uuid:public_id>/role/", views.member_role, name="member_role"),
    path("settings/members/<uuid:public_id>/remove/", views.member_remove, name="member_remove"),
    path(
        "settings/invitations/<uuid:public_id>/revoke/",
        views.invitation_revoke_view,
        name="invitation_revoke",
    ),
    path("settings/api-keys/", views.api_keys, name="api_keys"),
    path("settings/api-keys/<uuid:public_id>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
    path("settings/audit-log/", views.audit_log, name="audit_log"),
    path("settings/company/", views.company, name="company"),
]
