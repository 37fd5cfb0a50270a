"""The secrets of the sessions open now, to be masked wherever a library may log them.

The device layer registers a session's passwords for as long as the session lives; the
logging set-up (``service.observability.logging``) masks them in every library log line.
Both hold this one registry, so neither depends on the other.
"""

from __future__ import annotations

import re
import threading

__all__ = ["LIVE_SECRETS", "LiveSecrets"]


class LiveSecrets:
    """The secrets of sessions open now, masked in every library log line.

    Unicon logs what it sends at DEBUG, the password answers of its login dialogs included
    (the canary test found it), and its per-connection loggers are shared by connections to
    the same host opened in the same second, so masking is done here for all of them.
    """

    MASK = "*****"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._pattern: re.Pattern[str] | None = None
        self._dirty = False

    def add(self, secrets: list[str]) -> list[str]:
        """Register; returns the forms to pass back to ``remove``."""
        forms = sorted({form for secret in secrets if secret for form in (secret, repr(secret)[1:-1])})
        with self._lock:
            for form in forms:
                self._counts[form] = self._counts.get(form, 0) + 1
            self._dirty = True
        return forms

    def remove(self, forms: list[str]) -> None:
        with self._lock:
            for form in forms:
                left = self._counts.get(form, 0) - 1
                if left > 0:
                    self._counts[form] = left
                else:
                    self._counts.pop(form, None)
            self._dirty = True

    def mask(self, text: str) -> str:
        if self._dirty:  # compiled when a line needs it, not at every login: most lines never pass the level
            with self._lock:
                ordered = sorted(self._counts, key=len, reverse=True)  # longest first: no partial masks
                self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
                self._dirty = False
        pattern = self._pattern
        return text if pattern is None else pattern.sub(self.MASK, text)


LIVE_SECRETS = LiveSecrets()
