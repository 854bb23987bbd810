"""/api/v1/ routes for Amazon seller connections, listings and orders (included by config/api_urls.py)."""

from django.urls import path

from amazon import ads_views, api

urlpatterns = [
    path("connections", api.ConnectionCollectionView.as_view(), name="connection-list"),
    path("connections/consent-url", api.ConsentUrlView.as_view(), name="connection-consent-url"),
    path("connections/<uuid:public_id>", api.ConnectionDetailView.as_view(), name="connection-detail"),
    path("connections/<uuid:public_id>/ads", ads_views.AdsAuthorizationView.as_view(), name="connection-ads"),
    path(
        "connections/<uuid:public_id>/ads/consent-url",
        ads_views.AdsConsentUrlView.as_view(),
        name="connection-ads-consent-url",
    ),
    path("listings", api.ListingListView.as_view(), name="listing-list"),
    path("orders", api.OrderListView.as_view(), name="order-list"),
    path("orders/<uuid:public_id>", api.OrderDetailView.as_view(), name="order-detail"),
]
