"""Django's cache as JSON: nothing read from Redis is ever unpickled.

Django's default Redis serializer pickles, so anyone who can write a key (a local user of an
unprotected Redis, a leaked password) could make the web process run code. Integers stay
plain, as in Django's own serializer, so `incr` (the rate limits) keeps working in Redis.
"""

from __future__ import annotations

import json
import logging

logger = logging.getLogger(__name__)


class JsonSerializer:
    def __init__(self, protocol: int | None = None) -> None:
        """Django passes a pickle protocol; JSON has none."""

    def dumps(self, obj: object) -> bytes | int:
        if type(obj) is int:  # not bool: True must come back as True
            return obj
        return json.dumps(obj, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> object:
        try:
            return int(data)
        except ValueError:
            pass
        try:
            return json.loads(data)
        except ValueError:  # a pickle or other bytes someone wrote: a miss, never code
            logger.warning("ignored a cache value that is not JSON")
            return None
