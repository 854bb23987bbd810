from datetime import timedelta

from django.apps import AppConfig

#: The sweep of notifications whose wake-up was lost (the fast path reacts within seconds).
NOTIFICATIONS_SWEEP_EVERY = timedelta(minutes=1)
#: The scheduled poll (repricing.triggers.POLL_EVERY; the poll sizes its budget to this period).
POLL_EVERY = timedelta(minutes=5)


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

        register_periodic(
            "repricing.sweep_notifications", "repricing.sweep_notifications", NOTIFICATIONS_SWEEP_EVERY
        )
        register_periodic("repricing.poll", "repricing.poll", POLL_EVERY)
