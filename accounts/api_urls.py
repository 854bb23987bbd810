"""/api/v1/ routes for accounts (included by config/api_urls.py)."""

from django.urls import path

from accounts import api

urlpatterns = [
    path("me", api.MeView.as_view(), name="me"),
    path("tenant", api.TenantView.as_view(), name="tenant"),
    path("members", api.MemberListView.as_view(), name="member-list"),
    path("members/<uuid:public_id>", api.MemberDetailView.as_view(), name="member-detail"),
    path("invitations", api.InvitationCollectionView.as_view(), name="invitation-list"),
    path("invitations/<uuid:public_id>", api.InvitationDetailView.as_view(), name="invitation-detail"),
    path("api-keys", api.ApiKeyCollectionView.as_view(), name="api-key-list"),
    path("api-keys/<uuid:public_id>", api.ApiKeyDetailView.as_view(), name="api-key-detail"),
]
