"""Switching the `default` alias to the owner role for schema changes only."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings
from django.db import connections

_CREDENTIAL_KEYS = ("USER", "PASSWORD", "HOST", "PORT", "NAME")


@contextlib.contextmanager
def as_owner(alias: str = "default") -> Iterator[None]:
    """Run the block with `alias` connected as the schema owner (migrate, test database setup)."""
    connection = connections[alias]
    saved = {key: connection.settings_dict.get(key) for key in _CREDENTIAL_KEYS}
    owner = settings.DATABASE_OWNER
    connection.close()
    for key in ("USER", "PASSWORD", "HOST", "PORT"):
        connection.settings_dict[key] = owner.get(key)
    if not connection.settings_dict["NAME"].startswith("test_"):
        connection.settings_dict["NAME"] = owner.get("NAME")
    try:
        yield
    finally:
        connection.close()
        name = connection.settings_dict["NAME"]
        connection.settings_dict.update(saved)
        # A test database created under the owner keeps its name for the runtime role too.
        if name and name.startswith("test_"):
            connection.settings_dict["NAME"] = name
