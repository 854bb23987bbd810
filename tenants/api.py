"""REST API for what every tenant has: its audit log and its automation runs (read only).

Both are tenant-owned tables: the scoped manager filters by the tenant the credentials activated, and
row-level security does the same in PostgreSQL; the queries below also name the tenant explicitly.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers

from accounts.permissions import auth_context
from accounts.roles import Permission
from config.api import CursorPagination, InputSerializer, StrictCharField, error_responses, parse_query
from tenants.models import AuditEvent, JobRun, Tenant

# --- Reads (selectors) ----------------------------------------------------------------------------------


def audit_events_of_tenant(tenant: Tenant, *, action: str | None = None, since: Any = None) -> Any:
    events = AuditEvent.objects.filter(tenant=tenant).select_related("actor", "api_key")
    if action:
        events = events.filter(action__in=[a.strip() for a in action.split(",") if a.strip()])
    if since is not None:
        events = events.filter(created_at__gte=since)
    return events


def job_runs_of_tenant(tenant: Tenant, *, kind: str | None = None, outcome: str | None = None) -> Any:
    runs = JobRun.objects.filter(tenant=tenant)
    if kind:
        runs = runs.filter(kind=kind)
    if outcome:
        runs = runs.filter(outcome=outcome)
    return runs


# --- Serializers ----------------------------------------------------------------------------------------


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.UUIDField(
        source="actor.public_id",
        allow_null=True,
        default=None,
        help_text="public_id of the person who acted (null for an API key or "
        "the system, or if the person was deleted).",
    )
    api_key = serializers.UUIDField(
        source="api_key.public_id",
        allow_null=True,
        default=None,
        help_text="public_id of the API key that acted, if one did.",
    )

    class Meta:
        model = AuditEvent
        fields = (
            "public_id",
            "created_at",
            "action",
            "actor",
            "actor_label",
            "api_key",
            "target_type",
            "target_id",
            "target_label",
            "changes",
            "ip_address",
            "user_agent",
        )
        read_only_fields = fields


class AuditEventFilterSerializer(InputSerializer):
    action = StrictCharField(
        required=False,
        max_length=500,
        help_text="Only these actions (comma-separated), e.g. member.invite,member.remove",
    )
    since = serializers.DateTimeField(
        required=False, help_text="Only events at or after this time (ISO 8601)."
    )


class JobRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobRun
        fields = (
            "public_id",
            "kind",
            "outcome",
            "started_at",
            "finished_at",
            "progress_done",
            "progress_total",
            "counts",
            "error",
            "triggered_by",
        )
        read_only_fields = fields


class JobRunFilterSerializer(InputSerializer):
    kind = StrictCharField(required=False, max_length=100)
    outcome = serializers.ChoiceField(choices=JobRun.Outcome.choices, required=False)


# --- Views ----------------------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        operation_id="audit_events_list",
        parameters=[AuditEventFilterSerializer],
        responses={200: AuditEventSerializer(many=True), **error_responses(400, 403, 404)},
        tags=["audit log"],
        description="Every change made in the company, newest first.",
    )
)
class AuditEventListView(generics.ListAPIView):
    required_permissions = {"GET": Permission.VIEW_AUDIT_LOG}
    serializer_class = AuditEventSerializer

    def get_queryset(self) -> Any:
        filters = parse_query(self.request, AuditEventFilterSerializer)
        return audit_events_of_tenant(auth_context(self.request).tenant, **filters)


class JobRunPagination(CursorPagination):
    ordering = ("-started_at", "-id")


@extend_schema_view(
    get=extend_schema(
        operation_id="job_runs_list",
        parameters=[JobRunFilterSerializer],
        responses={200: JobRunSerializer(many=True), **error_responses(400, 403, 404)},
        tags=["automation"],
        description="Runs of the company's jobs (syncs, repricing cycles, exports...), newest first.",
    )
)
class JobRunListView(generics.ListAPIView):
    required_permissions = {"GET": Permission.VIEW_DASHBOARD}
    serializer_class = JobRunSerializer
    pagination_class = JobRunPagination

    def get_queryset(self) -> Any:
        filters = parse_query(self.request, JobRunFilterSerializer)
        return job_runs_of_tenant(auth_context(self.request).tenant, **filters)
