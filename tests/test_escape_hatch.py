"""The escape hatches from tenant scoping are greppable, and used only where this file allows.

- `.all_tenants` (the unscoped manager of tenant-owned models) bypasses the application lock; the
  database lock (RLS) still applies unless it is combined with the platform connection.
- the `platform` database alias (BYPASSRLS) must only be reached through tenants/platform.py, which
  records each use.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = [
    "config",
    "tenants",
    "accounts",
    "amazon",
    "repricing",
    "inventory",
    "advertising",
    "reports",
    "privacy",
    "support",
]

ALLOWED = {
    "all_tenants": {
        "tenants/models.py",  # defines it
        "tenants/platform.py",  # the audited platform queryset
        "tenants/admin.py",  # staff admin, through the platform connection
    },
    "platform_alias": {
        "tenants/platform.py",
        "amazon/management/commands/rotate_encryption_keys.py",  # cross-tenant key rotation, audited
        "tenants/admin.py",
        "config/settings.py",
    },
}
PATTERNS = {
    "all_tenants": re.compile(r"\.all_tenants\b"),
    "platform_alias": re.compile(
        r"""using\(\s*["']platform["']\s*\)|connections\[\s*["']platform["']\s*\]"""
    ),
}


def _sources() -> list[Path]:
    files: list[Path] = []
    for directory in SOURCE_DIRS:
        files += [
            p
            for p in (ROOT / directory).rglob("*.py")
            if "tests" not in p.parts and "migrations" not in p.parts
        ]
    return files


def test_escape_hatches_are_used_only_in_listed_places() -> None:
    offenders: dict[str, list[str]] = {}
    for path in _sources():
        text = path.read_text()
        relative = path.relative_to(ROOT).as_posix()
        for name, pattern in PATTERNS.items():
            if pattern.search(text) and relative not in ALLOWED[name]:
                offenders.setdefault(name, []).append(relative)
    assert not offenders, f"unlisted escape-hatch use: {offenders}"


def test_the_scan_finds_the_known_uses() -> None:
    # A scan that finds nothing would pass forever; make sure it sees the definitions.
    found = {
        p.relative_to(ROOT).as_posix() for p in _sources() if PATTERNS["all_tenants"].search(p.read_text())
    }
    assert {"tenants/platform.py", "tenants/admin.py"} <= found
