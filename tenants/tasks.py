"""Platform tasks: the per-minute dispatcher that beat ticks."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from config.celery import app
from tenants.jobs import dispatch_due_work


def _send(task_name: str, kwargs: dict[str, Any]) -> None:
    app.send_task(task_name, kwargs=kwargs)


@shared_task(name="tenants.dispatch", ignore_result=True)
def dispatch() -> int:
    """Beat ticks this once a minute; it finds due per-tenant work and fans it out."""
    return dispatch_due_work(_send)
