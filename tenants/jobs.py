"""The job framework: a tenant-aware base task, enqueue-on-commit, the per-minute dispatcher's
registry, and JobRun recording.

Tasks carry ids, never secrets. `TenantTask` enters the tenant context (both locks) around the task
body, inside one transaction; a task without a tenant fails closed before it touches anything.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Task
from django.db import transaction
from django.utils import timezone

from tenants.context import TenantContextMissing, require_tenant, tenant_context
from tenants.models import JobRun, Tenant

logger = logging.getLogger(__name__)

_SECRET_ARGUMENT = re.compile(r"secret|password|token|refresh|credential|api_key", re.IGNORECASE)
_ALLOWED_TYPES = (int, str, bool, float, type(None))


class TenantTask(Task):
    """Base for every per-tenant task. Call with `tenant_id=<Tenant.pk>`; use `enqueue()` to send."""

    abstract = True
    #: Celery's own argument check (`typing`) would compare `tenant_id` against `run()`'s signature,
    #: which never has it (`__call__` takes it off). `apply_async` below checks the rest instead.
    typing = False
    #: Run the whole body in one transaction (the default: nothing half-written). Long jobs that commit
    #: per batch set this to False and open `tenant_context(require_tenant())` per batch themselves.
    atomic = True

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:  # type: ignore[override]
        # Every way of sending (delay, apply_async, enqueue) passes here: ids only, never secrets.
        if args:
            raise TypeError(f"Send {self.name} with keyword arguments (ids), not positional ones.")
        check_task_arguments(dict(kwargs or {}))
        header = getattr(self, "__header__", None)
        if header is not None:  # function-based task: the arguments `run()` will get must fit it
            header(**{k: v for k, v in (kwargs or {}).items() if k != "tenant_id"})
        return super().apply_async(args=args, kwargs=kwargs, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tenant_id = kwargs.pop("tenant_id", None)
        if tenant_id is None:
            raise TenantContextMissing(f"Task {self.name} was called without a tenant_id.")
        tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
        if tenant is None:
            logger.warning("task %s skipped: tenant %s is gone or inactive", self.name, tenant_id)
            return None
        if self.atomic:
            try:
                with tenant_context(tenant):
                    return self.run(*args, **kwargs)
            except Exception as error:
                # The work rolled back, and the run's row with it; the seller still sees the failure.
                failure = getattr(error, "failed_job_run", None)
                if failure is not None:
                    with tenant_context(tenant):
                        JobRun.objects.create(**failure)
                raise
        from tenants import context

        token = context._current.set(tenant)
        try:
            return self.run(*args, **kwargs)
        finally:
            context._current.reset(token)


def check_task_arguments(kwargs: dict[str, Any]) -> None:
    """Task arguments are ids and flags. Refuse anything that looks like a secret or an object."""
    for name, value in kwargs.items():
        if _SECRET_ARGUMENT.search(name) and not name.endswith("_id"):
            raise ValueError(f"Task argument {name!r} looks like a secret; pass an id instead.")
        if not isinstance(value, _ALLOWED_TYPES):
            raise TypeError(f"Task argument {name!r} must be an id or a flag, not {type(value).__name__}.")


def enqueue(task: Task, *, tenant: Tenant, **kwargs: Any) -> None:
    """Send `task` for `tenant` once the current transaction commits (at once outside one)."""
    check_task_arguments(kwargs)
    transaction.on_commit(lambda: task.apply_async(kwargs={"tenant_id": tenant.pk, **kwargs}))


# --- Periodic per-tenant work ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodicJob:
    kind: str
    task_name: str
    every: timedelta
    kwargs: dict[str, Any] = field(default_factory=dict)


PERIODIC_JOBS: dict[str, PeriodicJob] = {}


def register_periodic(kind: str, task_name: str, every: timedelta, **kwargs: Any) -> None:
    """Apps call this from AppConfig.ready(); the dispatcher fans the job out to every active tenant."""
    check_task_arguments(kwargs)
    PERIODIC_JOBS[kind] = PeriodicJob(kind, task_name, every, kwargs)


def is_due(job: PeriodicJob, minute: int) -> bool:
    step = max(1, int(job.every.total_seconds() // 60))
    return minute % step == 0


DISPATCH_BATCH_SIZE = 500


def dispatch_due_work(send: Callable[[str, dict[str, Any]], None], now: Any = None) -> int:
    """Fan every due periodic job out to every active tenant. Returns the number of tasks sent."""
    now = now or timezone.now()
    minute = now.hour * 60 + now.minute
    due = [job for job in PERIODIC_JOBS.values() if is_due(job, minute)]
    if not due:
        return 0
    sent = 0
    tenant_ids = Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    for tenant_id in tenant_ids.iterator(chunk_size=DISPATCH_BATCH_SIZE):
        for job in due:
            send(job.task_name, {"tenant_id": tenant_id, **job.kwargs})
            sent += 1
    return sent


# --- JobRun ---------------------------------------------------------------------------------------------

STALE_RUN_ERROR = "The worker running this stopped before it finished (it was restarted or killed)."


def job_runs_reap_stale(*, now: Any = None) -> int:
    """Mark the current tenant's runs that are still "running" long after every task time limit as
    failed. Returns how many. A run's own worker can no longer finish it, so nothing else would."""
    from django.conf import settings

    require_tenant()
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_RUN_STALE_AFTER_SECONDS)
    return JobRun.objects.filter(outcome=JobRun.Outcome.RUNNING, started_at__lt=cutoff).update(
        outcome=JobRun.Outcome.FAILED, finished_at=now, error=STALE_RUN_ERROR, updated_at=now
    )


class RunRecorder:
    def __init__(self, run: JobRun, write: Callable[[Callable[[], object]], None] | None = None) -> None:
        self.run = run
        self._write = write or (lambda fn: fn())

    def progress(self, done: int, total: int | None = None) -> None:
        self.run.progress_done = done
        if total is not None:
            self.run.progress_total = total
        # Through job_run's writer: outside a transaction the tenant must be set for RLS to see the row.
        self._write(lambda: self.run.save(update_fields=["progress_done", "progress_total", "updated_at"]))

    def count(self, name: str, amount: int = 1) -> None:
        self.run.counts[name] = self.run.counts.get(name, 0) + amount


@contextlib.contextmanager
def job_run(kind: str, *, triggered_by: str = "schedule") -> Iterator[RunRecorder]:
    """Record a run of `kind` for the current tenant: running → succeeded/failed, with counts.

    Outside a transaction (a non-atomic task) each write commits at once, so sellers see the run and
    its progress while it works; inside one, the run is written with the work, all or nothing.
    """
    tenant = require_tenant()

    def write(fn: Callable[[], object]) -> None:
        if transaction.get_connection().in_atomic_block:
            fn()
        else:
            with tenant_context(tenant):
                fn()

    holder: dict[str, JobRun] = {}
    write(
        lambda: holder.setdefault(
            "run", JobRun.objects.create(kind=kind, started_at=timezone.now(), triggered_by=triggered_by)
        )
    )
    recorder = RunRecorder(holder["run"], write)
    try:
        yield recorder
    except Exception as error:
        run = recorder.run
        run.outcome = JobRun.Outcome.FAILED
        run.error = f"{type(error).__name__}: {error}"[:2000]
        run.finished_at = timezone.now()
        if transaction.get_connection().in_atomic_block:
            # The surrounding transaction rolls back with this run's row; TenantTask writes the
            # failure again afterwards from this record (nothing of the work itself is kept).
            error.failed_job_run = {  # type: ignore[attr-defined]
                "kind": run.kind,
                "triggered_by": run.triggered_by,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "outcome": run.outcome,
                "error": run.error,
                "counts": {},
                "progress_total": run.progress_total,
            }
            raise
        write(lambda: run.save())
        raise
    run = recorder.run
    run.outcome = JobRun.Outcome.SUCCEEDED
    run.finished_at = timezone.now()
    write(lambda: run.save())
