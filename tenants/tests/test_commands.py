from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tenants.context import tenant_context
from tests.factories import make_tenant
from tests.isolation_rows import ROW_MAKERS

pytestmark = pytest.mark.django_db


def test_tenant_command_sees_only_that_tenants_rows() -> None:
    a, b = make_tenant(slug="alpha"), make_tenant(slug="bravo")
    for tenant, kind in ((a, "alpha.sync"), (b, "bravo.sync")):
        with tenant_context(tenant):
            ROW_MAKERS["tenants.jobrun"](tenant, kind)
    out = StringIO()
    call_command("job_runs", "--tenant", "alpha", stdout=out)
    assert "alpha.sync" in out.getvalue()
    assert "bravo.sync" not in out.getvalue()


def test_tenant_command_refuses_unknown_tenant() -> None:
    with pytest.raises(CommandError, match="No company"):
        call_command("job_runs", "--tenant", "nope")


def test_tenant_command_requires_a_tenant() -> None:
    with pytest.raises(CommandError):
        call_command("job_runs")
