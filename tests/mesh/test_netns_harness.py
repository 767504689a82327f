"""What a mesh test can rely on from tests/mesh/netns.py.

Every program here runs inside a namespace as `sys.executable -c SCRIPT`. Nothing waits a
fixed time: a test polls until what it expects happens, with a generous deadline, and a
negative ("cannot reach") is checked only while it cannot possibly succeed.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mesh.netns import LOCK_DIR, Host, Lan, netns_available, sweep_stale

ROOT = Path(__file__).parents[2]
DEADLINE_S = 30.0
PORT = 7000

# Answers every connection with the host's name.
SERVE = f"""
import socket, sys
server = socket.create_server(("0.0.0.0", {PORT}))
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        conn.sendall(sys.argv[1].encode())
"""

# Connects to each address given, all at once; prints {address: name, or the errno's name}.
CONNECT = f"""
import errno, json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def ask(ip):
    try:
        with socket.create_connection((ip, {PORT}), timeout=2) as conn:
            return conn.recv(64).decode()
    except TimeoutError:
        return "ETIMEDOUT"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
with ThreadPoolExecutor(len(sys.argv)) as pool:
    print(json.dumps(dict(zip(sys.argv[1:], pool.map(ask, sys.argv[1:])))))
"""

SERVICE_TYPE = "_bzzztest._udp.local."

# Registers NAME with the host's address, and stays registered until stdin closes.
REGISTER = f"""
import socket, sys
from zeroconf import ServiceInfo, Zeroconf
name, ip = sys.argv[1], sys.argv[2]
zc = Zeroconf()
zc.register_service(ServiceInfo(
    "{SERVICE_TYPE}", f"{{name}}.{SERVICE_TYPE}", port=4001,
    addresses=[socket.inet_aton(ip)], properties={{"who": name}}, server=f"{{name}}.local.",
))
print("registered", flush=True)
sys.stdin.read()
zc.close()
"""

# Browses until killed; prints "browsing" once listening, then one JSON line per service found.
BROWSE = f"""
import json, queue
from zeroconf import ServiceBrowser, ServiceStateChange, Zeroconf
zc = Zeroconf()
found = queue.Queue()
def on_change(zeroconf, service_type, name, state_change):
    if state_change is ServiceStateChange.Added:
        found.put(name)
browser = ServiceBrowser(zc, "{SERVICE_TYPE}", handlers=[on_change])
print("browsing", flush=True)
while True:
    name = found.get()
    info = zc.get_service_info("{SERVICE_TYPE}", name, timeout=3000)
    if info is not None:
        print(json.dumps({{"name": name, "addresses": info.parsed_addresses(), "port": info.port}}), flush=True)
"""


@pytest.fixture
def lan() -> Iterator[Lan]:
    if reason := netns_available():
        pytest.skip(reason)
    with Lan(5) as lan:
        yield lan


class Output:
    """A process's stdout, read line by line as it comes, so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], timeout_s: float = DEADLINE_S) -> str:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                if self._ended:
                    raise AssertionError(f"exited with {self.proc.wait()}, having said {self.lines}")
                if not self._changed.wait(timeout=deadline - time.monotonic()):
                    raise AssertionError(f"no such line within {timeout_s} s; got {self.lines}")


def start(host: Host, script: str, *args: str) -> Output:
    proc = host.popen([sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return Output(proc)


def serve_everywhere(hosts: list[Host]) -> None:
    for host in hosts:
        start(host, SERVE, host.name).wait_for(lambda line: line == "listening")


def ask(src: Host, dsts: list[Host]) -> dict[str, str]:
    """What src gets when it connects to each of dsts: the name that answers, or an errno name."""
    answers = json.loads(src.run([sys.executable, "-c", CONNECT, *(dst.ip for dst in dsts)]).stdout)
    return {dst.name: answers[dst.ip] for dst in dsts}


def names(hosts: list[Host]) -> dict[str, str]:
    return {host.name: host.name for host in hosts}


def eventually(check: Callable[[], Any], timeout_s: float = DEADLINE_S) -> None:
    """Retry check until it stops raising AssertionError."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def found(line: str, name: str) -> bool:
    return line.startswith("{") and json.loads(line)["name"] == f"{name}.{SERVICE_TYPE}"


def ours(tag: str) -> list[str]:
    """Everything of a Lan's still visible on this machine: namespaces, links, its lock file."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "link"], capture_output=True, text=True, check=True).stdout
    lock = LOCK_DIR / f"{tag}.lock"
    return [line for line in (netns + links).splitlines() if tag in line] + [str(lock)] * lock.exists()


def test_hosts_have_distinct_addresses_on_one_private_subnet(lan: Lan) -> None:
    assert len({host.ip for host in lan.hosts}) == len({host.netns for host in lan.hosts}) == 5
    assert all(host.ip.startswith("10.231.") for host in lan.hosts)
    for host in lan.hosts:
        assert f"inet {host.ip}/24" in host.run(["ip", "-4", "addr", "show", "eth0"]).stdout


def test_every_host_reaches_every_other_over_tcp(lan: Lan) -> None:
    serve_everywhere(lan.hosts)
    for src in lan.hosts:
        others = [dst for dst in lan.hosts if dst is not src]
        assert ask(src, others) == names(others)


def test_nothing_off_the_lan_is_reachable(lan: Lan) -> None:
    # No default route: an address outside the /24 fails at once rather than timing out.
    assert "unreachable" in lan.hosts[0].run(["ip", "-4", "route", "get", "198.51.100.1"], check=False).stderr
    answers = json.loads(lan.hosts[0].run([sys.executable, "-c", CONNECT, "198.51.100.1"]).stdout)
    assert answers == {"198.51.100.1": errno.errorcode[errno.ENETUNREACH]}


def test_a_partitioned_host_is_cut_off_until_healed(lan: Lan) -> None:
    serve_everywhere(lan.hosts)
    cut, rest = lan.hosts[2], [h for h in lan.hosts if h is not lan.hosts[2]]

    cut.partition()
    assert all(answer != name for name, answer in ask(cut, rest).items()), "cut off from everyone"
    assert ask(rest[0], [cut]) != names([cut]), "and no one reaches it"
    assert ask(rest[0], rest[1:]) == names(rest[1:]), "the rest of the LAN is unaffected"

    cut.heal()
    eventually(lambda: _assert_equal(ask(cut, rest), names(rest)))
    eventually(lambda: _assert_equal(ask(rest[0], [cut]), names([cut])))


def test_a_late_joiner_is_on_the_same_lan(lan: Lan) -> None:
    late = lan.add_host()
    assert (late.name, len(lan.hosts)) == ("h5", 6)
    serve_everywhere([lan.hosts[0], late])
    assert ask(late, [lan.hosts[0]]) == names([lan.hosts[0]])
    assert ask(lan.hosts[0], [late]) == names([late])


def test_mdns_service_registered_in_one_namespace_resolves_in_every_other(lan: Lan) -> None:
    pytest.importorskip("zeroconf")
    owner, others = lan.hosts[0], lan.hosts[1:]
    start(owner, REGISTER, "svc0", owner.ip).wait_for(lambda line: line == "registered")

    browsers = [start(host, BROWSE) for host in others]
    for browser in browsers:
        line = browser.wait_for(lambda line: found(line, "svc0"))
        assert json.loads(line)["addresses"] == [owner.ip]


def test_a_partitioned_host_misses_new_mdns_registrations_until_healed(lan: Lan) -> None:
    pytest.importorskip("zeroconf")
    owner, witness, cut = lan.hosts[0], lan.hosts[1], lan.hosts[3]
    cut.partition()
    watching = {host.name: start(host, BROWSE) for host in (witness, cut)}
    for browser in watching.values():
        browser.wait_for(lambda line: line == "browsing")

    start(owner, REGISTER, "svc1", owner.ip).wait_for(lambda line: line == "registered")
    # Once the witness has it, the announcements are out; the cut host got none of them.
    watching[witness.name].wait_for(lambda line: found(line, "svc1"))
    assert not any(found(line, "svc1") for line in watching[cut.name].lines)

    cut.heal()
    # Only a fresh browser is sure to see it: zeroconf's ServiceBrowser asks four times in
    # its first ~14 s and after that only refreshes what it already has, and the owner does
    # not announce again, so the one that watched through the partition may stay blind.
    start(cut, BROWSE).wait_for(lambda line: found(line, "svc1"))


def test_leaving_the_block_removes_everything_even_after_an_error() -> None:
    if reason := netns_available():
        pytest.skip(reason)
    with pytest.raises(RuntimeError, match="boom"), Lan(2) as lan:
        tracked = lan.hosts[0].popen(["sleep", "600"])
        # Started behind the harness's back: it still lives in the namespace, so it goes too.
        stray = subprocess.Popen(["ip", "netns", "exec", lan.hosts[1].netns, "sleep", "600"])
        assert len(ours(lan.tag)) == 4, "three namespaces and the lock; the links are all inside them"
        raise RuntimeError("boom")
    assert ours(lan.tag) == []
    assert tracked.poll() is not None
    assert stray.wait(timeout=DEADLINE_S) == -9


def test_a_new_lan_sweeps_away_what_a_killed_run_left_but_not_a_live_run() -> None:
    if reason := netns_available():
        pytest.skip(reason)
    opens = "import os, sys; from tests.mesh.netns import Lan; lan = Lan(2).__enter__(); print(lan.tag, flush=True)"
    live = subprocess.Popen(
        [sys.executable, "-c", opens + "; sys.stdin.read(); lan.close()"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert live.stdout is not None
        live_tag = live.stdout.readline().strip()
        killed = subprocess.run(
            [sys.executable, "-c", opens + "; os.kill(os.getpid(), 9)"], cwd=ROOT, capture_output=True, text=True
        )
        dead_tag = killed.stdout.strip()
        assert len(ours(dead_tag)) == 4 and len(ours(live_tag)) == 4

        removed = sweep_stale()

        assert {f"{dead_tag}{n}" for n in ("sw", "n0", "n1")} <= set(removed)
        assert not [name for name in removed if live_tag in name]
        assert ours(dead_tag) == []
        assert len(ours(live_tag)) == 4
    finally:
        assert live.stdin is not None
        live.stdin.close()
        live.wait(timeout=DEADLINE_S)
    assert ours(live_tag) == []


def _assert_equal(a: object, b: object) -> None:
    assert a == b
