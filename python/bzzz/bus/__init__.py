"""How the workers of one agent talk to each other: ZeroMQ over ipc sockets in the run dir.

Events (best effort, pub/sub through a proxy): `BusProxy`, `Publisher`, `Subscriber`.
Requests (acknowledged, retried, deduplicated): `Service`, `Client`, `ReplyCache`.
"""

from bzzz.bus.errors import BusError, RequestTimeout, ServiceError
from bzzz.bus.events import DEFAULT_HWM, BusProxy, ProxyStats, Publisher, Subscriber
from bzzz.bus.messages import BusMessage, Reply, Request
from bzzz.bus.requests import Client, MemoryReplyCache, ReplyCache, Service, service_available

__all__ = [
    "DEFAULT_HWM",
    "BusError",
    "BusMessage",
    "BusProxy",
    "Client",
    "MemoryReplyCache",
    "ProxyStats",
    "Publisher",
    "Reply",
    "ReplyCache",
    "Request",
    "RequestTimeout",
    "Service",
    "ServiceError",
    "Subscriber",
    "service_available",
]
