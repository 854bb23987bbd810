"""SKU pricing from a CSV file: reading the file, checking every row, the preview, the all-or-nothing
apply (in the request and as background jobs), the export round trip, and the pages and API."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.tokens import token_issue
from amazon.models import Listing
from amazon.tests.data_factories import make_listing
from amazon.tests.factories import make_connection
from repricing import bounds_import as imports
from repricing.models import BoundsImport, RepricingRule, SkuPricing
from repricing.services import RepricingError, rule_create, rule_delete, sku_pricing_update
from tenants.context import tenant_context
from tenants.models import AuditEvent, JobRun
from tests.factories import make_member, make_tenant

pytestmark = pytest.mark.django_db

US, DE = "ATVPDKIKX0DER", "A1PA6795UKMFR9"
BEAT = {"strategy": {"kind": "buy_box", "mode": "beat", "amount": "0.01"}}


class World:
    def __init__(self) -> None:
        self.tenant = make_tenant()
        self.owner = make_member(self.tenant)
        self.connection = make_connection(self.tenant)
        self.red = make_listing(self.connection, sku="RED-1")
        self.blue = make_listing(self.connection, sku="BLUE-2")
        self.green = make_listing(self.connection, sku="GREEN-3")
        self.multi_us = make_listing(self.connection, sku="MULTI", marketplace_id=US)
        self.multi_de = make_listing(self.connection, sku="MULTI", marketplace_id=DE, currency="EUR")
        self.other = make_tenant()
        other_connection = make_connection(self.other)
        self.foreign = make_listing(other_connection, sku="THEIRS-9")
        with tenant_context(self.tenant):
            self.rule = rule_create(
                name="Beat by a cent", config=BEAT, actor=self.owner, actor_role=Role.OWNER
            )

    def create(self, text: str | bytes, role: str = Role.OWNER, name: str = "bounds.csv") -> BoundsImport:
        data = text.encode() if isinstance(text, str) else text
        return imports.bounds_import_create(data=data, file_name=name, actor=self.owner, actor_role=role)

    def apply(self, row: BoundsImport, role: str = Role.OWNER) -> BoundsImport:
        return imports.bounds_import_apply(bounds_import=row, actor=self.owner, actor_role=role)


@pytest.fixture
def world() -> Any:
    w = World()
    with tenant_context(w.tenant):
        yield w


def _pricing(listing: Listing) -> SkuPricing | None:
    return SkuPricing.objects.filter(listing=listing).select_related("rule").first()


def _errors(row: BoundsImport) -> set[tuple[int, str]]:
    return {(number, column) for number, column, _ in row.errors}


# --- A good file ------------------------------------------------------------------------------------------

GOOD = (
    "sku,marketplace_id,cost,referral_fee_percent,fba_fee,bounds_source,target_percent,min_price,max_price,rule,tags\n"
    "RED-1,,8.00,15,3.22,margin,20,,39.99,Beat by a cent,summer;clearance\n"
    "BLUE-2,ATVPDKIKX0DER,,,,entered,,12.50,25.00,,\n"
    "MULTI,A1PA6795UKMFR9,,,,,,9.99,19.99,,\n"
)


def test_a_good_file_is_checked_previewed_and_applied_in_one_go_with_one_audit_event(world: World) -> None:
    row = world.create(GOOD)
    assert row.status == BoundsImport.Status.READY
    assert row.error_count == 0
    counts = row.preview["counts"]
    assert counts["rows"] == 3 and counts["changing"] == 3 and counts["new_settings"] == 3
    assert counts["min_set"] == 3 and counts["max_set"] == 3
    assert counts["rule_changed"] == 1 and counts["tags_changed"] == 1
    assert not SkuPricing.objects.exists(), "nothing is written before the seller confirms"

    applied = world.apply(row)
    assert applied.status == BoundsImport.Status.APPLIED
    assert applied.csv_text == ""  # the file is not kept once applied
    red = _pricing(world.red)
    assert red is not None
    # Margin bounds computed by the same service as the dashboard: (8 + 3.22) / (1 - 0.15 - 0.20) = 17.2615…
    assert red.min_price == Decimal("17.27") and red.max_price == Decimal("39.99")
    assert red.bounds_source == "margin" and red.target_percent == Decimal("20.00")
    assert red.rule == world.rule and red.tags == ["clearance", "summer"]
    blue = _pricing(world.blue)
    assert blue is not None and (blue.min_price, blue.max_price) == (Decimal("12.50"), Decimal("25.00"))
    de = _pricing(world.multi_de)
    assert de is not None and de.min_price == Decimal("9.99")
    assert _pricing(world.multi_us) is None
    events = AuditEvent.objects.filter(action="repricing.bounds_import_apply")
    assert events.count() == 1
    assert events.get().changes["changing"] == 3
    assert not AuditEvent.objects.filter(action="repricing.sku_pricing_update").exists()
    with pytest.raises(RepricingError) as twice:
        world.apply(applied)
    assert twice.value.code == "already_applied" and twice.value.status == 409


def test_a_column_left_out_is_unchanged_and_an_empty_cell_clears(world: World) -> None:
    sku_pricing_update(
        listing=world.red,
        values={"cost": "5.00", "min_price": "10.00", "max_price": "30.00", "tags": ["keep"]},
        actor=world.owner,
        actor_role=Role.OWNER,
    )
    row = world.create("sku,max_price,tags\nRED-1,35.00,\n")
    assert row.preview["counts"]["max_up"] == 1
    world.apply(row)
    red = _pricing(world.red)
    assert red is not None
    assert red.cost == Decimal("5.00") and red.min_price == Decimal("10.00")  # columns not in the file
    assert red.max_price == Decimal("35.00") and red.tags == []  # the empty cell cleared the tags


def test_preview_counts_bounds_going_up_and_down(world: World) -> None:
    for listing, low in ((world.red, "10.00"), (world.blue, "10.00"), (world.green, "10.00")):
        sku_pricing_update(
            listing=listing,
            values={"min_price": low, "max_price": "30.00"},
            actor=None,
            actor_role=Role.OWNER,
        )
    row = world.create("sku,min_price,max_price\nRED-1,12.00,30.00\nBLUE-2,8.00,25.00\nGREEN-3,10.00,30.00\n")
    counts = row.preview["counts"]
    assert (counts["changing"], counts["unchanged"]) == (2, 1)
    assert (counts["min_up"], counts["min_down"], counts["max_down"], counts["max_up"]) == (1, 1, 1, 0)
    sample = {item["sku"]: item for item in row.preview["sample"]}
    assert sample["BLUE-2"]["min_before"] == "10.00" and sample["BLUE-2"]["min_after"] == "8.00"


# --- Bad rows: every error at once, nothing written -------------------------------------------------------

BAD = (
    "sku,marketplace_id,cost,referral_fee_percent,fba_fee,bounds_source,target_percent,min_price,max_price,rule\n"
    "NOPE-0,,,,,,,1.00,2.00,\n"  # 2: unknown SKU
    "THEIRS-9,,,,,,,1.00,2.00,\n"  # 3: another company's SKU is unknown
    "RED-1,,abc,150,-1,,,5.00,4.00,\n"  # 4: not a number, referral >= 100, negative (all three reported)
    "BLUE-2,,,,,,,30.00,20.00,\n"  # 5: min above max
    "BLUE-2,,,,,,,1.00,2.00,\n"  # 6: the same SKU again
    "GREEN-3,,,,,sometimes,,1.00,2.00,No such rule\n"  # 7: bad bounds_source and an unknown rule
    "MULTI,,,,,,,1.00,2.00,\n"  # 8: sold in two marketplaces
    "MULTI,A1F83G8C2ARO7P,,,,,,1.00,2.00,\n"  # 9: not sold in that marketplace
    ",,,,,,,1.00,2.00,\n"  # 10: no SKU
    "RED-1,,1\n"  # 11: too few values
    "GREEN-3,,8.00,15,3.00,margin,20,5.00,50.00,\n"  # 12: a min price given where it is computed
    "GREEN-3,,,,,roi,,,50.00,\n"  # 13: roi without cost, referral, target
)


def test_every_kind_of_bad_row_is_reported_with_row_and_column_and_nothing_is_written(world: World) -> None:
    row = world.create(BAD)
    assert row.status == BoundsImport.Status.INVALID
    found = _errors(row)
    expected = {
        (2, "sku"),
        (3, "sku"),
        (4, "cost"),
        (4, "referral_fee_percent"),
        (4, "fba_fee"),
        (5, "min_price"),
        (6, "sku"),
        (7, "bounds_source"),
        (7, "rule"),
        (8, "marketplace_id"),
        (9, "marketplace_id"),
        (10, "sku"),
        (11, ""),
        (13, "cost"),
    }
    assert expected <= found, sorted(expected - found)
    messages = {(n, c): m for n, c, m in row.errors}
    assert "THEIRS-9" in messages[(3, "sku")] and "No listing of yours" in messages[(3, "sku")]
    assert "row 5" in messages[(6, "sku")]
    assert "A1PA6795UKMFR9" in messages[(8, "marketplace_id")]
    assert "above the maximum" in messages[(5, "min_price")]
    assert row.error_count == len(row.errors) >= len(expected)
    # Row 12 is a duplicate of row 7's GREEN-3 as well; its min price conflict is reported too.
    assert (12, "sku") in found
    assert row.csv_text == ""
    assert not SkuPricing.objects.exists()
    with pytest.raises(RepricingError) as refused:
        world.apply(row)
    assert refused.value.code == "not_ready"


def test_a_min_price_given_where_it_is_computed_is_refused(world: World) -> None:
    header = "sku,cost,referral_fee_percent,fba_fee,bounds_source,target_percent,min_price\n"
    row = world.create(header + "RED-1,8.00,15,3.22,margin,20,15.00\nBLUE-2,8.00,15,3.22,margin,20,17.27\n")
    assert [(n, c) for n, c, _ in row.errors] == [(2, "min_price")]
    assert "17.27" in row.errors[0][2]  # it names the computed value; row 3 gives exactly that and passes


def test_one_bad_row_among_good_ones_leaves_everything_unwritten(world: World) -> None:
    row = world.create("sku,min_price,max_price\nRED-1,10.00,20.00\nBLUE-2,10.00,x\nGREEN-3,10.00,20.00\n")
    assert row.status == BoundsImport.Status.INVALID
    assert [(n, c) for n, c, _ in row.errors] == [(3, "max_price")]
    assert not SkuPricing.objects.exists()


def test_applying_checks_again_and_writes_nothing_when_a_row_no_longer_passes(world: World) -> None:
    other = rule_create(name="Match lowest", config=BEAT, actor=world.owner, actor_role=Role.OWNER)
    row = world.create(
        "sku,min_price,max_price,rule\nRED-1,10.00,20.00,Beat by a cent\nBLUE-2,10.00,20.00,Match lowest\n"
    )
    assert row.status == BoundsImport.Status.READY
    rule_delete(rule=other, actor=world.owner, actor_role=Role.OWNER)  # between preview and confirm
    result = world.apply(row)
    assert result.status == BoundsImport.Status.INVALID
    assert [(n, c) for n, c, _ in result.errors] == [(3, "rule")]
    assert not SkuPricing.objects.exists(), "the good row is not written either"
    assert not AuditEvent.objects.filter(action="repricing.bounds_import_apply").exists()


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_read_only_roles_can_neither_upload_nor_apply(world: World, role: str) -> None:
    with pytest.raises(RepricingError) as refused:
        world.create(GOOD, role=role)
    assert refused.value.status == 403
    row = world.create(GOOD)
    with pytest.raises(RepricingError):
        world.apply(row, role=role)
    assert not SkuPricing.objects.exists()


def test_a_member_restricted_to_one_account_cannot_import_into_another(world: World) -> None:
    second = make_connection(world.tenant)
    hidden = make_listing(second, sku="HIDDEN-1")
    assistant = make_member(world.tenant, Role.OPERATOR)
    assign_perm("amazon.view_sellerconnection", assistant, world.connection)
    row = imports.bounds_import_create(
        data=b"sku,min_price,max_price\nHIDDEN-1,1.00,2.00\nRED-1,1.00,2.00\n",
        file_name="x.csv",
        actor=assistant,
        actor_role=Role.OPERATOR,
    )
    assert [(n, c) for n, c, _ in row.errors] == [(2, "sku")]
    assert _pricing(hidden) is None
    text = imports.bounds_export_csv(user=assistant)
    assert "RED-1" in text and "HIDDEN-1" not in text


# --- The file as a whole ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "code", "words"),
    [
        (b"", "invalid_file", "empty"),
        (b'sku,min_price\nRED-1,"10.00\n', "invalid_file", "not valid CSV"),
        (b'sku,min_price\nRED-1,"10"00\n', "invalid_file", "Line 2"),
        (b"sku,min_price,colour\nRED-1,1,red\n", "invalid_file", "Unknown column: colour"),
        (b"min_price,max_price\n1,2\n", "invalid_file", "must be sku"),
        (b"sku,min_price,min_price\nRED-1,1,2\n", "invalid_file", "more than once"),
        (b"sku,,max_price\nRED-1,1,2\n", "invalid_file", "Column 2"),
        (b"sku\nRED-1\n", "invalid_file", "only the sku column"),
        ("sku,min_price\nRÉD-1,1\n".encode("latin-1"), "invalid_file", "not UTF-8"),
        (b"sku,min_price\x00\nRED-1,1\n", "invalid_file", "not a text CSV"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_and_nothing_is_stored(
    world: World, content: bytes, code: str, words: str
) -> None:
    with pytest.raises(imports.ImportFileError) as refused:
        world.create(content)
    assert refused.value.code == code
    assert words in refused.value.message
    assert not BoundsImport.objects.exists()


@override_settings(REPRICING_IMPORT_MAX_BYTES=100)
def test_a_file_over_the_size_limit_is_refused(world: World) -> None:
    with pytest.raises(imports.ImportFileError) as refused:
        world.create("sku,min_price,max_price\n" + "RED-1,1.00,2.00\n" * 10)
    assert refused.value.code == "file_too_large" and refused.value.status == 413
    assert not BoundsImport.objects.exists()


@override_settings(REPRICING_IMPORT_MAX_ROWS=3)
def test_a_file_over_the_row_limit_is_refused(world: World) -> None:
    with pytest.raises(imports.ImportFileError) as refused:
        world.create("sku,min_price\n" + "".join(f"SKU-{i},1\n" for i in range(4)))
    assert refused.value.code == "too_many_rows" and refused.value.status == 413
    world.create(
        "sku,min_price\n" + "".join(f"SKU-{i},1\n" for i in range(3)) + "\n\n"
    )  # blank rows do not count


def test_a_byte_order_mark_and_windows_line_ends_are_fine(world: World) -> None:
    row = world.create(b"\xef\xbb\xbfsku,min_price,max_price\r\nRED-1,10.00,20.00\r\n")
    assert row.status == BoundsImport.Status.READY
    assert row.columns == ["sku", "min_price", "max_price"]


def test_semicolons_and_decimal_commas_from_a_european_spreadsheet(world: World) -> None:
    row = world.create('SKU;Min Price;max_price;tags\nRED-1;12,50;20,00;"summer;sale"\n')
    assert row.status == BoundsImport.Status.READY, row.errors
    assert row.delimiter == ";"
    world.apply(row)
    red = _pricing(world.red)
    assert red is not None
    assert (red.min_price, red.max_price, red.tags) == (
        Decimal("12.50"),
        Decimal("20.00"),
        ["sale", "summer"],
    )


def test_thousands_separators_are_refused_not_guessed(world: World) -> None:
    row = world.create('sku,min_price,max_price\nRED-1,10.00,"1,200.00"\n')
    assert [(n, c) for n, c, _ in row.errors] == [(2, "max_price")]


# --- Export and round trip --------------------------------------------------------------------------------


def test_the_export_imported_unchanged_changes_nothing(world: World) -> None:
    formula = make_listing(world.connection, sku="=HYPERLINK(1)")
    sku_pricing_update(
        listing=world.red,
        values={
            "cost": "8.00",
            "referral_fee_percent": "15",
            "fba_fee": "3.22",
            "bounds_source": "margin",
            "target_percent": "20",
            "max_price": "39.99",
            "rule": world.rule,
            "tags": ["summer", "-minus"],
        },
        actor=world.owner,
        actor_role=Role.OWNER,
    )
    sku_pricing_update(
        listing=world.multi_de,
        values={"min_price": "9.99", "max_price": "19.99"},
        actor=None,
        actor_role=Role.OWNER,
    )
    sku_pricing_update(
        listing=formula, values={"min_price": "1.00", "max_price": "2.00"}, actor=None, actor_role=Role.OWNER
    )
    exported = imports.bounds_export_csv(user=world.owner, byte_order_mark=True)
    assert exported.startswith("\ufeffsku,marketplace_id,cost,")
    rows = list(csv.reader(io.StringIO(exported.lstrip("\ufeff"))))
    by_sku = {(r[0], r[1]): r for r in rows[1:]}
    assert ("'=HYPERLINK(1)", US) in by_sku, "a cell a spreadsheet would run as a formula is defused"
    assert by_sku[("RED-1", US)][2:] == ["8.00", "15.00", "3.22", "margin", "20.00", "17.27", "39.99",
                                         "Beat by a cent", "'-minus;summer"]  # fmt: skip
    assert ("THEIRS-9", US) not in by_sku
    assert len(rows) == 1 + 6  # every listing of the company, with or without settings

    row = world.create(exported.encode(), name="export.csv")
    assert row.status == BoundsImport.Status.READY, row.errors
    assert row.preview["counts"]["changing"] == 0
    assert row.preview["counts"]["unchanged"] == 6


# --- Large files: background jobs with progress -----------------------------------------------------------


@override_settings(REPRICING_IMPORT_INLINE_ROWS=2)
def test_a_large_file_is_checked_and_applied_by_jobs_with_progress(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    text = "sku,min_price,max_price\nRED-1,10.00,20.00\nBLUE-2,11.00,21.00\nGREEN-3,12.00,22.00\n"
    with django_capture_on_commit_callbacks(execute=False) as queued:
        row = world.create(text)
    assert row.status == BoundsImport.Status.VALIDATING and len(queued) == 1
    imports.bounds_import_check_task.apply(
        kwargs={"tenant_id": world.tenant.pk, "import_id": str(row.public_id)}
    )
    row.refresh_from_db()
    assert row.status == BoundsImport.Status.READY and row.preview["counts"]["changing"] == 3
    check = JobRun.objects.get(kind="repricing.bounds_import_check")
    assert check.outcome == "succeeded" and (check.progress_done, check.progress_total) == (3, 3)
    assert check.counts == {"rows": 3, "errors": 0, "changing": 3}
    assert row.job_run == check

    with django_capture_on_commit_callbacks(execute=False) as queued:
        row = world.apply(row)
    assert row.status == BoundsImport.Status.APPLYING and len(queued) == 1
    assert not SkuPricing.objects.exists()
    imports.bounds_import_apply_task.apply(
        kwargs={"tenant_id": world.tenant.pk, "import_id": str(row.public_id)}
    )
    row.refresh_from_db()
    assert row.status == BoundsImport.Status.APPLIED
    assert SkuPricing.objects.count() == 3
    run = JobRun.objects.get(kind="repricing.bounds_import_apply")
    assert run.outcome == "succeeded" and run.counts["changed"] == 3
    assert AuditEvent.objects.filter(action="repricing.bounds_import_apply").count() == 1


@override_settings(REPRICING_IMPORT_INLINE_ROWS=0)
def test_a_large_file_with_errors_ends_invalid_after_its_check_job(world: World) -> None:
    row = world.create("sku,min_price\nNOPE,1\n")
    imports.bounds_import_check_task.apply(
        kwargs={"tenant_id": world.tenant.pk, "import_id": str(row.public_id)}
    )
    row.refresh_from_db()
    assert row.status == BoundsImport.Status.INVALID and row.error_count == 1


# --- API and pages ----------------------------------------------------------------------------------------


def _api(world: World, role: str = Role.OWNER) -> APIClient:
    user = world.owner if role == Role.OWNER else make_member(world.tenant, role)
    raw, _ = token_issue(user_id=user.pk, tenant_id=world.tenant.pk, session_key="tools")
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


GOOD_SMALL = "sku,min_price,max_price\nRED-1,10.00,20.00\nBLUE-2,11.00,21.00\n"


@pytest.mark.parametrize("how", ["json", "text/csv", "multipart"])
def test_the_api_takes_the_file_as_json_a_csv_body_or_an_upload(world: World, how: str) -> None:
    client = _api(world)
    url = reverse("api:repricing-bounds-import-list")
    if how == "json":
        response = client.post(url, {"csv": GOOD_SMALL, "file_name": "a.csv"}, format="json")
    elif how == "text/csv":
        response = client.generic("POST", url, GOOD_SMALL.encode(), content_type="text/csv")
    else:
        upload = SimpleUploadedFile("a.csv", GOOD_SMALL.encode(), content_type="text/csv")
        response = client.post(url, {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "ready" and body["errors"] == []
    assert body["preview"]["counts"]["changing"] == 2
    apply = client.post(reverse("api:repricing-bounds-import-apply", kwargs={"public_id": body["public_id"]}))
    assert apply.status_code == 200 and apply.json()["status"] == "applied"
    assert SkuPricing.objects.count() == 2
    again = client.post(reverse("api:repricing-bounds-import-apply", kwargs={"public_id": body["public_id"]}))
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_applied"


def test_the_api_lists_every_row_error_and_refuses_unreadable_or_oversized_files(world: World) -> None:
    client = _api(world)
    url = reverse("api:repricing-bounds-import-list")
    response = client.generic("POST", url, BAD.encode(), content_type="text/csv")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "invalid" and body["error_count"] == len(body["errors"]) >= 14
    assert {"row": 3, "column": "sku"} in [{"row": e["row"], "column": e["column"]} for e in body["errors"]]
    detail = client.get(
        reverse("api:repricing-bounds-import-detail", kwargs={"public_id": body["public_id"]})
    )
    assert detail.status_code == 200 and detail.json()["errors"] == body["errors"]

    bad = client.generic("POST", url, b"sku,colour\nRED-1,red\n", content_type="text/csv")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_file" and "colour" in bad.json()["error"]["message"]
    with override_settings(REPRICING_IMPORT_MAX_BYTES=50):
        big = client.generic("POST", url, GOOD_SMALL.encode() * 3, content_type="text/csv")
        assert big.status_code == 413 and big.json()["error"]["code"] == "file_too_large"
        upload = SimpleUploadedFile("a.csv", GOOD_SMALL.encode() * 3, content_type="text/csv")
        assert client.post(url, {"file": upload}, format="multipart").status_code == 413
    extra = client.post(url, {"file": SimpleUploadedFile("a.csv", b"x"), "mode": "x"}, format="multipart")
    assert extra.status_code == 400 and "mode" in extra.json()["error"]["fields"]
    assert BoundsImport.objects.count() == 1


def test_the_api_apply_answers_409_and_keeps_the_errors_when_a_row_no_longer_passes(world: World) -> None:
    client = _api(world)
    other = rule_create(name="Temp", config=BEAT, actor=world.owner, actor_role=Role.OWNER)
    created = client.post(
        reverse("api:repricing-bounds-import-list"),
        {"csv": "sku,min_price,max_price,rule\nRED-1,10.00,20.00,Temp\n"},
        format="json",
    ).json()
    RepricingRule.objects.filter(pk=other.pk).delete()
    response = client.post(
        reverse("api:repricing-bounds-import-apply", kwargs={"public_id": created["public_id"]})
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "import_invalid"
    detail = client.get(
        reverse("api:repricing-bounds-import-detail", kwargs={"public_id": created["public_id"]})
    )
    assert detail.json()["status"] == "invalid" and detail.json()["errors"][0]["column"] == "rule"
    assert not SkuPricing.objects.exists()


def test_the_api_upload_is_idempotent_with_a_key(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    client = _api(world)
    url = reverse("api:repricing-bounds-import-list")
    with django_capture_on_commit_callbacks(execute=True):  # the first answer is stored on commit
        first = client.generic(
            "POST", url, GOOD_SMALL.encode(), content_type="text/csv", HTTP_IDEMPOTENCY_KEY="k1"
        )
    second = client.generic(
        "POST", url, GOOD_SMALL.encode(), content_type="text/csv", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert first.json()["public_id"] == second.json()["public_id"]
    other = client.generic(
        "POST", url, b"sku,min_price\nRED-1,1\n", content_type="text/csv", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert other.status_code == 422
    assert BoundsImport.objects.count() == 1


def test_the_export_needs_see_money(world: World) -> None:
    url = reverse("api:repricing-sku-pricing-export")
    assert _api(world, Role.VIEWER).get(url).status_code == 403
    response = _api(world, Role.ANALYST).get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.content.decode().startswith("sku,marketplace_id,")


def test_pages_upload_show_every_error_then_a_fixed_file_applies(world: World) -> None:
    client = Client()
    client.force_login(world.owner)
    response = client.post(
        reverse("repricing:bounds_import"), {"file": SimpleUploadedFile("bad.csv", BAD.encode())}
    )
    assert response.status_code == 302
    bad = BoundsImport.objects.get(file_name="bad.csv")
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "problems to fix" in html and "No listing of yours has the SKU “THEIRS-9”" in html
    errors = client.get(reverse("repricing:bounds_import_errors", kwargs={"public_id": bad.public_id}))
    lines = list(csv.reader(io.StringIO(errors.content.decode().lstrip("\ufeff"))))
    assert lines[0] == ["row", "column", "message"] and len(lines) == 1 + bad.error_count

    response = client.post(
        reverse("repricing:bounds_import"), {"file": SimpleUploadedFile("good.csv", GOOD.encode())}
    )
    page = client.get(response["Location"])
    assert "Apply to 3 SKUs" in page.content.decode()
    good = BoundsImport.objects.get(file_name="good.csv")
    client.post(reverse("repricing:bounds_import_apply", kwargs={"public_id": good.public_id}))
    good.refresh_from_db()
    assert good.status == BoundsImport.Status.APPLIED and SkuPricing.objects.count() == 3

    unreadable = client.post(
        reverse("repricing:bounds_import"), {"file": SimpleUploadedFile("x.csv", b"sku,colour\nA,b\n")}
    )
    assert unreadable.status_code == 400 and "Unknown column: colour" in unreadable.content.decode()
    export = client.get(reverse("repricing:bounds_export"))
    assert export.status_code == 200 and export.content.decode().startswith("\ufeffsku,")


@override_settings(REPRICING_IMPORT_INLINE_ROWS=0)
def test_the_page_of_a_file_being_checked_shows_progress_and_reloads(world: World) -> None:
    row = world.create(GOOD_SMALL)
    client = Client()
    client.force_login(world.owner)
    page = client.get(reverse("repricing:bounds_import_detail", kwargs={"public_id": row.public_id}))
    assert page.status_code == 200 and page["Refresh"] == "3"
    assert "Checking every row" in page.content.decode()
