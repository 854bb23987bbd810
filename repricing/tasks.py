"""Thin Celery tasks for the repricing runs (ids in, the work in repricing/triggers.py).

They run on the "repricing" queue (config/celery.py routes repricing.*), non-atomic: each batch of
decisions commits in its own transaction (all of a batch or none of it), and an offers refresh commits
per Amazon call, so a killed worker loses at most the batch in flight, which the next run redoes.

- `repricing.consume_notifications`: woken by the notifications intake within seconds.
- `repricing.sweep_notifications`: every minute (registered in `RepricingConfig.ready`).
- `repricing.poll`: every `triggers.POLL_EVERY`.
- `repricing.reprice_now`: enqueued by `repricing.pipeline.reprice_now` (run_id, listing_ids as a
  comma-joined string of listing public ids: task arguments are scalars).
"""

from __future__ import annotations

from typing import Any

from config.celery import app
from repricing import triggers
from tenants.jobs import TenantTask

#: The poll may take its whole period (the shared token bucket can make it wait); the next is skipped.
POLL_SOFT_TIME_LIMIT = int(triggers.POLL_EVERY.total_seconds())
#: "Reprice now" of the largest selection: 50 batches at 0.5/s plus the decisions.
REPRICE_NOW_SOFT_TIME_LIMIT = 10 * 60


class RepricingTask(TenantTask):
    abstract = True
    atomic = False


@app.task(base=RepricingTask, name="repricing.consume_notifications", ignore_result=True)
def consume_notifications_task() -> dict[str, Any] | None:
    return triggers.notifications_consume()


@app.task(base=RepricingTask, name="repricing.sweep_notifications", ignore_result=True)
def sweep_notifications_task() -> dict[str, Any] | None:
    return triggers.notifications_sweep()


@app.task(
    base=RepricingTask,
    name="repricing.poll",
    ignore_result=True,
    soft_time_limit=POLL_SOFT_TIME_LIMIT,
    time_limit=POLL_SOFT_TIME_LIMIT + 60,
)
def poll_task() -> dict[str, Any] | None:
    return triggers.poll()


@app.task(
    base=RepricingTask,
    name="repricing.reprice_now",
    ignore_result=True,
    soft_time_limit=REPRICE_NOW_SOFT_TIME_LIMIT,
    time_limit=REPRICE_NOW_SOFT_TIME_LIMIT + 60,
)
def reprice_now_task(*, run_id: str, listing_ids: str) -> dict[str, Any] | None:
    return triggers.reprice_now_run(run_id=run_id, listing_ids=listing_ids.split(","))
