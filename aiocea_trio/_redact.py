"""Keeping signatures, secrets and API keys out of log records and error texts.

A signed GET carries its signature in the URL, and httpx logs every request
line at INFO (``HTTP Request: GET https://...&signature=...``). A filter on the
loggers of httpx and httpcore rewrites such records before any handler sees
them; the same ``scrub`` cleans every text this library puts into an exception.
"""

from __future__ import annotations

import logging
import re
from typing import Final
from urllib.parse import quote, unquote

__all__ = ["install_log_redaction", "register_secret", "scrub"]

REDACTED: Final = "<redacted>"
# The value of a signature parameter, URL-encoded or decoded, in a query, a JSON
# echo or a form body.
_SIGNATURE = re.compile(r"""(signature["']?\s*[=:]\s*["']?)[^&\s"',}]+""", re.IGNORECASE)
# Loggers that see request URLs: httpx logs request lines, httpcore its traces.
_HTTP_LOGGERS: Final = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_MIN_SECRET_CHARS: Final = 8  # shorter strings would redact ordinary words
_secrets: set[str] = set()


def register_secret(value: str | bytes | None) -> None:
    """Remember a secret (an API key, an HMAC secret) so that no log record or
    error text made afterwards shows it, in any of its encodings."""
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return
    if not value or len(value) < _MIN_SECRET_CHARS:
        return
    _secrets.update({value, quote(value, safe=""), unquote(value)})


def scrub(text: str, *also: str) -> str:
    """``text`` without signature values, registered secrets or the strings in ``also``."""
    if "ignature" in text:
        text = _SIGNATURE.sub(lambda m: m.group(1) + REDACTED, text)
    for secret in (*also, *_secrets):
        if not secret:
            continue
        for form in {secret, unquote(secret)}:
            if form and form in text:
                text = text.replace(form, REDACTED)
    return text


class _RedactingFilter(logging.Filter):
    """Rewrites a record's message when it holds a signature or a known secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error path
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


_FILTER: Final = _RedactingFilter()


def install_log_redaction() -> None:
    """Attach the redacting filter to the HTTP loggers (idempotent)."""
    for name in _HTTP_LOGGERS:
        log = logging.getLogger(name)
        if _FILTER not in log.filters:
            log.addFilter(_FILTER)
