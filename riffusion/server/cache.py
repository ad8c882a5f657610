"""Encoded responses kept in memory, so identical requests (a shared link replayed, a page reloaded) are
answered without the model."""

from __future__ import annotations

import collections
import threading
import typing as T


class ResponseCache:
    """Least recently used out first, bounded in entries and in bytes of encoded data.

    Parameters
    ----------
    max_entries : int
        Most responses kept; 0 keeps none.
    max_bytes : int
        Most characters of string values (the base64 image and audio) kept over all entries.
    """

    def __init__(self, max_entries: int, max_bytes: int):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._responses: collections.OrderedDict[T.Hashable, tuple[dict, int]] = collections.OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._lock = threading.Lock()

    def get(self, key: T.Hashable) -> T.Optional[dict]:
        """The response stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            if key in self._responses:
                self._responses.move_to_end(key)
                self._hits += 1
                return self._responses[key][0]
        return None

    def put(self, key: T.Hashable, response: dict) -> None:
        """Keep ``response``, dropping the least recently used ones until both bounds hold."""
        size = sum(len(value) for value in response.values() if isinstance(value, str))
        if self.max_entries <= 0 or size > self.max_bytes:
            return
        with self._lock:
            if key in self._responses:
                self._bytes -= self._responses.pop(key)[1]
            self._responses[key] = (response, size)
            self._bytes += size
            while len(self._responses) > self.max_entries or self._bytes > self.max_bytes:
                self._bytes -= self._responses.popitem(last=False)[1][1]

    @property
    def stats(self) -> dict:
        """``entries``, ``bytes`` and ``hits`` so far (reported by ``/api/v1/health``)."""
        with self._lock:
            return {"entries": len(self._responses), "bytes": self._bytes, "hits": self._hits}
