"""A LAN of Linux network namespaces for tests that need real, separate network stacks.

    with Lan(5) as lan:
        server = lan.hosts[0].popen([sys.executable, "-c", SERVE])
        lan.hosts[1].run([sys.executable, "-c", CONNECT, lan.hosts[0].ip])
        lan.hosts[2].partition()   # cut h2 off the switch ...
        lan.hosts[2].heal()        # ... and plug it back in

Layout. Each host is a namespace whose only link is `eth0`, one end of a veth pair. The
other ends, and the bridge joining them, live in one more namespace, the *switch*. Keeping
the bridge out of the machine's own namespace means the machine's firewall never sees the
traffic (with br_netfilter loaded, bridged IPv4 goes through the FORWARD chain of the
bridge's namespace, and the per-bridge `nf_call_iptables 0` cannot switch that off, the
kernel ORs it with the namespace-wide sysctl), no network manager adopts the new links,
and a leftover can never be more than a namespace: nothing is added to `ip link` here.

Names. Every namespace is `bzzt<tag>sw` or `bzzt<tag>n<i>`, with a random six-character
tag per Lan; links inside the switch are `bzzt<tag>br` and `bzzt<tag>v<i>` (at most 14
characters, IFNAMSIZ allows 15). While a Lan is open its process holds an flock on
/run/bzzz-netns/bzzt<tag>.lock; the kernel drops it when the process dies however it
dies, so any later Lan can tell leftovers of a killed run from a live run in parallel.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import string
import subprocess
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

PREFIX = "bzzt"
LOCK_DIR = Path("/run/bzzz-netns")
# Only names of exactly this shape are ever deleted by the stale sweep.
_OUR_NETNS = re.compile(rf"^({PREFIX}[0-9a-z]{{6}})(?:sw|n\d+)$")
_OUR_LOCK = re.compile(rf"^({PREFIX}[0-9a-z]{{6}})\.lock$")
# 10.231.0.0/16 is nothing in particular; each Lan takes one /24 of it.
_SUBNETS = ipaddress.IPv4Network("10.231.0.0/16")
_MAX_HOSTS = 253  # .1 to .253 of the /24


class NetnsError(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def netns_available() -> str | None:
    """None if this process can build a Lan, else why not (for pytest.skip)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"{PREFIX}-probe-{os.getpid()}"  # outside the shape the sweep deletes
    try:
        added = _ip("netns", "add", probe, check=False)
        if added.returncode != 0:
            return f"`ip netns add` fails: {added.stderr.strip()}"
        veth = _ip("-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1", check=False)
        if veth.returncode != 0:
            return f"cannot create a veth pair: {veth.stderr.strip()}"
        bridge = _ip("-n", probe, "link", "add", "b0", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"cannot create a bridge: {bridge.stderr.strip()}"
        return None
    finally:
        _ip("netns", "del", probe, check=False)


@dataclass(eq=False)
class Host:
    name: str  # h0, h1, ...
    netns: str
    ip: str
    veth_host: str  # the switch-side end of this host's cable, in lan.switch
    lan: Lan = field(repr=False)

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start argv inside this host. `ip netns exec` execs in place, so the Popen's pid is
        argv's own and signals reach it; the Lan kills it at exit if it is still running."""
        proc: subprocess.Popen[Any] = subprocess.Popen(["ip", "netns", "exec", self.netns, *argv], **kw)
        self.lan._procs.append(proc)
        return proc

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 120.0, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside this host to completion; output is captured as text."""
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            **kw,
        )

    def partition(self) -> None:
        """Unplug the cable at the switch: eth0 loses carrier but keeps its address, so the
        programs inside see what a real host sees when its link drops."""
        _ip("-n", self.lan.switch, "link", "set", self.veth_host, "down")

    def heal(self) -> None:
        _ip("-n", self.lan.switch, "link", "set", self.veth_host, "up")


class Lan:
    """N hosts on one switch; a context manager that removes everything it made."""

    def __init__(self, hosts: int = 5) -> None:
        self.initial_hosts = hosts
        # Not the `random` module: pytest plugins reseed it, and two runs must not share a tag.
        self.tag = PREFIX + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(6))
        self.switch = f"{self.tag}sw"
        self.bridge = f"{self.tag}br"
        self.subnet = _free_subnet()
        self.hosts: list[Host] = []
        self._procs: list[subprocess.Popen[Any]] = []
        self._lock_fd: int | None = None
        self._created: list[str] = []  # namespaces, in creation order

    def __enter__(self) -> Lan:
        sweep_stale()
        _live.add(self)
        try:
            self._lock_fd = _take_lock(self.tag)
            self._add_netns(self.switch)
            # Snooping off, so every group reaches every port whatever IGMP the bridge has or
            # has not seen (no querier runs here). mDNS's 224.0.0.251 is link-local and is
            # flooded even with snooping on; this is for any other group.
            _ip(
                "-n",
                self.switch,
                "link",
                "add",
                self.bridge,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
                "nf_call_iptables",
                "0",
                "nf_call_ip6tables",
                "0",
                "nf_call_arptables",
                "0",
            )
            # The sysctl that the per-bridge options above are ORed with (see module doc);
            # it is per namespace, so this touches the switch only.
            for table in ("iptables", "ip6tables", "arptables"):
                path = f"/proc/sys/net/bridge/bridge-nf-call-{table}"
                subprocess.run(
                    ["ip", "netns", "exec", self.switch, "sh", "-c", f"[ ! -e {path} ] || echo 0 > {path}"],
                    check=True,
                    capture_output=True,
                )
            _ip("-n", self.switch, "link", "set", self.bridge, "multicast", "on", "up")
            for _ in range(self.initial_hosts):
                self.add_host()
        except BaseException:
            self.close(quiet=True)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Do not let a cleanup complaint hide the error that ended the block.
        self.close(quiet=exc is not None)

    def add_host(self) -> Host:
        """One more host on the switch, e.g. an agent that joins late."""
        i = len(self.hosts)
        if i >= _MAX_HOSTS:
            raise NetnsError(f"a /24 holds {_MAX_HOSTS} hosts")
        netns, veth = f"{self.tag}n{i}", f"{self.tag}v{i}"
        ip = str(self.subnet.network_address + i + 1)
        self._add_netns(netns)
        # The peer is born inside the host's namespace, so `eth0` never clashes with ours.
        _ip("-n", self.switch, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip("-n", self.switch, "link", "set", veth, "master", self.bridge)
        _ip("-n", self.switch, "link", "set", veth, "multicast", "on", "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", netns, "addr", "add", f"{ip}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "multicast", "on", "up")
        # There is deliberately no default route (nothing off the LAN is reachable). Without
        # one, a socket that joins a group without naming an interface gets ENODEV and one
        # that sends to it ENETUNREACH; zeroconf names its interfaces, plainer code does not.
        _ip("-n", netns, "route", "add", "224.0.0.0/4", "dev", "eth0")
        host = Host(name=f"h{i}", netns=netns, ip=ip, veth_host=veth, lan=self)
        self.hosts.append(host)
        return host

    def close(self, *, quiet: bool = False) -> None:
        """Kill what runs inside, delete the namespaces (their links go with them), drop the
        lock. Safe to call twice. Raises (or warns, if quiet) if a namespace survived."""
        _stop(self._procs)
        self._procs.clear()
        leftover = _delete_netns(self._created)
        self._created.clear()
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                (LOCK_DIR / f"{self.tag}.lock").unlink()
            os.close(self._lock_fd)
            self._lock_fd = None
        _live.discard(self)
        if leftover:
            message = f"could not delete network namespaces {leftover}"
            if not quiet:
                raise NetnsError(message)
            warnings.warn(message, stacklevel=2)

    def _add_netns(self, name: str) -> None:
        # Recorded first, so that a failure half-way still gets it deleted.
        self._created.append(name)
        _ip("netns", "add", name)


def sweep_stale() -> list[str]:
    """Delete the namespaces of Lans whose process is gone (a killed test run). A Lan that
    is open in any process, this one included, holds its lock and is left alone."""
    tags: dict[str, list[str]] = {}
    for name in _netns_names():
        if m := _OUR_NETNS.match(name):
            tags.setdefault(m.group(1), []).append(name)
    with contextlib.suppress(FileNotFoundError):
        for entry in LOCK_DIR.iterdir():
            if m := _OUR_LOCK.match(entry.name):
                tags.setdefault(m.group(1), [])
    removed: list[str] = []
    for tag, names in tags.items():
        path = LOCK_DIR / f"{tag}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = None  # a live Lan takes its lock before making anything, so this is stale
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
            # Switch last: host namespaces first, like close().
            names.sort(key=lambda n: n.endswith("sw"))
            _delete_netns(names)
            removed += names
            if fd is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        finally:
            if fd is not None:
                os.close(fd)
    return removed


def _take_lock(tag: str) -> int:
    """Create the Lan's lock file already locked: it is locked under a private name, then
    renamed into place, so a sweep can never find it unlocked while its owner lives."""
    LOCK_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = LOCK_DIR / f".{tag}.{os.getpid()}"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.rename(tmp, LOCK_DIR / f"{tag}.lock")
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return fd


def _netns_names() -> list[str]:
    out = _ip("-j", "netns", "list").stdout.strip()
    return [entry["name"] for entry in json.loads(out or "[]")]


def _stop(procs: list[subprocess.Popen[Any]], grace: float = 5.0) -> None:
    # SIGTERM first so a program under test can shut down cleanly (close sockets, say
    # goodbye over mDNS); whatever is still running after the grace period is killed.
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _delete_netns(names: list[str]) -> list[str]:
    """Delete namespaces; returns those that are still listed afterwards."""
    for name in names:
        # Anything still inside (a grandchild, a process someone started with plain
        # `ip netns exec`) would keep the namespace and its veth alive after `ip netns del`.
        for pid in _ip("netns", "pids", name, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        _ip("netns", "del", name, check=False)
    remaining = set(_netns_names())
    return [name for name in names if name in remaining]


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of 10.231.0.0/16 that no route or address of this machine overlaps. The hosts
    cannot see this machine's routes, but a subnet that also exists here makes `ip` output
    and logs ambiguous, and would clash the day the LAN is wired to this namespace."""
    used: list[ipaddress.IPv4Network] = []
    for cmd in (("-4", "-j", "route", "show", "table", "all"), ("-4", "-j", "addr", "show")):
        for entry in json.loads(_ip(*cmd).stdout or "[]"):
            dsts = [entry.get("dst", "default")] + [
                f"{a['local']}/{a.get('prefixlen', 32)}" for a in entry.get("addr_info", [])
            ]
            for dst in dsts:
                if dst and dst != "default":
                    with contextlib.suppress(ValueError):
                        net = ipaddress.ip_network(dst, strict=False)
                        if isinstance(net, ipaddress.IPv4Network):
                            used.append(net)
    candidates = list(_SUBNETS.subnets(new_prefix=24))
    while candidates:
        subnet = candidates.pop(secrets.randbelow(len(candidates)))
        if not any(subnet.overlaps(net) for net in used):
            return subnet
    raise NetnsError(f"every /24 of {_SUBNETS} overlaps a route on this machine")


_live: set[Lan] = set()


@atexit.register
def _close_live() -> None:
    # For a process that exits without leaving the `with` (sys.exit in a test, a fixture
    # that never finalised). A SIGKILLed process leaves its namespaces to the next sweep.
    for lan in list(_live):
        lan.close(quiet=True)
