from django.apps import AppConfig


class RepricingConfig(AppConfig):
    name = "repricing"
    verbose_name = "Repricing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from repricing import tasks_submission  # Celery's autodiscovery imports only repricing/tasks.py
        from tenants.jobs import register_periodic

        register_periodic(
            "repricing.send_submissions", "repricing.send_submissions", tasks_submission.SEND_SWEEP_EVERY
        )
        register_periodic(
            "repricing.follow_up_submissions",
            "repricing.follow_up_submissions",
            tasks_submission.FOLLOW_UP_EVERY,
        )
