from django.apps import AppConfig


class AmazonConfig(AppConfig):
    name = "amazon"
    verbose_name = "Amazon connections"
    default_auto_field = "django.db.models.BigAutoField"
