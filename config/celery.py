"""The Celery app: JSON only, acks late, time limits, one queue per kind of work."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("sellerpilot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("default", "sync", "repricing", "ads", "reports")]
app.conf.task_routes = {
    "amazon.*": {"queue": "sync"},
    "inventory.*": {"queue": "sync"},
    "repricing.*": {"queue": "repricing"},
    "advertising.*": {"queue": "ads"},
    "reports.*": {"queue": "reports"},
}
app.autodiscover_tasks()
