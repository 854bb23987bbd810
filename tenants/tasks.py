"""Platform tasks: the per-minute dispatcher that beat ticks, and the per-tenant clean-up of runs whose
worker died."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from config.celery import app
from tenants.jobs import TenantTask, dispatch_due_work, job_runs_reap_stale


def _send(task_name: str, kwargs: dict[str, Any]) -> None:
    app.send_task(task_name, kwargs=kwargs)


@shared_task(name="tenants.dispatch", ignore_result=True)
def dispatch() -> int:
    """Beat ticks this once a minute; it finds due per-tenant work and fans it out."""
    return dispatch_due_work(_send)


@app.task(base=TenantTask, name="tenants.reap_stale_runs", ignore_result=True)
def reap_stale_runs() -> int:
    """Periodic, per tenant: runs left "running" by a worker that died are shown as failed."""
    return job_runs_reap_stale()
