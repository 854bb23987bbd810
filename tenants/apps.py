from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from datetime import timedelta

        from tenants.jobs import register_periodic

        post_migrate.connect(_apply_row_level_security, dispatch_uid="tenants.rls")
        register_periodic("tenants.reap_stale_runs", "tenants.reap_stale_runs", timedelta(minutes=10))


def _apply_row_level_security(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    # post_migrate fires once per app after the whole plan ran; one pass (on ours) covers every table.
    if sender.name == "tenants":
        from tenants.rls import apply_row_level_security

        apply_row_level_security(using=using)
