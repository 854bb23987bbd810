"""A logging filter that masks anything shaped like a credential before it is written."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    re.compile(r"(?i)(authorization:\s*bearer\s+)[^\s'\"]+"),
    re.compile(
        r"(?i)((?:client_secret|refresh_token|access_token|password|api_key|secret)['\"]?\s*[:=]\s*['\"]?)[^\s'\",&}]+"
    ),
    re.compile(r"(Atzr\|)[A-Za-z0-9\-_]+"),  # LWA refresh tokens
    re.compile(r"(Atza\|)[A-Za-z0-9\-_]+"),  # LWA access tokens
    re.compile(r"(sp_(?:live|key)_)[A-Za-z0-9\-_]+"),  # our API keys
]


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
