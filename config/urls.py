from django.contrib import admin
from django.urls import include, path

from amazon.notification_views import notifications_intake
from config import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("amazon/notifications", notifications_intake, name="amazon_notifications"),
    path("api/", include("config.api_urls")),
    path("", include("accounts.urls")),
    path("", include("accounts.dashboard_urls")),
    path("", include("amazon.urls")),
    path("repricing/", include("repricing.urls")),
]
