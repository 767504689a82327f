"""What the bus raises.

    BusError                 anything the bus cannot do: a socket path too long or
     │                       already served by a live process, a bad service name ...
     ├── RequestTimeout      a request got no reply after every retry
     └── ServiceError        the service answered, with an error instead of a reply

Events (pub/sub) never raise for a lost message: they are best effort by design and
their losses are counted instead (`Publisher.dropped`, `Subscriber.missed`).
"""

from __future__ import annotations


class BusError(Exception):
    """The bus cannot do what was asked; the message says what and where."""


class RequestTimeout(BusError):
    """No reply from `service` after `attempts` tries over `waited_s` seconds.

    Raised by `Client.request` once its retries are spent. The request may or may
    not have been carried out: a service that did the work and died before replying
    looks the same from here. Send it again with the same `request_id` later; a
    service with a durable reply cache answers it without doing the work twice.
    """

    def __init__(self, service: str, request_id: str, attempts: int, waited_s: float, address: str) -> None:
        self.service = service
        self.request_id = request_id
        self.attempts = attempts
        self.waited_s = waited_s
        self.address = address
        super().__init__(
            f"no reply from service {service!r} after {attempts} attempt{'s' if attempts != 1 else ''}"
            f" over {waited_s:.1f} s (request {request_id}, {address}); is its worker running?"
        )


class ServiceError(BusError):
    """The service received the request and answered with an error.

    `remote_message` is the service's own account: a handler's exception
    (``"ValueError: ..."``) or why the request was refused (``"malformed request: ..."``).
    Not retried: sending the same request again would fail the same way.
    """

    def __init__(self, service: str, request_id: str, remote_message: str) -> None:
        self.service = service
        self.request_id = request_id
        self.remote_message = remote_message
        super().__init__(f"service {service!r} failed request {request_id}: {remote_message}")
