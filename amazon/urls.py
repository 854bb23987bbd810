"""Dashboard pages for Amazon seller connections, listings and orders (included by config/urls.py)."""

from django.urls import path

from amazon import ads_views, views

app_name = "amazon"

urlpatterns = [
    path("connections/", views.connection_list, name="connections"),
    path("connections/connect/", views.connect, name="connect"),
    path("connections/connect/seller-central/", views.consent_start, name="consent_start"),
    path("connections/callback/", views.consent_callback_view, name="consent_callback"),
    path("connections/<uuid:public_id>/", views.connection_detail, name="connection_detail"),
    path(
        "connections/<uuid:public_id>/disconnect/",
        views.connection_disconnect_view,
        name="connection_disconnect",
    ),
    path("connections/<uuid:public_id>/ads/", ads_views.ads_connection, name="connection_ads"),
    path(
        "connections/<uuid:public_id>/ads/connect/", ads_views.ads_connect_view, name="connection_ads_connect"
    ),
    path(
        "connections/<uuid:public_id>/ads/authorize/",
        ads_views.ads_consent_start,
        name="connection_ads_consent_start",
    ),
    path("connections/ads/callback/", ads_views.ads_consent_callback_view, name="ads_consent_callback"),
    path(
        "connections/<uuid:public_id>/ads/disconnect/",
        ads_views.ads_disconnect_view,
        name="connection_ads_disconnect",
    ),
    path("listings/", views.listing_list, name="listings"),
    path("orders/", views.order_list, name="orders"),
    path("orders/<uuid:public_id>/", views.order_detail, name="order_detail"),
]
