"""The response cache: least recently used out first, bounded in entries and in bytes."""

from riffusion.server.cache import ResponseCache


def response(size: int, tag: str = "") -> dict:
    return {"image": tag + "x" * (size - len(tag)), "duration_s": 5.11}


def test_a_hit_returns_the_response_and_is_counted():
    cache = ResponseCache(max_entries=4, max_bytes=1000)
    cache.put("a", response(10, "a"))
    assert cache.get("a") == response(10, "a") and cache.get("b") is None
    assert cache.stats == {"entries": 1, "bytes": 10, "hits": 1}


def test_the_least_recently_used_goes_first():
    cache = ResponseCache(max_entries=2, max_bytes=1000)
    cache.put("a", response(10))
    cache.put("b", response(10))
    cache.get("a")
    cache.put("c", response(10))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None


def test_bytes_are_bounded_and_a_replaced_entry_is_counted_once():
    cache = ResponseCache(max_entries=10, max_bytes=25)
    cache.put("a", response(10))
    cache.put("a", response(12))
    assert cache.stats["bytes"] == 12
    cache.put("b", response(10))
    cache.put("c", response(10))
    assert cache.stats["bytes"] <= 25 and cache.get("a") is None


def test_nothing_is_kept_when_off_or_too_large():
    off = ResponseCache(max_entries=0, max_bytes=1000)
    off.put("a", response(10))
    small = ResponseCache(max_entries=4, max_bytes=5)
    small.put("a", response(10))
    assert off.get("a") is None and small.get("a") is None and small.stats["entries"] == 0
