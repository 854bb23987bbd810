"""Credentials at rest: MultiFernet, each ciphertext bound to where it belongs.

Keys come from `settings.FIELD_ENCRYPTION_KEYS` (newest first: the first encrypts, all decrypt). They
are read on every call (the parsed MultiFernet is cached per key list), so `override_settings` and a
key rotation take effect without a restart.

Fernet has no associated data, so the binding travels inside the token: the plaintext is
`{"v": <secret>, "ctx": "<tenant_id>:<model>:<row_key>:<field>"}` and decryption refuses a token
whose `ctx` differs from the one the caller expects. A ciphertext copied into another tenant's row,
another row of the same tenant, or another column therefore fails with `CredentialDecryptionError`;
so does a token made with a key we no longer hold. There is never a plaintext fallback.
"""

from __future__ import annotations

import functools
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialDecryptionError(Exception):
    """A stored secret could not be decrypted for this place (wrong key, tampered, or moved)."""


@functools.lru_cache(maxsize=8)
def _parse(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    try:
        fernets = [Fernet(key.encode()) for key in keys]
    except (ValueError, TypeError) as error:
        # The message never includes the key itself.
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64 bytes)."
        ) from error
    return MultiFernet(fernets), fernets[0]


def _keys() -> tuple[MultiFernet, Fernet]:
    keys = tuple(getattr(settings, "FIELD_ENCRYPTION_KEYS", None) or ())
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is not set: the Amazon credentials cannot be encrypted or read. "
            "Run through `python -m config.services` in development or set it in the environment."
        )
    return _parse(keys)


def binding(*, tenant_id: int, model: str, row_key: str, field: str) -> str:
    """The context a ciphertext is bound to."""
    return f"{tenant_id}:{model}:{row_key}:{field}"


def encrypt_bound(value: str, *, context: str) -> str:
    """Encrypt `value` with the newest key, bound to `context`. Returns the token as text."""
    multi, _newest = _keys()
    payload = json.dumps({"v": value, "ctx": context}, separators=(",", ":")).encode()
    return multi.encrypt(payload).decode("ascii")


def decrypt_bound(token: str, *, context: str, ttl: int | None = None) -> str:
    """Decrypt a token made by `encrypt_bound` for exactly this `context`, or raise."""
    multi, _newest = _keys()
    try:
        payload = json.loads(multi.decrypt(token.encode("ascii"), ttl=ttl))
    except (InvalidToken, ValueError, UnicodeError) as error:
        raise CredentialDecryptionError(
            f"cannot decrypt the secret for {context}: wrong key or damaged value"
        ) from error
    if (
        not isinstance(payload, dict)
        or payload.get("ctx") != context
        or not isinstance(payload.get("v"), str)
    ):
        raise CredentialDecryptionError(f"the secret stored for {context} belongs somewhere else")
    return payload["v"]


def encrypt_secret(value: str, *, tenant_id: int, field: str, row_key: str, model: str) -> str:
    return encrypt_bound(
        value, context=binding(tenant_id=tenant_id, model=model, row_key=row_key, field=field)
    )


def decrypt_secret(token: str, *, tenant_id: int, field: str, row_key: str, model: str) -> str:
    return decrypt_bound(
        token, context=binding(tenant_id=tenant_id, model=model, row_key=row_key, field=field)
    )


def uses_newest_key(token: str) -> bool:
    """True when the token was made with the newest key (nothing to rotate)."""
    _multi, newest = _keys()
    try:
        newest.decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True


def rotate_token(token: str) -> str:
    """Re-encrypt with the newest key (binding unchanged: it is inside the plaintext)."""
    multi, _newest = _keys()
    try:
        return multi.rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as error:
        raise CredentialDecryptionError("cannot rotate a value no configured key decrypts") from error
