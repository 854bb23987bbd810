"""Dashboard bearer tokens: short-lived, kept in the browser's sessionStorage, stored hashed in Redis.

A token has an idle expiry (Redis TTL, renewed on use, never past the absolute expiry) and an absolute
expiry (checked on every use). Logging out revokes every token the browser session was given.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from django.conf import settings

from config.redis import redis_client

PREFIX = "sp_dt_"
_KEY = "dashtoken:{}"
_SESSION_SET = "dashtoken-session:{}"
_USER_SET = "dashtoken-user:{}"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class DashboardToken:
    user_id: int
    tenant_id: int
    session_key: str
    absolute_expires_at: float
    mfa_verified: bool = False


def token_issue(
    *, user_id: int, tenant_id: int, session_key: str, mfa_verified: bool = False
) -> tuple[str, int]:
    """Return (raw token, seconds until idle expiry). Only the hash is stored.

    `mfa_verified` records whether the session had passed two-factor authentication, so a company
    that starts requiring it refuses older tokens at once."""
    raw = PREFIX + secrets.token_urlsafe(32)
    digest = _hash(raw)
    idle = settings.DASHBOARD_TOKEN_IDLE_SECONDS
    record = {
        "user_id": user_id,
        "tenant_id": tenant_id,
        "session_key": session_key,
        "absolute_expires_at": time.time() + settings.DASHBOARD_TOKEN_ABSOLUTE_SECONDS,
        "mfa_verified": mfa_verified,
    }
    client = redis_client()
    pipe = client.pipeline()
    pipe.set(_KEY.format(digest), json.dumps(record), ex=idle)
    pipe.sadd(_SESSION_SET.format(session_key), digest)
    pipe.expire(_SESSION_SET.format(session_key), settings.DASHBOARD_TOKEN_ABSOLUTE_SECONDS)
    pipe.sadd(_USER_SET.format(user_id), digest)
    pipe.expire(_USER_SET.format(user_id), settings.DASHBOARD_TOKEN_ABSOLUTE_SECONDS)
    pipe.execute()
    return raw, idle


def token_check(raw: str) -> DashboardToken | None:
    """The token's record if it is live; renews its idle expiry (capped at the absolute one)."""
    if not raw.startswith(PREFIX) or len(raw) > 100:
        return None
    client = redis_client()
    key = _KEY.format(_hash(raw))
    data = client.get(key)
    if data is None:
        return None
    record = DashboardToken(**json.loads(data))
    remaining = record.absolute_expires_at - time.time()
    if remaining <= 0:
        client.delete(key)
        return None
    client.expire(key, max(1, int(min(settings.DASHBOARD_TOKEN_IDLE_SECONDS, remaining))))
    return record


def tokens_revoke_for_session(session_key: str) -> int:
    """Logout and tenant switch: every token this browser session was given."""
    return _revoke_set(_SESSION_SET.format(session_key))


def tokens_revoke_for_user(user_id: int) -> int:
    """Password reset, deactivation: every token the person holds, in every browser."""
    return _revoke_set(_USER_SET.format(user_id))


def _revoke_set(set_key: str) -> int:
    client = redis_client()
    digests = [d.decode() if isinstance(d, bytes) else d for d in client.smembers(set_key)]
    pipe = client.pipeline()
    for digest in digests:
        pipe.delete(_KEY.format(digest))
    pipe.delete(set_key)
    pipe.execute()
    return len(digests)
