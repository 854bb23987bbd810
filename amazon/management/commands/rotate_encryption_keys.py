"""`manage.py rotate_encryption_keys [--batch-size N] [--check]`

Re-encrypts every stored Amazon secret with the newest key of FIELD_ENCRYPTION_KEYS. To rotate:
prepend a new key (`NEW,OLD`), deploy, run this command until it reports 0 values on old keys, then
drop the old key.

Cross-tenant maintenance, so it reads and writes through the audited platform connection (one
PlatformAccess record per run; that role bypasses row-level security). Batches are locked, rewritten
and committed one at a time, so an interrupted run loses nothing and the next run resumes: a value
already on the newest key is skipped. The binding (tenant, row, field) lives inside the plaintext, so
rotation keeps it unchanged.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from amazon import crypto
from amazon.crypto import CredentialDecryptionError
from amazon.models import SellerConnection
from tenants.platform import ALIAS, platform_queryset

REASON = "rotate_encryption_keys"
DEFAULT_BATCH_SIZE = 200
COLUMNS = tuple(SellerConnection.SECRET_FIELDS.values())


class Command(BaseCommand):
    help = "Re-encrypt every Amazon credential with the newest FIELD_ENCRYPTION_KEYS key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
        parser.add_argument("--check", action="store_true", help="Only report; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size: int = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        rows = platform_queryset(
            SellerConnection,
            actor=None,
            reason=REASON,
            detail="check" if options["check"] else f"batch size {batch_size}",
        ).order_by("pk")
        if not options["check"]:
            self._rotate(rows, batch_size)
        old, broken = self._count_old(rows, batch_size)
        self.stdout.write(f"{old} value(s) still use an old key")
        if broken:
            self.stdout.write(f"{broken} value(s) no configured key can decrypt")
        if not options["check"] and (old or broken):
            raise CommandError(f"{old + broken} value(s) were not rotated")

    def _rotate(self, rows: Any, batch_size: int) -> None:
        total = rows.count()
        seen = rotated = failed = 0
        last_pk = 0
        while True:
            with transaction.atomic(using=ALIAS):
                batch = list(
                    rows.filter(pk__gt=last_pk)
                    .select_for_update(of=("self",))
                    .only("pk", *COLUMNS)[:batch_size]
                )
                if not batch:
                    break
                for row in batch:
                    changes: dict[str, str] = {}
                    for column in COLUMNS:
                        token = getattr(row, column)
                        if not token or crypto.uses_newest_key(token):
                            continue
                        try:
                            changes[column] = crypto.rotate_token(token)
                        except CredentialDecryptionError:
                            failed += 1
                    if changes:
                        rows.filter(pk=row.pk).update(**changes)
                        rotated += len(changes)
                last_pk = batch[-1].pk
                seen += len(batch)
            self.stdout.write(f"{seen}/{total} connections checked, re-encrypted {rotated} value(s)")
        self.stdout.write(f"done: re-encrypted {rotated} value(s), {failed} could not be decrypted")

    def _count_old(self, rows: Any, batch_size: int) -> tuple[int, int]:
        old = broken = 0
        for row in rows.only("pk", *COLUMNS).iterator(chunk_size=batch_size):
            for column in COLUMNS:
                token = getattr(row, column)
                if not token or crypto.uses_newest_key(token):
                    continue
                try:
                    crypto.rotate_token(token)  # decryptable with an older key?
                    old += 1
                except CredentialDecryptionError:
                    broken += 1
        return old, broken
