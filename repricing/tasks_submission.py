"""Thin Celery tasks that send prices to Amazon and follow them up (the work is in repricing/submission.py).

- `repricing.send_submissions`: enqueued by the pipeline after it queues submissions; also every
  `SEND_SWEEP_EVERY` as a sweep (a lost wake-up must not strand a queued price), and again
  `THROTTLE_RETRY_SECONDS` after a run that left rows queued because Amazon's quota was used up.
- `repricing.follow_up_submissions`: `FOLLOW_UP_DELAY_SECONDS` after a run that sent something, and every
  `FOLLOW_UP_EVERY`.

Both are non-atomic: each claim commits before its request leaves (that is what makes a price reach
Amazon at most once), and each outcome commits as it is learnt. Registered in `RepricingConfig.ready`,
which also imports this module (Celery's autodiscovery only imports `repricing/tasks.py`).
"""

from __future__ import annotations

from datetime import timedelta

from config.celery import app
from repricing import submission
from tenants.context import require_tenant
from tenants.jobs import TenantTask

SEND_SWEEP_EVERY = timedelta(minutes=5)
FOLLOW_UP_EVERY = timedelta(minutes=2)
#: Amazon applies an accepted price within minutes; the first look comes soon after the send.
FOLLOW_UP_DELAY_SECONDS = 60
THROTTLE_RETRY_SECONDS = 30
#: A send run is bounded by the rows' HTTP calls (retry budget 60 s each at worst), far below this;
#: REPRICING_SENDING_STALE_SECONDS (10 min) must stay above the hard limit.
SEND_SOFT_TIME_LIMIT = 4 * 60
SEND_TIME_LIMIT = SEND_SOFT_TIME_LIMIT + 60


class SubmissionTask(TenantTask):
    abstract = True
    atomic = False


@app.task(
    base=SubmissionTask,
    name="repricing.send_submissions",
    ignore_result=True,
    soft_time_limit=SEND_SOFT_TIME_LIMIT,
    time_limit=SEND_TIME_LIMIT,
)
def send_submissions_task() -> dict[str, int]:
    counts = submission.send_submissions()
    tenant_id = require_tenant().pk
    if counts.get("sent"):
        follow_up_submissions_task.apply_async(
            kwargs={"tenant_id": tenant_id}, countdown=FOLLOW_UP_DELAY_SECONDS
        )
    if counts.get("deferred"):
        send_submissions_task.apply_async(kwargs={"tenant_id": tenant_id}, countdown=THROTTLE_RETRY_SECONDS)
    return counts


@app.task(
    base=SubmissionTask,
    name="repricing.follow_up_submissions",
    ignore_result=True,
    soft_time_limit=SEND_SOFT_TIME_LIMIT,
    time_limit=SEND_TIME_LIMIT,
)
def follow_up_submissions_task() -> dict[str, int]:
    return submission.follow_up_submissions()
