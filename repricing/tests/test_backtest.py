"""Backtests: the pure replay against hand-computed prices (strategy, bounds, cooldown, daily limit,
price war), the job over seeded offer history (progress, results, summary), isolation, bad input, and
the pages and API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.tokens import token_issue
from amazon.models import Listing, OfferSnapshot
from amazon.tests.data_factories import make_listing, make_offer_snapshot
from amazon.tests.factories import make_connection
from repricing import backtest as backtests
from repricing.backtest import Observation, SkuReplay
from repricing.engine import ListingState, Offer, Rule
from repricing.models import Backtest, PriceDecision, RepricingRule
from repricing.services import RepricingError, rule_create, sku_pricing_update
from tenants.context import tenant_context
from tenants.models import JobRun
from tests.factories import make_member, make_tenant

US = "ATVPDKIKX0DER"
UTC_ZONE = ZoneInfo("UTC")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BEAT = {"strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.01"}}


# --- The pure replay --------------------------------------------------------------------------------------


def _offer(seller: str, price: str, *, ours: bool = False, buy_box: bool = False) -> Offer:
    return Offer(
        seller_id=seller,
        price=Decimal(price),
        currency="USD",
        condition="new",
        fulfillment="FBA",
        is_buy_box_winner=buy_box,
        is_ours=ours,
    )


def _market(at: datetime, competitor: str, ours: str = "21.00") -> Observation:
    """A competitor holding the Buy Box at `competitor`, and our offer at `ours` (what really happened)."""
    return Observation(
        at=at,
        offers=(_offer("COMP", competitor, buy_box=True), _offer("ME", ours, ours=True)),
        actual_price=Decimal(ours),
        actual_shipping=Decimal(0),
        actually_held_buy_box=False,
    )


def _replay(config: dict[str, Any], observations: list[Observation], **bounds: str) -> SkuReplay:
    listing = ListingState(
        sku="RED-1",
        asin="B000000001",
        marketplace_id=US,
        currency="USD",
        condition="new",
        fulfillment="FBA",
        current_price=None,
        min_price=Decimal(bounds.get("min_price", "15.00")),
        max_price=Decimal(bounds.get("max_price", "30.00")),
    )
    replay = SkuReplay(listing, Rule.from_dict(config), UTC_ZONE)
    for observation in observations:
        replay.step(observation)
    return replay


def _would(replay: SkuReplay) -> list[str]:
    return [point[2] for point in replay.points]


def test_beat_the_buy_box_by_a_cent_over_four_snapshots_gives_the_hand_computed_prices() -> None:
    replay = _replay(
        BEAT,
        [
            _market(T0, "20.00"),  # we are at 21.00: beat 20.00 → 19.99
            _market(T0 + timedelta(minutes=10), "19.50"),  # → 19.49
            _market(T0 + timedelta(minutes=20), "19.50"),  # 19.49 now holds the Buy Box: keep it
            _market(T0 + timedelta(minutes=30), "14.00"),  # 13.99 is below the min 15.00: the min
        ],
    )
    assert _would(replay) == ["19.99", "19.49", "19.49", "15.00"]
    assert [point[1] for point in replay.points] == ["21.00"] * 4  # what we actually had
    assert [point[3] for point in replay.points] == ["20.00", "19.50", "19.50", "14.00"]  # the Buy Box
    assert [point[5] for point in replay.points] == ["change", "change", "hold", "change"]
    result = replay.result()
    assert (result["changes"], result["holds"], result["pauses"], result["alerts"]) == (3, 1, 0, 0)
    assert (result["at_min"], result["at_max"], result["actual_changes"]) == (1, 0, 0)
    assert result["reasons"]["own_buy_box"] == 1 and result["reasons"]["held_at_min"] == 1
    # Would minus actual: (-1.01 - 1.51 - 1.51 - 6.00) / 4 = -2.5075
    assert result["average_difference"] == "-2.51"
    assert (result["would_lowest_pct"], result["actual_lowest_pct"]) == (75.0, 0.0)
    assert (result["would_hold_buy_box_pct"], result["actual_held_buy_box_pct"]) == (75.0, 0.0)
    assert result["would_at_buy_box_price_pct"] == 75.0
    assert result["last_would_price"] == "15.00" and result["last_actual_price"] == "21.00"


def test_the_cooldown_is_kept_between_snapshots() -> None:
    rule = {**BEAT, "guards": {"cooldown_seconds": 3600}}
    replay = _replay(
        rule,
        [
            _market(T0, "20.00"),
            _market(T0 + timedelta(minutes=10), "19.50"),  # changed 10 minutes ago: wait
            _market(T0 + timedelta(minutes=60), "19.00"),  # an hour after the change: free again
        ],
    )
    assert _would(replay) == ["19.99", "19.99", "18.99"]
    assert replay.reasons["cooldown"] == 1


def test_the_daily_limit_counts_from_the_days_opening_price_and_resets_the_next_day() -> None:
    rule = {**BEAT, "guards": {"max_daily": {"percent": "5"}}}
    late = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    replay = _replay(
        rule,
        [
            _market(late, "18.00", ours="20.00"),  # opening 20.00: 5 % = 1.00 → at most down to 19.00
            _market(late + timedelta(minutes=30), "18.00", ours="20.00"),  # no room left today
            _market(late + timedelta(minutes=70), "18.00", ours="20.00"),  # a new day opens at 19.00: 0.95
        ],
    )
    assert _would(replay) == ["19.00", "19.00", "18.05"]
    assert replay.reasons["max_daily"] == 3  # capped, then no room, then capped from the new opening


def test_the_price_war_breaker_pauses_and_the_pause_ends() -> None:
    rule = {**BEAT, "guards": {"price_war": {"undercuts": 2, "window_seconds": 3600, "pause_seconds": 7200}}}
    replay = _replay(
        rule,
        [
            _market(T0, "20.00"),  # → 19.99
            _market(T0 + timedelta(minutes=5), "19.90"),  # undercut 1 → 19.89
            _market(T0 + timedelta(minutes=10), "19.80"),  # undercut 2 → price war: pause 2 h
            _market(T0 + timedelta(minutes=15), "19.70"),  # paused
            _market(T0 + timedelta(minutes=135), "19.70"),  # pause over, old undercuts out of the window
        ],
        min_price="10.00",
    )
    assert [point[5] for point in replay.points] == ["change", "change", "pause", "hold", "change"]
    assert _would(replay) == ["19.99", "19.89", "19.89", "19.89", "19.69"]
    result = replay.result()
    assert result["pauses"] == 1 and result["alerts_by_kind"] == {"price_war": 1}
    assert result["undercuts"] == 3 and result["reasons"]["paused"] == 1


def test_a_sku_without_bounds_is_never_repriced() -> None:
    listing = ListingState(
        sku="X",
        asin="B",
        marketplace_id=US,
        currency="USD",
        condition="new",
        fulfillment="FBA",
        current_price=None,
    )
    replay = SkuReplay(listing, Rule.from_dict(BEAT), UTC_ZONE)
    replay.step(_market(T0, "20.00"))
    result = replay.result()
    assert result["no_bounds"] is True and result["changes"] == 0 and result["reasons"] == {"no_bounds": 1}


def test_the_rules_own_dry_run_does_not_hide_what_it_would_do() -> None:
    replay = _replay({**BEAT, "dry_run": True}, [_market(T0, "20.00")])
    assert _would(replay) == ["19.99"]


def test_long_series_are_sampled_for_the_chart_but_counted_whole() -> None:
    observations = [_market(T0 + timedelta(minutes=5 * i), "20.00") for i in range(1000)]
    replay = _replay(BEAT, observations)
    points = replay.sampled_points(100)
    assert len(points) == 100 and points[0] == replay.points[0] and points[-1] == replay.points[-1]
    assert replay.result()["observations"] == 1000


# --- The job over stored history --------------------------------------------------------------------------

ME = "A0000000000ME1"


def _snapshot(listing: Listing, at: datetime, competitor: str, ours: str | None = "21.00") -> OfferSnapshot:
    offers: list[dict[str, Any]] = [
        {
            "SellerId": "COMP",
            "ListingPrice": {"Amount": float(competitor), "CurrencyCode": "USD"},
            "Shipping": {"Amount": 0.0, "CurrencyCode": "USD"},
            "IsFulfilledByAmazon": True,
            "IsBuyBoxWinner": True,
            "SubCondition": "new",
            "MyOffer": False,
        }
    ]
    if ours is not None:
        offers.append(
            {
                "SellerId": ME,
                "ListingPrice": {"Amount": float(ours), "CurrencyCode": "USD"},
                "Shipping": {"Amount": 0.0, "CurrencyCode": "USD"},
                "IsFulfilledByAmazon": True,
                "IsBuyBoxWinner": False,
                "SubCondition": "new",
                "MyOffer": True,
            }
        )
    return make_offer_snapshot(
        listing,
        observed_at=at,
        buy_box_price=Decimal(competitor),
        buy_box_landed_price=Decimal(competitor),
        buy_box_seller_id="COMP",
        offers=offers,
    )


class World:
    def __init__(self) -> None:
        self.tenant = make_tenant()
        self.owner = make_member(self.tenant)
        self.connection = make_connection(self.tenant, selling_partner_id=ME)
        self.red = make_listing(self.connection, sku="RED-1", price=Decimal("21.00"), condition="new_new")
        self.blue = make_listing(self.connection, sku="BLUE-2", price=Decimal("30.00"))
        self.now = timezone.now()
        base = self.now - timedelta(hours=3)
        for minutes, competitor in ((0, "20.00"), (10, "19.50"), (20, "19.50")):
            _snapshot(self.red, base + timedelta(minutes=minutes), competitor)
        with tenant_context(self.tenant):
            self.rule = rule_create(
                name="Beat by a cent", config=BEAT, actor=self.owner, actor_role=Role.OWNER
            )
            for listing in (self.red, self.blue):
                sku_pricing_update(
                    listing=listing,
                    values={"min_price": "15.00", "max_price": "30.00", "tags": ["summer"]},
                    actor=self.owner,
                    actor_role=Role.OWNER,
                )
        self.other = make_tenant()
        other_connection = make_connection(self.other)
        self.theirs = make_listing(other_connection, sku="THEIRS-9")
        _snapshot(self.theirs, base, "5.00", ours=None)
        self.today = self.now.date()

    def create(self, **kwargs: Any) -> Backtest:
        params: dict[str, Any] = {
            "actor": self.owner,
            "actor_role": Role.OWNER,
            "start": self.today - timedelta(days=1),
            "end": self.today,
        }
        params.update(kwargs)
        return backtests.backtest_create(**params)

    def run(self, backtest: Backtest) -> Backtest:
        backtests.backtest_run_task.apply(
            kwargs={"tenant_id": self.tenant.pk, "backtest_id": str(backtest.public_id)}
        )
        backtest.refresh_from_db()
        return backtest


@pytest.fixture
def world(db: None) -> Any:
    w = World()
    with tenant_context(w.tenant):
        yield w


def test_a_backtest_replays_the_stored_history_with_progress_and_stores_the_result(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as queued:
        backtest = world.create(rule=world.rule)
    assert backtest.status == Backtest.Status.QUEUED and len(queued) == 1
    assert backtest.rule_name == "Beat by a cent" and backtest.rule_version == 1
    assert backtest.progress_total == 2  # RED-1 and BLUE-2 (BLUE-2 has no history)

    backtest = world.run(backtest)
    assert backtest.status == Backtest.Status.SUCCEEDED, backtest.error
    assert (backtest.progress_done, backtest.progress_total) == (2, 2)
    run = JobRun.objects.get(kind="repricing.backtest")
    assert run.outcome == "succeeded" and (run.progress_done, run.progress_total) == (2, 2)
    assert run.counts == {"skus": 2, "observations": 3, "would_change": 2}
    assert backtest.job_run == run

    [red] = backtest.results
    assert red["sku"] == "RED-1" and red["listing"] == str(world.red.public_id)
    assert [p[2] for p in red["points"]] == ["19.99", "19.49", "19.49"]
    assert [p[1] for p in red["points"]] == ["21.00", "21.00", "21.00"]
    assert (red["changes"], red["holds"], red["min_price"], red["max_price"]) == (2, 1, "15.00", "30.00")
    summary = backtest.summary
    assert (summary["skus"], summary["skus_observed"], summary["observations"]) == (2, 1, 3)
    assert (summary["changes"], summary["holds"], summary["pauses"]) == (2, 1, 0)
    assert summary["would_lowest_pct"] == 100.0 and summary["actual_lowest_pct"] == 0.0
    assert summary["actual_held_buy_box_pct"] == 0.0 and summary["would_hold_buy_box_pct"] == 100.0
    assert summary["average_difference"] == "-1.34"  # (-1.01 - 1.51 - 1.51) / 3
    assert summary["observations_per_second"] > 0


def test_an_edited_configuration_is_replayed_without_saving_it(world: World) -> None:
    edited = {**BEAT, "strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.50"}}
    backtest = world.run(world.create(rule=world.rule, config=edited))
    assert backtest.rule_name == "Beat by a cent (edited)" and backtest.rule_version is None
    assert [p[2] for p in backtest.results[0]["points"]] == ["19.50", "19.00", "19.00"]
    assert RepricingRule.objects.get(pk=world.rule.pk).config == Rule.from_dict(BEAT).to_dict()


def test_too_much_history_for_one_backtest_is_refused(world: World) -> None:
    with override_settings(REPRICING_BACKTEST_MAX_OBSERVATIONS=2), pytest.raises(RepricingError) as refused:
        world.create(config=BEAT)
    assert refused.value.code == "too_much_history" and "3 offer snapshots" in refused.value.message
    assert not Backtest.objects.exists()


def test_a_tag_or_a_selection_of_skus(world: World) -> None:
    assert world.create(config=BEAT, tag="summer").selection == {"kind": "tag", "tag": "summer"}
    chosen = world.run(world.create(config=BEAT, skus=["RED-1"]))
    assert chosen.selection == {"kind": "skus", "skus": ["RED-1"]} and chosen.summary["skus"] == 1


def test_without_our_offer_in_a_snapshot_the_actual_price_is_the_last_one_sent(world: World) -> None:
    sent_at = world.now - timedelta(hours=2, minutes=55)  # between the first and second snapshots
    PriceDecision.objects.create(
        listing=world.red,
        trigger=PriceDecision.Trigger.SCHEDULE,
        action=PriceDecision.Action.CHANGE,
        reason="beat_buy_box",
        old_price=Decimal("21.00"),
        new_price=Decimal("20.50"),
        submit=True,
        observed_at=sent_at,
        decided_at=sent_at,
    )
    _snapshot(world.red, world.now - timedelta(hours=2, minutes=53), "19.50", ours=None)
    backtest = world.run(world.create(config=BEAT, skus=["RED-1"]))
    actual = [p[1] for p in backtest.results[0]["points"]]
    assert actual == ["21.00", "20.50", "21.00", "21.00"]  # the snapshot without our offer: what was sent


def test_another_companys_history_is_never_replayed(world: World) -> None:
    backtest = world.run(world.create(config=BEAT))
    assert {r["sku"] for r in backtest.results} == {"RED-1"}
    with pytest.raises(RepricingError) as refused:
        world.create(config=BEAT, skus=["THEIRS-9"])
    assert refused.value.code == "unknown_sku"
    with tenant_context(world.other):
        assert not Backtest.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({}, "invalid_request", "rule"),
        ({"config": {"strategy": {"kind": "cheapest"}}}, "invalid_rule", "config"),
        ({"config": ["not", "an", "object"]}, "invalid_request", "config"),
        ({"config": BEAT, "skus": ["NOPE-1"]}, "unknown_sku", "skus"),
        ({"config": BEAT, "tag": "winter"}, "unknown_tag", "tag"),
        ({"config": BEAT, "tag": "summer", "skus": ["RED-1"]}, "invalid_request", "tag"),
        ({"config": BEAT, "start_days_ago": 60, "end_days_ago": 50}, "no_history", "start"),
        ({"config": BEAT, "start_days_ago": 200, "end_days_ago": 0}, "invalid_request", "end"),
        ({"config": BEAT, "start_days_ago": 0, "end_days_ago": 2}, "invalid_request", "end"),
        ({"config": BEAT, "start_days_ago": -3, "end_days_ago": -3}, "invalid_request", "start"),
    ],
)
def test_bad_requests_are_refused_and_store_nothing(
    world: World, kwargs: dict[str, Any], code: str, field: str
) -> None:
    kwargs = dict(kwargs)
    if "start_days_ago" in kwargs:
        kwargs["start"] = world.today - timedelta(days=kwargs.pop("start_days_ago"))
        kwargs["end"] = world.today - timedelta(days=kwargs.pop("end_days_ago"))
    with pytest.raises(RepricingError) as refused:
        world.create(**kwargs)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert not Backtest.objects.exists()


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_read_only_roles_cannot_start_a_backtest(world: World, role: str) -> None:
    with pytest.raises(RepricingError) as refused:
        world.create(config=BEAT, actor_role=role)
    assert refused.value.status == 403


# --- API and pages ----------------------------------------------------------------------------------------


def _api(world: World, role: str = Role.OWNER) -> APIClient:
    user = world.owner if role == Role.OWNER else make_member(world.tenant, role)
    raw, _ = token_issue(user_id=user.pk, tenant_id=world.tenant.pk, session_key="bt")
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_the_api_creates_lists_and_shows_a_backtest(world: World) -> None:
    client = _api(world)
    body = {
        "rule": str(world.rule.public_id),
        "start": str(world.today - timedelta(days=1)),
        "end": str(world.today),
    }
    response = client.post(reverse("api:repricing-backtest-list"), body, format="json")
    assert response.status_code == 202, response.content
    created = response.json()
    assert created["status"] == "queued" and created["progress"] == {"done": 0, "total": 2}
    world.run(Backtest.objects.get(public_id=created["public_id"]))
    listed = client.get(reverse("api:repricing-backtest-list")).json()
    assert [item["public_id"] for item in listed["results"]] == [created["public_id"]]
    assert "results" not in listed["results"][0]
    detail = client.get(reverse("api:repricing-backtest-detail", kwargs={"public_id": created["public_id"]}))
    assert detail.status_code == 200
    data = detail.json()
    assert data["status"] == "succeeded" and data["summary"]["changes"] == 2
    assert [p[2] for p in data["results"][0]["points"]] == ["19.99", "19.49", "19.49"]
    viewer = _api(world, Role.VIEWER)
    assert (
        viewer.get(
            reverse("api:repricing-backtest-detail", kwargs={"public_id": created["public_id"]})
        ).status_code
        == 200
    )
    assert viewer.post(reverse("api:repricing-backtest-list"), body, format="json").status_code == 403


def test_the_api_refuses_bad_input_with_the_field(world: World) -> None:
    client = _api(world)
    url = reverse("api:repricing-backtest-list")
    base = {"start": str(world.today - timedelta(days=1)), "end": str(world.today)}
    cases = [
        ({**base, "rule": str(uuid4())}, "unknown_rule", "rule"),
        ({**base, "config": {"strategy": {"kind": "buy_box", "mode": "beat"}}}, "invalid_rule", "config"),
        ({**base, "config": BEAT, "skus": ["THEIRS-9"]}, "unknown_sku", "skus"),
        ({"config": BEAT, "start": "2020-01-01", "end": "2020-01-02"}, "no_history", "start"),
        ({**base, "config": BEAT, "start": "yesterday"}, "validation_error", "start"),
    ]
    for body, code, field in cases:
        response = client.post(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
        error = response.json()["error"]
        assert error["code"] == code and field in error["fields"], (body, error)
    with tenant_context(world.other):
        foreign_rule = rule_create(name="Theirs", config=BEAT, actor=None, actor_role=Role.OWNER)
    response = client.post(url, {**base, "rule": str(foreign_rule.public_id)}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_rule"
    assert not Backtest.objects.exists()


def test_another_companys_backtest_is_not_found(world: World) -> None:
    with tenant_context(world.other):
        theirs = Backtest.objects.create(
            name="theirs", rule_config=BEAT, period_start=world.now, period_end=world.now
        )
    client = _api(world)
    assert (
        client.get(
            reverse("api:repricing-backtest-detail", kwargs={"public_id": theirs.public_id})
        ).status_code
        == 404
    )
    assert client.get(reverse("api:repricing-backtest-list")).json()["results"] == []
    page = Client()
    page.force_login(world.owner)
    assert (
        page.get(reverse("repricing:backtest_detail", kwargs={"public_id": theirs.public_id})).status_code
        == 404
    )


def test_pages_start_a_backtest_follow_its_progress_and_chart_the_result(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    client.force_login(world.owner)
    form = client.get(reverse("repricing:backtest_new") + f"?rule={world.rule.public_id}")
    assert form.status_code == 200 and "Beat by a cent" in form.content.decode()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(
            reverse("repricing:backtest_new"),
            {
                "rule": str(world.rule.public_id),
                "config": "",
                "scope": "all",
                "start": str(world.today - timedelta(days=1)),
                "end": str(world.today),
            },
        )
    assert response.status_code == 302 and len(queued) == 1
    backtest = Backtest.objects.get()
    waiting = client.get(response["Location"])
    assert waiting["Refresh"] == "3" and "Waiting for a worker" in waiting.content.decode()
    world.run(backtest)
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and not page.has_header("Refresh")
    assert 'class="price-chart__line price-chart__line--would" d="M' in html
    assert 'class="price-chart__line price-chart__line--actual" d="M' in html
    assert "RED-1" in html and "Would have been" in html
    listing = client.get(reverse("repricing:backtests"))
    assert backtest.name in listing.content.decode()

    bad = client.post(
        reverse("repricing:backtest_new"),
        {"config": "{not json", "scope": "all", "start": str(world.today), "end": str(world.today)},
    )
    assert bad.status_code == 400 and "not valid JSON" in bad.content.decode()


def test_without_any_offer_history_the_pages_say_to_run_the_offers_sync_first(db: None) -> None:
    tenant = make_tenant()
    owner = make_member(tenant)
    client = Client()
    client.force_login(owner)
    for url in (reverse("repricing:backtests"), reverse("repricing:backtest_new")):
        response = client.get(url)
        assert response.status_code == 200
        assert "run the offers sync first" in response.content.decode()
