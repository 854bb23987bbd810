from django.apps import AppConfig


class RepricingConfig(AppConfig):
    name = "repricing"
    verbose_name = "Repricing"
    default_auto_field = "django.db.models.BigAutoField"
