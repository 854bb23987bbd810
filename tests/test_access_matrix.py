"""The access matrix: every API operation and dashboard page x every kind of visitor x whose object.

Visitors: anonymous; owner, admin, operator, analyst and viewer of company A; an admin of company B
(the outsider); platform staff who belong to no company. Objects: one of A's and one of B's.
Expected: a missing permission answers 403; another company's object answers 404 (never its data);
anonymous visitors get 401 (API) or a redirect to sign in (pages).

Meta-tests fail when a URL pattern or an OpenAPI operation is missing from MATRIX, so a new endpoint
or page cannot ship without its row here. Canary strings stored in company B never appear in any
response to company A (and the other way round).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Model
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import ApiKey, Invitation, Membership, User
from accounts.roles import Role
from accounts.services import api_key_create, invitation_create
from accounts.tokens import token_issue
from amazon.simulator.ads import DEMO_ADS_REFRESH_TOKEN
from amazon.simulator.market import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN, DEMO_SELLER_ID
from amazon.simulator.testing import start_simulator
from amazon.tests.data_factories import make_listing, make_order
from amazon.tests.factories import make_connection
from tenants.audit import audit_record
from tenants.context import tenant_context
from tenants.models import JobRun, Tenant
from tests.factories import make_member, make_tenant, make_user

ROLES = ("owner", "admin", "operator", "analyst", "viewer")
VISITORS = ("anonymous", *ROLES, "outsider", "staff")
EVERY_ROLE = frozenset(ROLES)
MANAGERS = frozenset({"owner", "admin"})
OWNERS = frozenset({"owner"})
WITH_MONEY = frozenset({"owner", "admin", "operator", "analyst"})
CHANGERS = frozenset({"owner", "admin", "operator"})  # change_automation


@dataclass
class World:
    a: Tenant
    b: Tenant
    users: dict[str, User]
    objects: dict[str, dict[str, Model]] = field(default_factory=dict)  # kind -> {"a": obj, "b": obj}


def build_world() -> World:
    a = make_tenant("Alpha Seller CANARY_A", slug="alpha")
    b = make_tenant("Bravo Seller CANARY_B", slug="bravo")
    users = {role: make_member(a, role, email=f"{role}@alpha.test") for role in ROLES}
    users["outsider"] = make_member(b, Role.ADMIN, email="admin-canary_b@bravo.test")
    users["staff"] = make_user(email="staff@platform.test", is_staff=True, is_superuser=True)
    world = World(a=a, b=b, users=users)
    b_owner = make_member(b, Role.OWNER, email="owner-canary_b@bravo.test")
    owners = {"a": users["owner"], "b": b_owner}
    for side, tenant in (("a", a), ("b", b)):
        canary = f"CANARY_{side.upper()}"
        target = make_member(tenant, Role.VIEWER, email=f"target-{canary.lower()}@{tenant.slug}.test")
        with tenant_context(tenant):
            invitation, _ = invitation_create(
                tenant=tenant,
                actor=owners[side],
                actor_role=Role.OWNER,
                email=f"invitee-{canary.lower()}@example.com",
                role=Role.VIEWER,
            )
            key, _ = api_key_create(
                tenant=tenant,
                actor=owners[side],
                actor_role=Role.OWNER,
                name=f"key {canary}",
                role=Role.VIEWER,
            )
            JobRun.objects.create(kind=f"sync {canary}", started_at=timezone.now())
            audit_record(actor=owners[side], action="test.canary", target_label=canary)
        world.objects.setdefault("membership", {})[side] = Membership.objects.get(user=target, tenant=tenant)
        world.objects.setdefault("invitation", {})[side] = invitation
        world.objects.setdefault("api_key", {})[side] = key
        world.objects.setdefault("connection", {})[side] = make_connection(
            tenant, name=f"Store {canary}", refresh_token=f"Atzr|secret-{canary.lower()}"
        )
        connection = world.objects["connection"][side]
        # An Ads grant must belong to the connection's own seller: the simulator's demo seller (EU).
        world.objects.setdefault("ads_connection", {})[side] = make_connection(
            tenant, name=f"Ads store {canary}", selling_partner_id=DEMO_SELLER_ID, region="EU"
        )
        listing = make_listing(connection, title=f"Widget {canary}")  # type: ignore[arg-type]
        world.objects.setdefault("listing", {})[side] = listing
        _repricing_objects(world, side, tenant, owners[side], listing, canary)
        _repricing_tool_objects(world, side, tenant, listing, canary)
        world.objects.setdefault("order", {})[side] = make_order(
            connection,  # type: ignore[arg-type]
            amazon_order_id=f"111-{canary}",
        )
    return world


def _repricing_objects(
    world: World, side: str, tenant: Tenant, owner: User, listing: Any, canary: str
) -> None:
    """A repricing rule, a tag rule, SKU pricing with a cost and a decision, each naming the canary."""
    from repricing.models import PriceDecision
    from repricing.services import rule_create, sku_pricing_update, tag_rule_set

    with tenant_context(tenant):
        rule = rule_create(
            name=f"Rule {canary}",
            config={"strategy": {"kind": "buy_box", "mode": "match"}},
            actor=owner,
            actor_role=Role.OWNER,
        )
        tag_rule = tag_rule_set(tag=f"tag-{canary.lower()}", rule=rule, actor=owner, actor_role=Role.OWNER)
        sku_pricing_update(
            listing=listing,
            values={"rule": rule, "cost": "7.77", "min_price": "5.00", "max_price": "50.00"},
            actor=owner,
            actor_role=Role.OWNER,
        )
        now = timezone.now()
        decision = PriceDecision.objects.create(
            listing=listing,
            rule=rule,
            rule_name=rule.name,
            rule_version=rule.version,
            trigger=PriceDecision.Trigger.SCHEDULE,
            action=PriceDecision.Action.HOLD,
            reason="no_change",
            currency="USD",
            old_price=listing.price,
            trace=[{"code": "price", "message": f"Already at the target {canary}", "data": {}}],
            observed_at=now,
            decided_at=now,
        )
    world.objects.setdefault("repricing_rule", {})[side] = rule
    world.objects.setdefault("tag_rule", {})[side] = tag_rule
    world.objects.setdefault("price_decision", {})[side] = decision


# --- The matrix -----------------------------------------------------------------------------------------

Body = Callable[[World], dict[str, Any]] | None


@dataclass(frozen=True)
class Rule:
    """Who may call one method of one route, and what they get."""

    allowed: frozenset[str]  # roles of the object's company that succeed
    ok: int  # the status of success
    body: Body = None  # JSON (API) or form data (pages) that succeeds
    obj: str | None = None  # the kind of object in the URL (None: no object)
    anonymous: int | None = None  # default: 401 for API, 302 for pages
    staff: int | None = None  # default: same as anonymous for the API; pages show "no company" (200)
    outsider: int | None = None  # default: computed (404 for an object of A; their own data otherwise)
    public: bool = False  # no sign-in needed: every visitor gets `ok`


def api(allowed: frozenset[str], ok: int = 200, body: Body = None, obj: str | None = None) -> Rule:
    return Rule(allowed=allowed, ok=ok, body=body, obj=obj)


def page(
    allowed: frozenset[str], ok: int = 200, body: Body = None, obj: str | None = None, staff: int | None = 200
) -> Rule:
    return Rule(allowed=allowed, ok=ok, body=body, obj=obj, staff=staff)


def public(ok: int = 200, body: Body = None) -> Rule:
    return Rule(allowed=EVERY_ROLE, ok=ok, body=body, public=True)


def own_app_body(world: World) -> dict[str, Any]:
    """The simulator's demo seller and app: verified against the simulator (SIMULATED below)."""
    return {
        "name": "Main account",
        "region": "NA",
        "selling_partner_id": DEMO_SELLER_ID,
        "lwa_client_id": DEMO_CLIENT_ID,
        "lwa_client_secret": DEMO_CLIENT_SECRET,
        "refresh_token": DEMO_REFRESH_TOKEN,
    }


MATRIX: dict[str, dict[str, Rule]] = {
    # Health and API schema
    "healthz": {"GET": public()},
    "readyz": {"GET": public()},
    "api:schema": {"GET": public()},
    "api:docs": {"GET": public()},
    # Amazon's notifications, machine to machine: no session, API key or CSRF token counts, only the
    # request's signature (amazon/notifications.py). Every visitor here sends an unsigned request: 401.
    "amazon_notifications": {"POST": public(401)},
    # REST API v1
    "api:me": {
        "GET": api(EVERY_ROLE),
        "PATCH": api(EVERY_ROLE, body=lambda w: {"theme": "dark"}),
    },
    "api:tenant": {
        "GET": api(EVERY_ROLE),
        "PATCH": api(OWNERS, body=lambda w: {"require_mfa": False}),
    },
    "api:member-list": {"GET": api(EVERY_ROLE)},
    "api:member-detail": {
        "PATCH": api(MANAGERS, body=lambda w: {"role": "analyst"}, obj="membership"),
        "DELETE": api(MANAGERS, ok=204, obj="membership"),
    },
    "api:invitation-list": {
        "GET": api(MANAGERS),
        "POST": api(MANAGERS, ok=201, body=lambda w: {"email": "new-person@example.com", "role": "viewer"}),
    },
    "api:invitation-detail": {"DELETE": api(MANAGERS, ok=204, obj="invitation")},
    "api:api-key-list": {
        "GET": api(MANAGERS),
        "POST": api(MANAGERS, ok=201, body=lambda w: {"name": "ERP", "role": "viewer"}),
    },
    "api:api-key-detail": {"DELETE": api(MANAGERS, ok=204, obj="api_key")},
    "api:audit-event-list": {"GET": api(MANAGERS)},
    "api:job-run-list": {"GET": api(EVERY_ROLE)},
    "api:connection-list": {
        "GET": api(EVERY_ROLE),
        "POST": api(MANAGERS, ok=201, body=own_app_body),
    },
    "api:connection-consent-url": {"POST": api(MANAGERS, body=lambda w: {"region": "EU"})},
    "api:connection-detail": {
        "GET": api(EVERY_ROLE, obj="connection"),
        "DELETE": api(MANAGERS, ok=204, obj="connection"),
    },
    "api:connection-ads": {
        "GET": api(EVERY_ROLE, obj="connection"),
        "POST": api(
            MANAGERS, obj="ads_connection", body=lambda w: {"ads_refresh_token": DEMO_ADS_REFRESH_TOKEN}
        ),
        "DELETE": api(MANAGERS, ok=204, obj="connection"),
    },
    "api:connection-ads-consent-url": {"POST": api(MANAGERS, obj="connection")},
    "api:listing-list": {"GET": api(EVERY_ROLE)},
    "api:order-list": {"GET": api(EVERY_ROLE)},
    "api:order-detail": {"GET": api(EVERY_ROLE, obj="order")},
    # Sign-in and account pages
    # Signed-in visitors are sent on to the dashboard.
    "accounts:login": {"GET": Rule(allowed=EVERY_ROLE, ok=302, anonymous=200, staff=302, outsider=302)},
    "accounts:logout": {"POST": Rule(allowed=EVERY_ROLE, ok=302, anonymous=302, staff=302)},
    "accounts:password_reset": {
        "GET": public(),
        "POST": public(302, body=lambda w: {"email": "x@example.com"}),
    },
    "accounts:password_reset_done": {"GET": public()},
    "accounts:password_reset_complete": {"GET": public()},
    "accounts:mfa_setup": {"GET": Rule(allowed=EVERY_ROLE, ok=200, staff=200)},
    "accounts:mfa_challenge": {"GET": Rule(allowed=EVERY_ROLE, ok=302, staff=302)},  # nothing to verify
    "accounts:session_token": {"POST": Rule(allowed=EVERY_ROLE, ok=200, anonymous=401, staff=403)},
    "accounts:tenant_switch": {
        "POST": Rule(
            allowed=EVERY_ROLE, ok=302, body=lambda w: {"tenant": str(w.a.public_id)}, staff=404, outsider=404
        ),
    },
    # Dashboard pages
    "dashboard:home": {"GET": page(EVERY_ROLE)},
    "dashboard:profile": {
        "GET": page(EVERY_ROLE),
        "POST": page(
            EVERY_ROLE,
            ok=302,
            staff=302,
            body=lambda w: {"full_name": "Pat", "theme": "dark", "density": "compact"},
        ),
    },
    "dashboard:members": {
        "GET": page(EVERY_ROLE),
        "POST": page(MANAGERS, ok=302, body=lambda w: {"email": "new-person@example.com", "role": "viewer"}),
    },
    "dashboard:member_role": {
        "POST": page(MANAGERS, ok=302, obj="membership", body=lambda w: {"role": "analyst"})
    },
    "dashboard:member_remove": {"POST": page(MANAGERS, ok=302, obj="membership")},
    "dashboard:invitation_revoke": {"POST": page(MANAGERS, ok=302, obj="invitation")},
    "dashboard:api_keys": {
        "GET": page(MANAGERS),
        "POST": page(MANAGERS, ok=200, body=lambda w: {"name": "ERP", "role": "viewer"}),
    },
    "dashboard:api_key_revoke": {"POST": page(MANAGERS, ok=302, obj="api_key")},
    "dashboard:audit_log": {"GET": page(MANAGERS)},
    "dashboard:company": {"GET": page(OWNERS), "POST": page(OWNERS, ok=302, body=lambda w: {})},
    # The seller's synchronised data
    "amazon:listings": {"GET": page(EVERY_ROLE)},
    "amazon:orders": {"GET": page(EVERY_ROLE)},
    "amazon:order_detail": {"GET": page(EVERY_ROLE, obj="order")},
    # Amazon accounts
    "amazon:connections": {"GET": page(EVERY_ROLE)},
    "amazon:connect": {
        "GET": page(MANAGERS),
        "POST": page(MANAGERS, ok=302, body=own_app_body, staff=200),
    },
    "amazon:consent_start": {"POST": page(MANAGERS, ok=302, body=lambda w: {"region": "NA"})},
    # Without a valid state from Seller Central the callback refuses (400) and stores nothing.
    "amazon:consent_callback": {"GET": page(MANAGERS, ok=400)},
    "amazon:connection_detail": {"GET": page(EVERY_ROLE, obj="connection")},
    "amazon:connection_disconnect": {
        "GET": page(MANAGERS, obj="connection"),
        "POST": page(MANAGERS, ok=302, obj="connection"),
    },
    "amazon:connection_ads": {"GET": page(EVERY_ROLE, obj="connection")},
    "amazon:connection_ads_connect": {
        "POST": page(
            MANAGERS,
            ok=302,
            obj="ads_connection",
            body=lambda w: {"ads_refresh_token": DEMO_ADS_REFRESH_TOKEN},
        ),
    },
    "amazon:connection_ads_disconnect": {"POST": page(MANAGERS, ok=302, obj="connection")},
    "amazon:connection_ads_consent_start": {"POST": page(MANAGERS, ok=302, obj="connection")},
    # Without a valid state from Amazon the Ads callback refuses (400) and stores nothing.
    "amazon:ads_consent_callback": {"GET": page(MANAGERS, ok=400)},
}


def _rule_form(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "strategy_kind": "buy_box",
        "strategy_mode": "beat",
        "strategy_unit": "amount",
        "strategy_offset": "0.01",
        "when_no_buy_box": "lowest",
        "when_alone": "hold",
        "fulfillment": "any",
        "out_of_bounds": "bound",
        "is_active": "on",
        "max_step_percent": "5",
    }


def _a(kind: str) -> Callable[[World], str]:
    return lambda w: str(w.objects[kind]["a"].public_id)  # type: ignore[attr-defined]


# Repricing: reading for every role, changing for change_automation (owner, admin, operator). Bodies that
# name company A's rule or SKU are refused for B's admin (400 in the API, 404 on the page).
MATRIX.update(
    {
        "repricing:overview": {"GET": page(EVERY_ROLE)},
        "repricing:kill_switch": {
            "POST": page(CHANGERS, ok=302, body=lambda w: {"on": "on", "reason": "matrix"})
        },
        "repricing:settings": {
            "POST": page(CHANGERS, ok=302, body=lambda w: {"dry_run": "on", "timezone": "UTC"})
        },
        "repricing:rules": {"GET": page(EVERY_ROLE)},
        "repricing:rule_create": {
            "GET": page(CHANGERS),
            "POST": page(CHANGERS, ok=302, body=lambda w: _rule_form("Matrix rule")),
        },
        "repricing:rule_edit": {
            "GET": page(CHANGERS, obj="repricing_rule"),
            "POST": page(CHANGERS, ok=302, obj="repricing_rule", body=lambda w: _rule_form("Renamed rule")),
        },
        "repricing:rule_toggle": {
            "POST": page(CHANGERS, ok=302, obj="repricing_rule", body=lambda w: {"active": "0"})
        },
        "repricing:rule_delete": {
            "GET": page(CHANGERS, obj="repricing_rule"),
            "POST": page(CHANGERS, ok=302, obj="repricing_rule"),
        },
        "repricing:tag_rules": {"GET": page(EVERY_ROLE)},
        "repricing:tag_rule_create": {
            "POST": Rule(
                allowed=CHANGERS,
                ok=302,
                body=lambda w: {"tag": "new-tag", "rule": _a("repricing_rule")(w), "priority": "5"},
                staff=200,
                outsider=400,
            )
        },
        "repricing:tag_rule_delete": {"POST": page(CHANGERS, ok=302, obj="tag_rule")},
        "repricing:skus": {"GET": page(EVERY_ROLE)},
        "repricing:sku_bulk": {
            "POST": Rule(
                allowed=CHANGERS,
                ok=302,
                body=lambda w: {"rule": "none", "listings": [_a("listing")(w)]},
                staff=200,
                outsider=404,
            )
        },
        "repricing:sku_detail": {"GET": page(EVERY_ROLE, obj="listing")},
        "repricing:sku_edit": {
            "GET": page(CHANGERS, obj="listing"),
            "POST": page(
                CHANGERS,
                ok=302,
                obj="listing",
                body=lambda w: {
                    "enabled": "on",
                    "bounds_source": "entered",
                    "min_price": "6",
                    "max_price": "60",
                },
            ),
        },
        "repricing:sku_reprice": {"POST": page(CHANGERS, ok=302, obj="listing")},
        "repricing:activity": {"GET": page(EVERY_ROLE)},
        "api:repricing-settings": {
            "GET": api(EVERY_ROLE),
            "PATCH": api(CHANGERS, body=lambda w: {"dry_run": False}),
        },
        "api:repricing-kill-switch": {"POST": api(CHANGERS, body=lambda w: {"on": True, "reason": "matrix"})},
        "api:repricing-rule-list": {
            "GET": api(EVERY_ROLE),
            "POST": api(
                CHANGERS,
                ok=201,
                body=lambda w: {
                    "name": "API rule",
                    "config": {"strategy": {"kind": "lowest", "mode": "match"}},
                },
            ),
        },
        "api:repricing-rule-detail": {
            "GET": api(EVERY_ROLE, obj="repricing_rule"),
            "PATCH": api(CHANGERS, obj="repricing_rule", body=lambda w: {"description": "Changed"}),
            "DELETE": api(CHANGERS, ok=204, obj="repricing_rule"),
        },
        "api:repricing-tag-rule-list": {
            "GET": api(EVERY_ROLE),
            "POST": Rule(
                allowed=CHANGERS,
                ok=201,
                body=lambda w: {"tag": "new-tag", "rule": _a("repricing_rule")(w)},
                outsider=400,
            ),
        },
        "api:repricing-tag-rule-detail": {
            "GET": api(EVERY_ROLE, obj="tag_rule"),
            "PATCH": api(CHANGERS, obj="tag_rule", body=lambda w: {"priority": 7}),
            "DELETE": api(CHANGERS, ok=204, obj="tag_rule"),
        },
        "api:repricing-sku-list": {"GET": api(EVERY_ROLE)},
        "api:repricing-sku-assign-rule": {
            "POST": Rule(
                allowed=CHANGERS,
                ok=200,
                body=lambda w: {"listings": [_a("listing")(w)], "rule": _a("repricing_rule")(w)},
                outsider=400,
            )
        },
        "api:repricing-sku-detail": {
            "GET": api(EVERY_ROLE, obj="listing"),
            "PATCH": api(CHANGERS, obj="listing", body=lambda w: {"min_price": "6.00", "max_price": "60.00"}),
        },
        "api:repricing-decision-list": {"GET": api(EVERY_ROLE)},
        "api:repricing-decision-detail": {"GET": api(EVERY_ROLE, obj="price_decision")},
        "api:repricing-submission-list": {"GET": api(EVERY_ROLE)},
        "api:repricing-reprice-now": {
            "POST": Rule(
                allowed=CHANGERS, ok=202, body=lambda w: {"listings": [_a("listing")(w)]}, outsider=400
            )
        },
    }
)


def _repricing_tool_objects(world: World, side: str, tenant: Tenant, listing: Any, canary: str) -> None:
    """An offers snapshot (history to backtest), a checked CSV import ready to apply, a finished backtest."""
    from amazon.tests.data_factories import make_offer_snapshot
    from tests.isolation_rows import ROW_MAKERS

    make_offer_snapshot(listing)
    with tenant_context(tenant):
        world.objects.setdefault("bounds_import", {})[side] = ROW_MAKERS["repricing.boundsimport"](
            tenant, canary
        )
        world.objects.setdefault("backtest", {})[side] = ROW_MAKERS["repricing.backtest"](tenant, canary)


def _csv_upload(w: World) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"file": SimpleUploadedFile("matrix.csv", b"sku,min_price,max_price\nNO-SUCH-SKU,1.00,2.00\n")}


def _backtest_body(w: World, config: Any = None) -> dict[str, Any]:
    today = timezone.now().date()
    return {
        "config": config or {"strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.01"}},
        "start": str(today - timedelta(days=6)),
        "end": str(today),
    }


# Repricing tools (repricing/tools_views.py, tools_api.py): importing and backtesting need change_automation,
# the export (costs) see_money, backtest results view_dashboard. B's admin posting a file or a backtest gets
# B's own import or backtest (A's SKUs are unknown to B).
MATRIX.update(
    {
        "repricing:bounds_import": {"GET": page(CHANGERS), "POST": page(CHANGERS, ok=302, body=_csv_upload)},
        "repricing:bounds_import_detail": {"GET": page(CHANGERS, obj="bounds_import")},
        "repricing:bounds_import_apply": {"POST": page(CHANGERS, ok=302, obj="bounds_import")},
        "repricing:bounds_import_errors": {"GET": page(CHANGERS, obj="bounds_import")},
        "repricing:bounds_export": {"GET": page(WITH_MONEY)},
        "repricing:backtests": {"GET": page(EVERY_ROLE)},
        "repricing:backtest_new": {
            "GET": page(CHANGERS),
            "POST": page(
                CHANGERS,
                ok=302,
                body=lambda w: {**_backtest_body(w, '{"strategy": {"kind": "lowest"}}'), "scope": "all"},
            ),
        },
        "repricing:backtest_detail": {"GET": page(EVERY_ROLE, obj="backtest")},
        "api:repricing-bounds-import-list": {
            "GET": api(CHANGERS),
            "POST": api(
                CHANGERS, ok=201, body=lambda w: {"csv": "sku,min_price,max_price\nNO-SUCH-SKU,1.00,2.00\n"}
            ),
        },
        "api:repricing-bounds-import-detail": {"GET": api(CHANGERS, obj="bounds_import")},
        "api:repricing-bounds-import-apply": {"POST": api(CHANGERS, obj="bounds_import")},
        "api:repricing-sku-pricing-export": {"GET": api(WITH_MONEY)},
        "api:repricing-backtest-list": {
            "GET": api(EVERY_ROLE),
            "POST": api(CHANGERS, ok=202, body=_backtest_body),
        },
        "api:repricing-backtest-detail": {"GET": api(EVERY_ROLE, obj="backtest")},
    }
)

# Operations that call Amazon (to verify credentials): each runs against a fresh simulator.
SIMULATED = {
    ("api:connection-list", "POST"),
    ("amazon:connect", "POST"),
    ("api:connection-ads", "POST"),
    ("amazon:connection_ads_connect", "POST"),
}

# Routes whose URL carries a one-time secret; they have their own tests (accounts/tests/test_views.py)
# and are checked here only for "a forged link shows nothing".
SECRET_LINK_ROUTES = {
    "accounts:password_reset_confirm": {"uidb64": "MQ", "token": "forged-token"},
    "accounts:invitation_accept": {
        "tenant_public_id": "00000000-0000-0000-0000-000000000000",
        "token": "forged",
    },
}


# --- Running the matrix -----------------------------------------------------------------------------------


def _is_api(route: str) -> bool:
    return route.startswith("api:")


def _url(route: str, rule: Rule, world: World, side: str) -> str:
    if rule.obj is None:
        return reverse(route)
    return reverse(route, kwargs={"public_id": world.objects[rule.obj][side].public_id})  # type: ignore[attr-defined]


def _client(world: World, visitor: str, api_call: bool) -> Client:
    client = Client()
    if visitor == "anonymous":
        return client
    user = world.users[visitor]
    if api_call:
        if visitor == "staff":
            return client  # staff belong to no company: no token can be issued for them
        tenant = world.b if visitor == "outsider" else world.a
        raw, _ = token_issue(user_id=user.pk, tenant_id=tenant.pk, session_key="matrix")
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
        return client
    client.force_login(user)
    return client


def expected_status(rule: Rule, visitor: str, api_call: bool, side: str) -> int | set[int]:
    if rule.public:
        return rule.ok
    if visitor == "anonymous":
        return rule.anonymous if rule.anonymous is not None else (401 if api_call else 302)
    if visitor == "staff":
        if rule.staff is not None:
            return rule.staff
        return 401 if api_call else 200
    if visitor == "outsider":
        if rule.outsider is not None:
            return rule.outsider
        # An admin of B acting on A's object: not found. Without an object, B's admin sees B's own data.
        if rule.obj is not None and side == "a":
            return 404 if "admin" in rule.allowed else {403, 404}
        return rule.ok if "admin" in rule.allowed else 403
    # A member of A
    if visitor not in rule.allowed:
        return 403 if side == "a" else {403, 404}
    return rule.ok if side == "a" else 404


CASES = [
    pytest.param(route, method, visitor, side, id=f"{method} {route} {visitor} obj-{side}")
    for route, methods in MATRIX.items()
    for method, rule in methods.items()
    for visitor in VISITORS
    for side in (("a", "b") if rule.obj else ("a",))
]


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "method", "visitor", "side"), CASES)
def test_access(route: str, method: str, visitor: str, side: str) -> None:
    with contextlib.ExitStack() as stack:
        if (route, method) in SIMULATED:
            simulator = start_simulator()
            stack.callback(simulator.server.stop)
            stack.enter_context(
                override_settings(
                    LWA_TOKEN_URL=simulator.lwa_url,
                    SP_API_ENDPOINT=simulator.base_url,
                    ADS_API_ENDPOINT=simulator.base_url,
                )
            )
        _check_access(route, method, visitor, side)


def _check_access(route: str, method: str, visitor: str, side: str) -> None:
    world = build_world()
    rule = MATRIX[route][method]
    api_call = _is_api(route)
    client = _client(world, visitor, api_call)
    url = _url(route, rule, world, side)
    data = rule.body(world) if rule.body else None
    if api_call:
        kwargs: dict[str, Any] = {"content_type": "application/json"} if data is not None else {}
        response = getattr(client, method.lower())(url, data=data, **kwargs)
    else:
        response = getattr(client, method.lower())(url, data=data or {})
    expected = expected_status(rule, visitor, api_call, side)
    allowed_statuses = expected if isinstance(expected, set) else {expected}
    assert response.status_code in allowed_statuses, (
        f"{method} {url} as {visitor}: got {response.status_code}, expected {expected}"
    )
    if not api_call and visitor == "anonymous" and response.status_code == 302 and not rule.public:
        assert reverse("accounts:login") in response["Location"] or route == "accounts:logout"
    body = response.content.decode(errors="replace")
    if visitor in ROLES:
        assert "CANARY_B" not in body.upper() or route in {"api:schema", "api:docs"}, (
            f"B's data leaked to {visitor}"
        )
    if visitor in ("outsider", "staff", "anonymous"):
        assert "CANARY_A" not in body.upper(), f"A's data leaked to {visitor}"
    if visitor == "staff":
        assert "CANARY_B" not in body.upper(), "tenant data leaked to a non-member"


@pytest.mark.django_db
@pytest.mark.parametrize("route", sorted(SECRET_LINK_ROUTES))
def test_forged_secret_links_show_nothing(route: str) -> None:
    build_world()
    response = Client().get(reverse(route, kwargs=SECRET_LINK_ROUTES[route]))
    assert response.status_code in {200, 404}
    body = response.content.decode().upper()
    assert "CANARY_A" not in body and "CANARY_B" not in body


# --- Meta-tests: nothing is left out ------------------------------------------------------------------------


def _named_routes(resolver: URLResolver | None = None, namespace: str = "") -> set[str]:
    names: set[str] = set()
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # the staff admin has its own tests (tests/test_admin.py)
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            names |= _named_routes(entry, inner)
        elif isinstance(entry, URLPattern):
            if entry.name:
                names.add(f"{namespace}{entry.name}")
            elif "static" not in str(entry.pattern):
                names.add(f"{namespace}<unnamed {entry.pattern}>")
    return names


# Patterns deliberately outside the matrix, each with its reason.
UNMATRIXED = {
    "api:<unnamed >": "catch-all that answers 404 in the API error shape for unknown /api/ paths",
    "api:<unnamed docs>": "redirect to api:docs (the trailing slash)",
}


def test_every_url_is_in_the_matrix() -> None:
    known = set(MATRIX) | set(SECRET_LINK_ROUTES) | set(UNMATRIXED)
    missing = _named_routes() - known
    assert not missing, f"add these routes to tests/test_access_matrix.py MATRIX: {sorted(missing)}"
    stale = set(MATRIX) - _named_routes()
    assert not stale, f"MATRIX names routes that no longer exist: {sorted(stale)}"


def test_every_openapi_operation_is_in_the_matrix() -> None:
    from django.urls import resolve
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    missing = []
    for path, operations in schema["paths"].items():
        concrete = path.replace("{public_id}", "00000000-0000-0000-0000-000000000001")
        match = resolve(concrete)
        route = f"{match.namespace}:{match.url_name}" if match.namespace else str(match.url_name)
        for method in operations:
            if method.upper() not in MATRIX.get(route, {}):
                missing.append(f"{method.upper()} {path} ({route})")
    assert not missing, f"OpenAPI operations missing from the matrix: {missing}"
    assert schema["paths"], "the schema lists no operations"


def test_matrix_covers_each_visitor_kind() -> None:
    assert len(CASES) > 100
    assert {case.values[2] for case in CASES} == set(VISITORS)


def _unused() -> tuple[type, ...]:
    return (ApiKey, Invitation, timedelta)  # imported for readers of the fixtures above
