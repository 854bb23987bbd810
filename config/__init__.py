"""Project configuration: settings, URLs, WSGI, the Celery app and the embedded services launcher."""

from config.celery import app as celery_app

__all__ = ["celery_app"]
