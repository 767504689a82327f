"""The sockets in the run dir: where they are, who may use them, stale files, agents side by side."""

from __future__ import annotations

import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bzzz.bus import BusError, BusProxy, Client, Publisher, Service, Subscriber
from tests.bus.peer_process import Peer


def test_the_proxy_binds_bus_in_and_bus_out_readable_by_its_user_alone(run_dir: Path) -> None:
    fresh = run_dir / "agent" / "run"
    with BusProxy(fresh):
        assert sorted(p.name for p in fresh.iterdir()) == ["bus.in", "bus.out"]
        for path in fresh.iterdir():
            assert stat.S_ISSOCK(path.lstat().st_mode) and stat.S_IMODE(path.lstat().st_mode) == 0o600
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o700, "a run dir the bus creates is private"
    assert list(fresh.iterdir()) == []


def test_stale_socket_files_of_a_killed_supervisor_are_replaced(run_dir: Path, spawn: Callable[..., Peer]) -> None:
    crashed = spawn("proxy", run_dir).ready()
    crashed.kill()
    assert sorted(p.name for p in run_dir.iterdir()) == ["bus.in", "bus.out"], "kill -9 leaves the files behind"
    with BusProxy(run_dir), Subscriber(run_dir, "t") as subscriber, Publisher(run_dir, "w") as publisher:
        assert publisher.wait_for_subscriber("t", 5)
        publisher.publish("t", b"works")
        item = subscriber.recv(5)
    assert item is not None and item[1].body == b"works"


def test_a_live_proxy_is_never_replaced_by_a_second_one_on_the_same_run_dir(
    run_dir: Path, spawn: Callable[..., Peer]
) -> None:
    spawn("proxy", run_dir).ready()
    with pytest.raises(BusError, match="bus.in is in use by a live process"):
        BusProxy(run_dir).start()
    assert (run_dir / "bus.in").is_socket() and (run_dir / "bus.out").is_socket()


def test_a_file_that_is_not_a_socket_is_left_alone(run_dir: Path) -> None:
    (run_dir / "bus.in").write_text("precious")
    with pytest.raises(BusError, match="not a socket"):
        BusProxy(run_dir).start()
    assert (run_dir / "bus.in").read_text() == "precious"
    assert not (run_dir / "bus.out").exists()


def test_a_socket_file_nobody_listens_on_is_stale_even_if_no_zeromq_made_it(run_dir: Path) -> None:
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(run_dir / "bus.out"))
    leftover.close()
    with BusProxy(run_dir):
        assert (run_dir / "bus.out").is_socket()


def test_a_run_dir_too_long_for_a_unix_socket_is_a_clear_error(run_dir: Path) -> None:
    deep = run_dir / ("d" * 100)
    for make in (
        lambda: BusProxy(deep),
        lambda: Publisher(deep, "w"),
        lambda: Subscriber(deep),
        lambda: Service(deep, "log", lambda r: b""),
        lambda: Client(deep).request("log", b""),
    ):
        with pytest.raises(BusError, match=r"Unix sockets allow 10\d.*shorter run dir"):
            make()


def test_two_agents_side_by_side_never_hear_each_other(run_dir: Path, other_run_dir: Path) -> None:
    agents = {"walnut": run_dir, "hazel": other_run_dir}
    proxies = [BusProxy(d).start() for d in agents.values()]
    subscribers = {name: Subscriber(d, "") for name, d in agents.items()}
    publishers = {name: Publisher(d, f"{name}-worker") for name, d in agents.items()}
    stop = threading.Event()
    services = {
        name: Service(d, "log", lambda r, name=name: name.encode() + b":" + r.body) for name, d in agents.items()
    }
    threads = [threading.Thread(target=s.serve_forever, args=(stop, 0.02)) for s in services.values()]
    for thread in threads:
        thread.start()
    try:
        for name, publisher in publishers.items():
            assert publisher.wait_for_subscriber("bzzz/capabilities", 5)
            for i in range(20):
                publisher.publish("bzzz/capabilities", f"{name} {i}".encode())
        for name, subscriber in subscribers.items():
            got = []
            while (item := subscriber.recv(0.3)) is not None:
                got.append(item[1])
            assert [m.body for m in got] == [f"{name} {i}".encode() for i in range(20)]
            assert {m.sender for m in got} == {f"{name}-worker"}
        for name, d in agents.items():
            with Client(d) as client:
                assert [client.request("log", b"x", request_id="same-id") for _ in range(2)] == [
                    f"{name}:x".encode()
                ] * 2
        assert all(s.handled == 1 and s.duplicates == 1 for s in services.values()), "same id, different agents"
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for closable in [*services.values(), *subscribers.values(), *publishers.values()]:
            closable.close()
        for proxy in proxies:
            proxy.stop()
