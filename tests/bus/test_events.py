"""Events: publishers -> bus.in -> proxy -> bus.out -> subscribers, over real ipc sockets."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
import zmq

from bzzz import Gate, KeyPair, sign_envelope
from bzzz.bus import BusError, BusMessage, BusProxy, Publisher, Subscriber
from tests.bus.peer_process import Peer


def drain(subscriber: Subscriber, timeout_s: float = 0.5) -> list[tuple[str, BusMessage]]:
    got = []
    while (item := subscriber.recv(timeout_s)) is not None:
        got.append(item)
    return got


def test_events_cross_processes_through_the_proxy_and_only_subscribed_topics_arrive(
    run_dir: Path, spawn: Callable[..., Peer]
) -> None:
    with BusProxy(run_dir), Subscriber(run_dir, ["bzzz/tasks/", "hello/test"]) as subscriber:
        publisher = spawn(
            "publish", run_dir, "github", "50", "bzzz/tasks/help", "bzzz/capabilities", "--wait-for", "hello/test"
        ).ready()
        assert publisher.next() == {"published": 100, "dropped": 0}
        got = drain(subscriber)
    assert [(topic, m.body) for topic, m in got] == [
        ("bzzz/tasks/help", f"bzzz/tasks/help {i}".encode()) for i in range(50)
    ]
    assert {m.sender for _, m in got} == {"github"}
    assert [m.seq for _, m in got] == list(range(1, 51)) and subscriber.missed == 0
    assert len({m.msg_id for _, m in got}) == 50


def test_every_one_of_several_subscribers_gets_every_message(run_dir: Path, spawn: Callable[..., Peer]) -> None:
    with BusProxy(run_dir):
        subscribers = [spawn("subscribe", run_dir, "200", "bzzz/", "--hello", f"hello/{i}").ready() for i in range(3)]
        # Each subscriber also subscribes to a topic of its own, after the shared one and on
        # the same connection: once the publisher sees all three, all three get everything.
        publisher = spawn(
            "publish",
            run_dir,
            "hmmm",
            "100",
            "bzzz/meta/issue/acme/widgets/1",
            "bzzz/meta/escalation",
            "--wait-for",
            *(f"hello/{i}" for i in range(3)),
        ).ready()
        assert publisher.next() == {"published": 200, "dropped": 0}
        expected = [
            [topic, f"{topic} {i}", "hmmm"]
            for i in range(100)
            for topic in ("bzzz/meta/issue/acme/widgets/1", "bzzz/meta/escalation")
        ]
        for subscriber in subscribers:
            assert subscriber.next() == {"got": expected, "missed": 0}


def test_an_exact_subscription_gets_its_topic_and_not_the_topics_it_prefixes(run_dir: Path) -> None:
    with (
        BusProxy(run_dir),
        Subscriber(run_dir, ["bzzz/meta/issue/acme/widgets/1", "hello/1"], exact=True) as exact,
        Subscriber(run_dir, ["bzzz/meta/issue/acme/widgets/1", "hello/2"]) as prefix,
        Publisher(run_dir, "hmmm") as publisher,
    ):
        assert publisher.wait_for_subscriber("hello/1", 5) and publisher.wait_for_subscriber("hello/2", 5)
        for topic in (
            "bzzz/meta/issue/acme/widgets/1",
            "bzzz/meta/issue/acme/widgets/12",
            "bzzz/meta/issue/acme/widgets/1/x",
        ):
            assert publisher.publish(topic, b"x")
        assert [t for t, _ in drain(exact)] == ["bzzz/meta/issue/acme/widgets/1"]
        assert len(drain(prefix)) == 3


def test_a_signed_envelope_travels_as_the_body_untouched_and_still_verifies(run_dir: Path) -> None:
    me = KeyPair.generate()
    payload = {
        "node_id": "walnut",
        "peer_id": "12D3KooW" + "x" * 44,
        "models": ["gemma3:270m"],
        "tools": ["git"],
        "load_permille": 10,
        "active_tasks": 0,
        "max_tasks": 2,
        "log_key": me.public_key.hex(),
        "version": "0.1.0",
    }
    wire = sign_envelope(me.secret_key, "capabilities", "bzzz/capabilities", "walnut", payload, seq=1)
    with BusProxy(run_dir), Subscriber(run_dir, "bzzz/") as subscriber, Publisher(run_dir, "mesh") as publisher:
        assert publisher.wait_for_subscriber("bzzz/capabilities", 5)
        assert publisher.publish("bzzz/capabilities", wire)
        item = subscriber.recv(5)
    assert item is not None and item[1].body == wire
    assert Gate().admit(item[1].body).payload["node_id"] == "walnut"


def test_recv_returns_none_when_nothing_comes_in_time(run_dir: Path) -> None:
    with BusProxy(run_dir), Subscriber(run_dir) as subscriber:
        started = time.monotonic()
        assert subscriber.recv(0.2) is None
        assert 0.15 < time.monotonic() - started < 2


def test_a_subscriber_that_falls_behind_misses_messages_and_counts_every_one_it_missed(run_dir: Path) -> None:
    with (
        BusProxy(run_dir, hwm=50),
        Subscriber(run_dir, ["flood", "hello/slow"], hwm=50) as slow,
        Subscriber(run_dir, ["flood", "hello/fast"]) as fast,
        Publisher(run_dir, "loud") as publisher,
    ):
        assert publisher.wait_for_subscriber("hello/slow", 5) and publisher.wait_for_subscriber("hello/fast", 5)
        body = b"x" * 1000
        fast_got = 0
        for _ in range(5000):  # the fast one reads each message; the slow one reads nothing meanwhile
            assert publisher.publish("flood", body, timeout_s=5)
            fast_got += fast.recv(5) is not None
        drain(slow, 0.3)
        # What was lost after the last message it got shows as a gap only when the next one comes.
        assert publisher.publish("flood", b"last", timeout_s=5)
        last = slow.recv(5)
        assert last is not None and last[1].body == b"last"
        fast_got += len(drain(fast, 0.3))
    assert slow.missed > 0, "queues of 50 + 50 and the kernel's buffer cannot hold 5000 kB"
    assert slow.received + slow.missed == 5001 == publisher.published
    assert fast_got == 5001 and fast.missed == 0, "the slow subscriber never held up the fast one"


def test_a_publisher_with_a_full_queue_counts_what_it_dropped_and_subscribers_do_not_count_it_again(
    run_dir: Path,
) -> None:
    with BusProxy(run_dir), Subscriber(run_dir, "burst") as subscriber, Publisher(run_dir, "loud", hwm=1) as publisher:
        assert publisher.wait_for_subscriber("burst", 5)
        accepted = sum(publisher.publish("burst", b"y" * 700) for _ in range(20_000))
        assert publisher.publish("burst", b"last", timeout_s=5)
        got = drain(subscriber)
    assert publisher.dropped > 0 and accepted + publisher.dropped == 20_000
    assert accepted + 1 == publisher.published == len(got) + subscriber.missed
    assert [m.seq for _, m in got] == list(range(1, len(got) + 1)), "drops at the publisher leave no gaps"


def test_publishers_and_subscribers_carry_on_when_the_proxy_restarts(run_dir: Path) -> None:
    proxy = BusProxy(run_dir).start()
    with Subscriber(run_dir, "x") as subscriber, Publisher(run_dir, "w") as publisher:
        assert publisher.wait_for_subscriber("x", 5)
        publisher.publish("x", b"before")
        assert subscriber.recv(5) is not None
        proxy.stop()
        assert not (run_dir / "bus.in").exists() and not (run_dir / "bus.out").exists()
        proxy = BusProxy(run_dir).start()
        deadline = time.monotonic() + 10
        while not publisher.has_subscriber("x") and time.monotonic() < deadline:
            time.sleep(0.02)  # ZeroMQ reconnects both sides and re-sends the subscription by itself
        assert publisher.publish("x", b"after")
        item = subscriber.recv(5)
        proxy.stop()
    assert item is not None and item[1].body == b"after"


def test_the_proxy_counts_what_it_forwarded_and_stops_cleanly_twice(run_dir: Path) -> None:
    proxy = BusProxy(run_dir).start()
    with Subscriber(run_dir, "c") as subscriber, Publisher(run_dir, "w") as publisher:
        assert publisher.wait_for_subscriber("c", 5)
        for _ in range(10):
            publisher.publish("c", b"z")
        assert len(drain(subscriber)) == 10
    stats = proxy.stats()
    assert stats.events == 10 and stats.bytes > 10 and stats.subscription_messages >= 1
    proxy.stop()
    proxy.stop()
    assert not proxy.running and list(run_dir.iterdir()) == []


def test_topics_with_a_nul_character_and_bodies_that_are_not_bytes_are_refused(run_dir: Path) -> None:
    with Publisher(run_dir, "w") as publisher:
        with pytest.raises(BusError, match="NUL"):
            publisher.publish("a\x00b", b"")
        with pytest.raises(TypeError, match="bytes, not str"):
            publisher.publish("a", "text")  # type: ignore[arg-type]
        assert publisher.published == publisher.dropped == 0
    with pytest.raises(BusError, match="NUL"):
        Subscriber(run_dir, "a\x00")


def test_a_subscriber_skips_and_counts_frames_that_are_not_bus_messages(run_dir: Path) -> None:
    with BusProxy(run_dir), Subscriber(run_dir, "t") as subscriber:
        rogue = zmq.Context.instance().socket(zmq.XPUB)  # an XPUB, to see the subscription arrive
        rogue.setsockopt(zmq.LINGER, 0)
        rogue.setsockopt(zmq.RCVTIMEO, 5000)
        rogue.connect(f"ipc://{run_dir / 'bus.in'}")
        assert rogue.recv() == b"\x01t"
        honest = msgspec.msgpack.encode(BusMessage("t", "w", "1", 0, b"real"))
        for junk in (
            b"t no NUL",
            b"t\x00not msgpack",
            b"t\x00" + msgspec.msgpack.encode([1, 2]),
            b"tx\x00" + honest,
        ):  # the topic outside differs from the one inside
            rogue.send(junk)
        rogue.send(b"t\x00" + honest)
        item = subscriber.recv(5)
        rogue.close()
    assert item is not None and item[1].body == b"real"
    assert subscriber.malformed == 4 and subscriber.received == 1
