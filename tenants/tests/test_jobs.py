"""The job framework: tenant-aware tasks (both locks), fail-closed without a tenant, task arguments,
enqueue on commit, the dispatcher's fan-out, and JobRun recording.

Real PostgreSQL (as the runtime role, under RLS) and the real Redis broker from settings; the worker
test runs a real Celery worker in a thread.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from config.celery import app
from tenants import jobs
from tenants.context import TenantContextMissing, current_tenant, tenant_context
from tenants.jobs import (
    TenantTask,
    check_task_arguments,
    dispatch_due_work,
    enqueue,
    job_run,
    register_periodic,
)
from tenants.models import JobRun, Tenant
from tests.factories import make_tenant

# --- test-only tasks ------------------------------------------------------------------------------------

#: What the probe tasks saw, by probe id (the worker thread runs in this process).
SEEN: dict[str, dict[str, Any]] = {}
DONE: dict[str, threading.Event] = {}


def _make_run(tenant: Tenant, kind: str) -> JobRun:
    with tenant_context(tenant):
        return JobRun.objects.create(kind=kind, started_at=timezone.now())


def _what_this_task_sees(other_tenant_id: int) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT kind FROM tenants_jobrun ORDER BY kind")
        raw_kinds = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT count(*) FROM tenants_jobrun WHERE tenant_id = %s", [other_tenant_id])
        raw_other = cursor.fetchone()[0]
    write_refused = False
    try:
        with transaction.atomic():  # savepoint: the refused write must not break the task's transaction
            JobRun.all_tenants.create(tenant_id=other_tenant_id, kind="smuggled", started_at=timezone.now())
    except DatabaseError:
        write_refused = True
    tenant = current_tenant()
    return {
        "tenant_id": tenant.pk if tenant else None,
        "manager": sorted(JobRun.objects.values_list("kind", flat=True)),
        # The escape hatch skips the application filter; the database still shows one tenant only.
        "escape_hatch": sorted(JobRun.all_tenants.values_list("kind", flat=True)),
        "raw_sql": raw_kinds,
        "raw_other_tenant": raw_other,
        "write_to_other_refused": write_refused,
    }


@app.task(base=TenantTask, name="tests.jobs.probe", ignore_result=True)
def probe_task(*, other_tenant_id: int, probe: str) -> None:
    try:
        SEEN[probe] = _what_this_task_sees(other_tenant_id)
    finally:
        DONE.setdefault(probe, threading.Event()).set()


@app.task(base=TenantTask, name="tests.jobs.read_visible")
def read_visible(*, other_tenant_id: int) -> dict[str, Any]:
    return _what_this_task_sees(other_tenant_id)


BODY_RAN: list[str] = []


@app.task(base=TenantTask, name="tests.jobs.write_run")
def write_run(*, kind: str = "should.not.exist") -> int:
    BODY_RAN.append(kind)
    return JobRun.objects.create(kind=kind, started_at=timezone.now()).pk


@app.task(base=TenantTask, name="tests.jobs.batches")
def recorded_batches(*, fail_after: int = -1) -> None:
    with job_run("tests.batches", triggered_by="test") as run:
        for batch in range(3):
            if batch == fail_after:
                raise RuntimeError("Amazon said no")
            run.count("items", 10)
            run.progress(batch + 1, 3)


class NonAtomicBatches(TenantTask):
    atomic = False


@app.task(base=NonAtomicBatches, name="tests.jobs.batches_non_atomic")
def recorded_batches_non_atomic(*, fail_after: int = -1) -> None:
    recorded_batches.run(fail_after=fail_after)


def _runs(tenant: Tenant) -> list[JobRun]:
    with tenant_context(tenant):
        return list(JobRun.objects.order_by("id"))


def _expected_view(a: Tenant) -> dict[str, Any]:
    return {
        "tenant_id": a.pk,
        "manager": ["a.one", "a.two"],
        "escape_hatch": ["a.one", "a.two"],
        "raw_sql": ["a.one", "a.two"],
        "raw_other_tenant": 0,
        "write_to_other_refused": True,
    }


@pytest.fixture
def two_tenants() -> tuple[Tenant, Tenant]:
    a, b = make_tenant(slug=f"a-{uuid.uuid4().hex[:8]}"), make_tenant(slug=f"b-{uuid.uuid4().hex[:8]}")
    _make_run(a, "a.one")
    _make_run(a, "a.two")
    _make_run(b, "b.one")
    return a, b


# --- isolation inside tasks -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_task_for_tenant_a_sees_only_a_rows_when_applied(two_tenants: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants
    result = read_visible.apply(kwargs={"tenant_id": a.pk, "other_tenant_id": b.pk})
    assert result.successful(), result.traceback
    assert result.result == _expected_view(a)
    # B's rows are untouched and nothing was smuggled in.
    assert [run.kind for run in _runs(b)] == ["b.one"]


@pytest.mark.django_db(transaction=True)
def test_task_for_tenant_a_sees_only_a_rows_in_a_real_worker(two_tenants: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants
    probe = uuid.uuid4().hex
    DONE[probe] = threading.Event()

    def close_worker_connections(**_: Any) -> None:
        # The worker thread has its own connections; close them so the test database can be dropped.
        connections.close_all()

    task_postrun.connect(close_worker_connections, weak=False)
    try:
        with start_worker(
            app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30
        ):
            # Through the broker, exactly as the product sends it (JSON, ids only).
            enqueue(probe_task, tenant=a, other_tenant_id=b.pk, probe=probe)
            assert DONE[probe].wait(timeout=30), "the worker did not run the task"
    finally:
        task_postrun.disconnect(close_worker_connections)
    assert SEEN.pop(probe) == _expected_view(a)
    assert [run.kind for run in _runs(b)] == ["b.one"]


# --- fail closed ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_task_without_tenant_fails_closed_and_touches_nothing(two_tenants: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants
    BODY_RAN.clear()
    result = write_run.apply(kwargs={"kind": "no.tenant"})
    assert result.failed()
    assert isinstance(result.result, TenantContextMissing)
    with pytest.raises(TenantContextMissing):
        write_run.apply(kwargs={"kind": "no.tenant"}, throw=True)
    assert BODY_RAN == []
    assert "no.tenant" not in [run.kind for run in _runs(a) + _runs(b)]
    with connection.cursor() as cursor:  # and the database, as the runtime role, agrees
        cursor.execute("SELECT count(*) FROM tenants_jobrun")
        assert cursor.fetchone()[0] == 0  # no tenant set: zero rows visible, whatever exists


@pytest.mark.django_db
def test_task_with_tenant_id_none_fails_closed() -> None:
    BODY_RAN.clear()
    with pytest.raises(TenantContextMissing):
        write_run.apply(kwargs={"tenant_id": None}, throw=True)
    assert BODY_RAN == []


@pytest.mark.django_db
def test_task_for_inactive_tenant_is_skipped() -> None:
    tenant = make_tenant(is_active=False)
    BODY_RAN.clear()
    result = write_run.apply(kwargs={"tenant_id": tenant.pk, "kind": "inactive"})
    assert result.successful()
    assert result.result is None
    assert BODY_RAN == []
    assert _runs(tenant) == []


@pytest.mark.django_db
def test_task_leaves_no_tenant_behind(two_tenants: tuple[Tenant, Tenant]) -> None:
    a, b = two_tenants
    read_visible.apply(kwargs={"tenant_id": a.pk, "other_tenant_id": b.pk})
    assert current_tenant() is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.tenant_id', true)")
        assert cursor.fetchone()[0] in (None, "")


# --- task arguments -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["password", "refresh_token", "client_secret", "lwa_client_secret", "api_key", "credentials", "Token"],
)
def test_check_task_arguments_refuses_secret_looking_names(name: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        check_task_arguments({name: "x"})


@pytest.mark.parametrize(
    "value",
    [Decimal("1.5"), {"nested": 1}, [1, 2], datetime(2025, 1, 1, tzinfo=UTC), b"bytes", object()],
)
def test_check_task_arguments_refuses_objects(value: object) -> None:
    with pytest.raises(TypeError):
        check_task_arguments({"thing": value})


@pytest.mark.django_db
def test_check_task_arguments_refuses_model_instances() -> None:
    with pytest.raises(TypeError, match="Tenant"):
        check_task_arguments({"tenant": make_tenant()})


def test_check_task_arguments_accepts_ids_and_flags() -> None:
    check_task_arguments({"connection_id": 3, "sku": "ABC-1", "dry_run": True, "ratio": 0.5, "cursor": None})


@pytest.mark.django_db
def test_enqueue_refuses_secrets_before_anything_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(write_run, "apply_async", lambda **kw: sent.append(kw))
    tenant = make_tenant()
    with pytest.raises(ValueError):
        enqueue(write_run, tenant=tenant, refresh_token="Atzr|abc")
    with pytest.raises(TypeError):
        enqueue(write_run, tenant=tenant, connection=tenant)
    assert sent == []


def test_register_periodic_refuses_secret_arguments() -> None:
    with pytest.raises(ValueError):
        register_periodic("tests.bad", "tests.jobs.write_run", timedelta(minutes=5), client_secret="x")


# --- enqueue on commit ----------------------------------------------------------------------------------


def _broker_messages(queue: str = "default") -> list[dict[str, Any]]:
    """The messages waiting in a queue of the real broker: task name and kwargs."""
    with app.connection_for_read() as conn:
        client = conn.default_channel.client  # type: ignore[attr-defined]  # kombu redis channel
        raw = client.lrange(queue, 0, -1)
    messages = []
    for item in raw:
        envelope = json.loads(item)
        body = envelope["body"]
        if envelope["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        _args, kwargs, _embed = json.loads(body)
        messages.append({"task": envelope["headers"]["task"], "kwargs": kwargs})
    return messages


@pytest.mark.django_db(transaction=True)
def test_enqueue_sends_only_after_commit() -> None:
    tenant = make_tenant()
    with transaction.atomic():
        enqueue(write_run, tenant=tenant, kind="after.commit")
        assert _broker_messages() == []
    assert _broker_messages() == [
        {"task": "tests.jobs.write_run", "kwargs": {"tenant_id": tenant.pk, "kind": "after.commit"}}
    ]


@pytest.mark.django_db(transaction=True)
def test_enqueue_never_sends_on_rollback() -> None:
    tenant = make_tenant()

    class BoomError(Exception):
        pass

    with pytest.raises(BoomError), transaction.atomic():
        enqueue(write_run, tenant=tenant, kind="rolled.back")
        raise BoomError
    with transaction.atomic():
        enqueue(write_run, tenant=tenant, kind="savepoint")
        try:
            with transaction.atomic():  # a rolled-back savepoint drops its callbacks too
                enqueue(write_run, tenant=tenant, kind="rolled.back.savepoint")
                raise BoomError
        except BoomError:
            pass
    kinds = [message["kwargs"]["kind"] for message in _broker_messages()]
    assert kinds == ["savepoint"]


# --- dispatcher -----------------------------------------------------------------------------------------


@pytest.fixture
def periodic_jobs(monkeypatch: pytest.MonkeyPatch) -> dict[str, jobs.PeriodicJob]:
    registry: dict[str, jobs.PeriodicJob] = {}
    monkeypatch.setattr(jobs, "PERIODIC_JOBS", registry)
    return registry


@pytest.mark.django_db
def test_dispatcher_fans_out_to_every_active_tenant_and_skips_inactive(
    periodic_jobs: dict[str, jobs.PeriodicJob],
) -> None:
    register_periodic("sync", "amazon.sync_orders", timedelta(minutes=5), full=False)
    register_periodic("reprice", "repricing.cycle", timedelta(minutes=1))
    register_periodic("daily", "reports.rollup", timedelta(hours=24))
    active = [make_tenant(), make_tenant(), make_tenant()]
    inactive = make_tenant(is_active=False)
    sent: list[tuple[str, dict[str, Any]]] = []

    count = dispatch_due_work(
        lambda name, kwargs: sent.append((name, kwargs)), now=datetime(2025, 3, 1, 10, 15, tzinfo=UTC)
    )

    assert count == len(sent)
    by_task: dict[str, set[int]] = {}
    for name, kwargs in sent:
        by_task.setdefault(name, set()).add(kwargs["tenant_id"])
    mine = {tenant.pk for tenant in active}
    assert by_task["amazon.sync_orders"] >= mine
    assert by_task["repricing.cycle"] >= mine
    assert "reports.rollup" not in by_task  # not due at 10:15
    assert all(inactive.pk not in ids for ids in by_task.values())
    assert ("amazon.sync_orders", {"tenant_id": active[0].pk, "full": False}) in sent
    # Every task is sent once per tenant per tick.
    assert len(sent) == len({(name, kwargs["tenant_id"]) for name, kwargs in sent})


@pytest.mark.django_db
def test_dispatcher_sends_nothing_when_nothing_is_due(periodic_jobs: dict[str, jobs.PeriodicJob]) -> None:
    register_periodic("hourly", "reports.hourly", timedelta(hours=1))
    make_tenant()
    sent: list[Any] = []
    assert dispatch_due_work(lambda *a: sent.append(a), now=datetime(2025, 3, 1, 10, 7, tzinfo=UTC)) == 0
    assert sent == []
    assert dispatch_due_work(lambda *a: sent.append(a), now=datetime(2025, 3, 1, 11, 0, tzinfo=UTC)) >= 1


@pytest.mark.django_db
def test_beat_dispatch_task_puts_per_tenant_tasks_on_their_queues(
    periodic_jobs: dict[str, jobs.PeriodicJob],
) -> None:
    from tenants.tasks import dispatch

    register_periodic("reprice", "repricing.cycle", timedelta(minutes=1))
    tenants = [make_tenant(), make_tenant()]
    make_tenant(is_active=False)
    dispatch.apply()
    messages = _broker_messages("repricing")
    assert {m["task"] for m in messages} == {"repricing.cycle"}
    assert {m["kwargs"]["tenant_id"] for m in messages} >= {t.pk for t in tenants}
    assert len(messages) == Tenant.objects.filter(is_active=True).count()


# --- JobRun recording -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_job_run_records_success_with_counts_and_progress() -> None:
    tenant = make_tenant()
    result = recorded_batches.apply(kwargs={"tenant_id": tenant.pk})
    assert result.successful(), result.traceback
    [run] = _runs(tenant)
    assert run.kind == "tests.batches"
    assert run.triggered_by == "test"
    assert run.outcome == JobRun.Outcome.SUCCEEDED
    assert run.counts == {"items": 30}
    assert (run.progress_done, run.progress_total) == (3, 3)
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert run.error == ""


@pytest.mark.django_db(transaction=True)
def test_job_run_records_failure_of_a_batched_task() -> None:
    tenant = make_tenant()
    result = recorded_batches_non_atomic.apply(kwargs={"tenant_id": tenant.pk, "fail_after": 2})
    assert result.failed()
    [run] = _runs(tenant)
    assert run.outcome == JobRun.Outcome.FAILED
    assert run.error == "RuntimeError: Amazon said no"
    assert (run.progress_done, run.progress_total) == (2, 3)  # progress was committed as it went
    assert run.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_job_run_in_an_atomic_task_that_fails_keeps_no_work_but_shows_the_failure() -> None:
    tenant = make_tenant()
    result = recorded_batches.apply(kwargs={"tenant_id": tenant.pk, "fail_after": 1})
    assert result.failed()
    [run] = _runs(tenant)  # the work rolled back; the failed run was written again afterwards
    assert run.outcome == JobRun.Outcome.FAILED
    assert run.error == "RuntimeError: Amazon said no"
    assert run.counts == {} and run.progress_done == 0  # nothing of the rolled-back work is claimed
    assert run.finished_at is not None


def test_job_run_requires_a_tenant() -> None:
    with pytest.raises(TenantContextMissing), job_run("no.tenant"):
        pass


def test_sending_checks_the_task_signature_without_tenant_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from celery import Task

    sent: list[Any] = []
    monkeypatch.setattr(Task, "apply_async", lambda self, *a, **kw: sent.append(kw))
    write_run.apply_async(kwargs={"tenant_id": 1, "kind": "ok"})  # tenant_id is not run()'s argument
    with pytest.raises(TypeError):
        write_run.apply_async(kwargs={"tenant_id": 1, "no_such_argument": 1})
    with pytest.raises(TypeError):
        write_run.apply_async(args=(1,), kwargs={"tenant_id": 1})
    assert sent == [{"args": None, "kwargs": {"tenant_id": 1, "kind": "ok"}}]


# --- Runs whose worker died -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_runs_left_running_by_a_dead_worker_are_shown_as_failed() -> None:
    from datetime import timedelta

    from tenants.jobs import STALE_RUN_ERROR
    from tenants.tasks import reap_stale_runs

    a, b = make_tenant(), make_tenant()
    now = timezone.now()
    with tenant_context(a):
        stale = JobRun.objects.create(kind="sync", started_at=now - timedelta(hours=3))
        fresh = JobRun.objects.create(kind="sync", started_at=now - timedelta(minutes=5))
        done = JobRun.objects.create(
            kind="sync", started_at=now - timedelta(hours=5), outcome=JobRun.Outcome.SUCCEEDED
        )
    with tenant_context(b):
        other = JobRun.objects.create(kind="sync", started_at=now - timedelta(hours=3))
    assert reap_stale_runs.apply(kwargs={"tenant_id": a.pk}).get() == 1
    with tenant_context(a):
        stale.refresh_from_db()
        fresh.refresh_from_db()
        done.refresh_from_db()
        assert (stale.outcome, stale.error) == (JobRun.Outcome.FAILED, STALE_RUN_ERROR)
        assert stale.finished_at is not None
        assert fresh.outcome == JobRun.Outcome.RUNNING
        assert done.outcome == JobRun.Outcome.SUCCEEDED
    with tenant_context(b):
        other.refresh_from_db()
        assert other.outcome == JobRun.Outcome.RUNNING  # another tenant's runs are its own task's work
    assert jobs.PERIODIC_JOBS["tenants.reap_stale_runs"].task_name == "tenants.reap_stale_runs"
