"""The seen cache: `bzzz._core.SeenCache` and the pure-Python reference run the
same cases and must give the same answers."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bzzz._core import CoreError, SeenCache
from tests.reference import envelope as ref

IMPLS: dict[str, Callable[..., Any]] = {"rust": SeenCache, "python": ref.SeenCache}


@pytest.fixture(params=IMPLS.values(), ids=list(IMPLS))
def make(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return request.param  # type: ignore[no-any-return]


def test_a_key_is_new_the_first_time_and_seen_after(make: Callable[..., Any]) -> None:
    cache = make(10, 60.0)
    assert cache.check_and_insert("a", now=0.0) is True
    assert cache.check_and_insert("a", now=1.0) is False
    assert cache.check_and_insert(b"a", now=60.0) is False
    assert len(cache) == 1


def test_str_and_bytes_with_the_same_utf8_are_one_key(make: Callable[..., Any]) -> None:
    cache = make(10, 60.0)
    assert cache.check_and_insert("é", now=0.0)
    assert not cache.check_and_insert("é".encode(), now=0.0)


def test_an_entry_is_live_through_its_expiry_and_new_after(make: Callable[..., Any]) -> None:
    cache = make(10, 60.0)
    assert cache.check_and_insert("a", ttl=5.0, now=100.0)
    assert not cache.check_and_insert("a", now=105.0)
    assert cache.check_and_insert("a", now=105.001)
    assert not cache.check_and_insert("a", now=165.0)


def test_seeing_a_key_again_does_not_extend_it(make: Callable[..., Any]) -> None:
    cache = make(10, 10.0)
    cache.check_and_insert("a", now=0.0)
    assert not cache.check_and_insert("a", ttl=1000.0, now=5.0)
    assert cache.check_and_insert("a", now=10.5)


def test_at_capacity_the_expired_go_first_then_the_closest_to_expiry(make: Callable[..., Any]) -> None:
    cache = make(3, 100.0)
    cache.check_and_insert("expires-soon", ttl=1.0, now=0.0)
    cache.check_and_insert("b", ttl=10.0, now=0.0)
    cache.check_and_insert("c", ttl=50.0, now=0.0)
    assert cache.check_and_insert("d", now=2.0)  # drops the expired one
    assert len(cache) == 3
    assert cache.check_and_insert("e", now=2.0)  # drops b, the next to expire
    assert len(cache) == 3
    assert [cache.check_and_insert(k, now=2.0) for k in ("c", "d", "e")] == [False, False, False]
    assert cache.check_and_insert("b", now=2.0)


def test_of_equal_expiries_the_oldest_goes(make: Callable[..., Any]) -> None:
    cache = make(2, 10.0)
    for key in ("first", "second", "third"):
        cache.check_and_insert(key, now=0.0)
    assert cache.check_and_insert("first", now=0.0)  # it was evicted ...
    assert not cache.check_and_insert("third", now=0.0)  # ... and this one kept


def test_clear_forgets_everything(make: Callable[..., Any]) -> None:
    cache = make(10, 60.0)
    cache.check_and_insert("a", now=0.0)
    cache.clear()
    assert len(cache) == 0 and cache.check_and_insert("a", now=0.0)


def test_without_now_the_monotonic_clock_is_used(make: Callable[..., Any]) -> None:
    cache = make(10, 0.3)
    assert cache.check_and_insert("a") and not cache.check_and_insert("a")
    assert not cache.check_and_insert("a", now=time.monotonic())
    time.sleep(0.4)
    assert cache.check_and_insert("a")


@pytest.mark.parametrize(
    "args",
    [(0, 1.0), (1, -1.0), (1, math.nan)],
    ids=["no capacity", "negative ttl", "nan ttl"],
)
def test_bad_construction_is_a_value_error(make: Callable[..., Any], args: tuple[int, float]) -> None:
    with pytest.raises(ValueError):
        make(*args)


def test_rust_errors_are_core_errors_and_keys_must_be_str_or_bytes() -> None:
    cache = SeenCache(10, 1.0)
    with pytest.raises(CoreError):
        cache.check_and_insert("a", ttl=-1.0)
    with pytest.raises(CoreError):
        cache.check_and_insert("a", now=math.nan)
    with pytest.raises(TypeError, match="str or bytes"):
        cache.check_and_insert(12)  # type: ignore[arg-type]
    assert (cache.capacity, cache.default_ttl) == (10, 1.0)
    assert "SeenCache(capacity=10" in repr(cache)


def test_an_infinite_ttl_never_expires_but_can_be_evicted() -> None:
    cache = SeenCache(2, math.inf)
    cache.check_and_insert("a", now=0.0)
    assert not cache.check_and_insert("a", now=1e300)
    cache.check_and_insert("b", ttl=1.0, now=0.0)
    cache.check_and_insert("c", now=0.5)
    assert len(cache) == 2 and cache.check_and_insert("b", now=0.5)


def test_threads_hammering_one_cache_see_each_key_new_exactly_once() -> None:
    cache = SeenCache(100_000, 3600.0)
    keys = [f"k{i}" for i in range(2000)]
    wins: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        mine = sum(cache.check_and_insert(k, now=0.0) for k in keys)
        with lock:
            wins.append(mine)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(wins) == len(keys) == len(cache)


def test_threads_hammering_a_small_cache_never_exceed_its_bound() -> None:
    cache = SeenCache(50, 1.0)
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            for i in range(3000):
                cache.check_and_insert(f"{seed}-{i % 200}".encode(), now=i / 100)
                assert len(cache) <= 50
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cache) <= 50


ops = st.lists(
    st.tuples(st.integers(0, 15), st.one_of(st.none(), st.integers(0, 20).map(float)), st.integers(0, 4)),
    min_size=1,
    max_size=200,
)


@given(capacity=st.integers(1, 10), ops=ops)
def test_both_implementations_answer_alike_and_stay_within_capacity(capacity: int, ops: list[Any]) -> None:
    rust, python = SeenCache(capacity, 5.0), ref.SeenCache(capacity, 5.0)
    now = 0.0
    for key, ttl, step in ops:
        now += step / 2
        k = f"key-{key}"
        assert rust.check_and_insert(k, ttl, now) == python.check_and_insert(k, ttl, now)
        assert len(rust) <= capacity
        assert len(rust) == len(python)
