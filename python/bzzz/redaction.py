"""One redaction point for everything that leaves a task: no configured secret in any artifact.

The threat. A task's output is written by the task, and a task may print the agent's token on
purpose (`cat $GITHUB_TOKEN_FILE`), by accident (`env`, a verbose `curl`), or in disguise: the
HTTP Basic header git sends is `base64("x-access-token:" + token)`, a URL carries it
percent-encoded, a debugging dump shows it in hex. That output flows into issue comments, PR
bodies and commits, the worker logs, the state files and the signed log, which is append-only and
replicated: an entry peers have copied can never be taken back. So every configured secret is
registered here (`register_secret`, by the token source `bzzz.secrets`), and every writer of an artifact
passes its text through the same `Redactor`, which replaces each of these forms of each secret
with `[REDACTED]`:

- the secret itself (as text, and as bytes in `redact_bytes`);
- base64, standard and URL-safe alphabets, padded or not, of any text that contains the secret
  at any byte offset. Base64 turns 3 bytes into 4 characters, so where the secret starts in the
  encoded text decides its characters; for each of the 3 alignments the characters that depend
  on the secret's bytes only (its "core", without the first and last characters it shares with
  its neighbours) are matched. At most one partial character (a few bits) at each end of the
  core remains; the secret cannot be rebuilt from it. Base64 broken into lines (MIME's 76
  columns, PEM) is NOT matched: a line break inside the core hides it. Neither are other
  encodings (base32, gzip, hex with separators as `xxd` or `\\x67` print it, a reversed or
  re-cased string): redaction catches the forms a secret takes by accident or through the
  common tools, not a task bent on smuggling it out, which is why the sandbox also keeps the
  token out of the task's reach.
- hex of the secret, any case (hex is byte-aligned: the hex of any text holding the secret
  contains the hex of the secret);
- URL encoding: each byte either itself (printable ASCII) or `%XX` in any case, a space also as
  `+`: this covers `quote(s, safe="")`, `quote_plus`, the every-byte `%XX` form and mixtures;
  non-alphanumeric characters of a base64 core may be percent-encoded too.

Secrets shorter than `MIN_SECRET_BYTES` are refused with ValueError: the forms of a 3-byte
secret (a 2-character base64 core, 6 hex digits) occur in ordinary text all the time, so
redacting them would shred every log, and a secret that short protects nothing anyway. A
configuration error is better said than silently not redacted.

Speed. All forms of all secrets are one precompiled regular expression, longest form first (so
a secret containing another is replaced whole); with no secret registered, text is returned as
it came without looking at it.

Streams. `install_stream_redaction()` wraps `sys.stdout` and `sys.stderr` so everything a worker
process prints (structlog lines, warnings, tracebacks) is redacted before it reaches the worker
log. It works at the Python level: a child process that inherits the worker's file descriptors,
or C code writing to fd 1/2 directly, is not covered; task commands must have their output
captured (as the executor does) and redacted before it is written anywhere.
"""

from __future__ import annotations

import base64
import re
import sys
import threading
from collections.abc import Iterable
from typing import IO, Any, AnyStr, TextIO

REDACTED = "[REDACTED]"
MIN_SECRET_BYTES = 6
_REDACTED_BYTES = REDACTED.encode()
# A replacement can join with its neighbours into a secret again (a secret like "ED]abcdef"
# after a form of it that ended just before "abcdef"): look again, a few times.
_PASSES = 3
_HOLD_CHARS = 8192  # a stream's pending text is written out once it is longer than this (plus a form)


def _pct(byte: int) -> str:
    """`%XX` for `byte`, hex digits in either case."""
    return "%" + "".join(f"[{c.lower()}{c}]" if c.isalpha() else c for c in f"{byte:02X}")


def _url_form(data: bytes, *, text: bool) -> str:
    """Each byte literally or percent-encoded (any case), a space also as `+`.

    With `text`, bytes above 0x7f are only matched percent-encoded (a str holds them decoded, and
    the raw form covers that); otherwise each byte is a latin-1 character, for a bytes pattern."""
    parts = []
    for byte in data:
        alternatives = [_pct(byte)]
        if byte < 0x80 or not text:
            alternatives.insert(0, re.escape(chr(byte)))
        if byte == 0x20:
            alternatives.append(r"\+")
        parts.append(alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")")
    return "".join(parts)


def _b64_cores(data: bytes) -> set[str]:
    """The base64 characters fixed by `data` alone, for each of its 3 possible alignments."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + data + bytes(2)).decode()
        first = -(-8 * offset // 6)  # the first character whose 6 bits all come from `data`
        end = 8 * (offset + len(data)) // 6  # one past the last such character
        core = encoded[first:end]
        cores.add(core)
        cores.add(core.translate(str.maketrans("+/", "-_")))
    return cores


def _literal_url_tolerant(core: str) -> str:
    """A base64 core as a pattern: its `+`, `/`, `-`, `_` may also appear percent-encoded."""
    return "".join(c if c.isalnum() else f"(?:{re.escape(c)}|{_pct(ord(c))})" for c in core)


def _forms(secret: bytes) -> list[tuple[int, str, str]]:
    """(length, text pattern, latin-1 bytes pattern) for every form of one secret."""
    forms: list[tuple[int, str, str]] = []
    try:
        raw = secret.decode()
    except UnicodeDecodeError:
        pass  # no text holds it as such; its encoded forms below still count
    else:
        forms.append((len(raw), re.escape(raw), re.escape(secret.decode("latin-1"))))
    forms.append((len(secret), _url_form(secret, text=True), _url_form(secret, text=False)))
    hexed = f"(?i:{secret.hex()})"
    forms.append((2 * len(secret), hexed, hexed))
    for core in _b64_cores(secret):
        pattern = _literal_url_tolerant(core)
        forms.append((len(core), pattern, pattern))
    return forms


class Redactor:
    """A set of secrets, and the text and data they are taken out of (see the module docstring).

    Thread-safe: `add` may run while other threads redact; they see the old set or the new."""

    def __init__(self, secrets: Iterable[str | bytes] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[bytes] = set()
        self._text: re.Pattern[str] | None = None
        self._bytes: re.Pattern[bytes] | None = None
        self._longest = 0
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | bytes) -> None:
        """Redact `secret` from now on. Empty is ignored; shorter than `MIN_SECRET_BYTES` bytes is a
        ValueError (see the module docstring)."""
        data = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not data:
            return
        if len(data) < MIN_SECRET_BYTES:
            raise ValueError(
                f"a secret of {len(data)} bytes is too short to redact safely (at least {MIN_SECRET_BYTES})"
            )
        with self._lock:
            if data in self._secrets:
                return
            self._secrets.add(data)
            self._compile()

    def _compile(self) -> None:
        forms: dict[str, tuple[int, str]] = {}
        for secret in self._secrets:
            for length, text, latin in _forms(secret):
                if text not in forms or forms[text][0] < length:
                    forms[text] = (length, latin)
        # Longest first: at one position the first alternative that matches wins.
        ordered = sorted(forms.items(), key=lambda item: (-item[1][0], item[0]))
        text_pattern = re.compile("|".join(text for text, _ in ordered))
        bytes_pattern = re.compile("|".join(latin for _, (_, latin) in ordered).encode("latin-1"))
        # An upper bound on the text one form spans: 3 characters a byte in the every-byte %XX URL
        # form, up to 4 for a base64 core (4 characters for 3 bytes, each maybe percent-encoded).
        self._longest = 4 * max(len(s) for s in self._secrets)
        self._text, self._bytes = text_pattern, bytes_pattern

    @property
    def secrets_count(self) -> int:
        return len(self._secrets)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __len__(self) -> int:
        return len(self._secrets)

    @property
    def longest_form(self) -> int:
        """An upper bound on the length of text one form of one secret spans (0: no secrets)."""
        return self._longest

    def redact(self, text: str) -> str:
        return text if self._text is None else _until_stable(self._text, REDACTED, text)

    def redact_bytes(self, data: bytes) -> bytes:
        return data if self._bytes is None else _until_stable(self._bytes, _REDACTED_BYTES, data)

    def redact_value(self, value: Any) -> Any:
        """`value` with every string (dict keys too) and bytes in it redacted, through dicts,
        lists and tuples. A number whose digits hold a secret becomes the string `[REDACTED]`;
        other objects are returned as they are."""
        if self._text is None:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, bytes | bytearray):
            return self.redact_bytes(bytes(value))
        if isinstance(value, dict):
            return {self.redact_value(k): self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.redact_value(v) for v in value)
        if isinstance(value, int | float) and not isinstance(value, bool) and self.contains_secret(str(value)):
            return REDACTED
        return value

    def contains_secret(self, data: str | bytes) -> bool:
        if isinstance(data, str):
            text = self._text
            return text is not None and text.search(data) is not None
        binary = self._bytes
        return binary is not None and binary.search(data) is not None

    def redact_prefix(self, text: str) -> tuple[str, str]:
        """For a stream: (the redacted part of `text` that can be written now, the rest to hold).

        The rest is the tail a form of a secret could still be growing into with the next write;
        a match that started before it is written out whole, redacted."""
        pattern = self._text
        if pattern is None:
            return text, ""
        cut = max(0, len(text) - self._longest + 1)
        out: list[str] = []
        last = 0
        for match in pattern.finditer(text):
            if match.start() >= cut:
                break
            out.append(text[last : match.start()])
            out.append(REDACTED)
            last = match.end()
            cut = max(cut, last)
        out.append(text[last:cut])
        return "".join(out), text[cut:]


REDACTOR = Redactor()
"""The process-wide registry: each worker process registers its secrets here."""


def register_secret(secret: str | bytes) -> None:
    REDACTOR.add(secret)


def redact(text: str) -> str:
    return REDACTOR.redact(text)


def redact_bytes(data: bytes) -> bytes:
    return REDACTOR.redact_bytes(data)


def redact_value(value: Any) -> Any:
    return REDACTOR.redact_value(value)


def contains_secret(data: str | bytes) -> bool:
    return REDACTOR.contains_secret(data)


class _RedactingBinary:
    """`sys.stdout.buffer` of a redacting stream: bytes written there are redacted too."""

    def __init__(self, owner: _RedactingStream, inner: IO[bytes]) -> None:
        self._owner = owner
        self._inner = inner

    def write(self, data: bytes) -> int:
        self._owner.flush()  # what went through the text side comes first
        self._inner.write(self._owner.redactor.redact_bytes(bytes(data)))
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _RedactingStream:
    """A text stream that writes to `inner` only redacted text.

    Text is held until a flush (print and structlog flush each line; Python flushes at exit),
    a line end on a line-buffered stream (stderr), or until more than `_HOLD_CHARS` are pending,
    so a secret written in several pieces is still seen whole. Not seen: a secret split by an
    explicit flush between two writes, or a secret containing a line break written in pieces
    to a line-buffered stream (no form of a single-line secret spans a line break)."""

    def __init__(self, inner: TextIO, redactor: Redactor) -> None:
        self._inner = inner
        self.redactor = redactor
        self._pending = ""
        self._lock = threading.RLock()

    @property
    def wrapped(self) -> TextIO:
        return self._inner

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            if "\n" in text and getattr(self._inner, "line_buffering", False):
                cut = self._pending.rfind("\n") + 1
                lines, self._pending = self._pending[:cut], self._pending[cut:]
                self._inner.write(self.redactor.redact(lines))
                self._inner.flush()
            elif len(self._pending) > _HOLD_CHARS + self.redactor.longest_form:
                ready, self._pending = self.redactor.redact_prefix(self._pending)
                self._inner.write(ready)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                pending, self._pending = self._pending, ""
                self._inner.write(self.redactor.redact(pending))
            self._inner.flush()

    def close(self) -> None:
        self.flush()

    @property
    def buffer(self) -> _RedactingBinary:
        return _RedactingBinary(self, self._inner.buffer)

    def __getattr__(self, name: str) -> Any:
        # encoding, errors, fileno, isatty, ...: the wrapped stream's. (fileno lets a child
        # process write around the redaction; see the module docstring.)
        return getattr(self._inner, name)


def structlog_processor(logger: Any, method: str, event: Any) -> Any:
    """A structlog processor redacting the event with the process registry, whether a dict
    (before the renderer: values are redacted before repr or JSON escapes them) or the rendered
    line (after it: a traceback the renderer formats is redacted too)."""
    return REDACTOR.redact_value(event)


_install_lock = threading.Lock()


def install_stream_redaction() -> None:
    """Redact everything this process prints from now on: wrap `sys.stdout` and `sys.stderr`,
    and put `structlog_processor` before and after structlog's renderer, for a logger made with
    a file captured before the wrapping. Idempotent."""
    with _install_lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None and not isinstance(stream, _RedactingStream):
                setattr(sys, name, _RedactingStream(stream, REDACTOR))
        import structlog

        processors = list(structlog.get_config()["processors"])
        if structlog_processor not in processors:
            renderer = processors[-1:]
            structlog.configure(
                processors=[*processors[:-1], structlog_processor, *renderer, structlog_processor]
                if renderer
                else [structlog_processor]
            )


__all__ = [
    "MIN_SECRET_BYTES",
    "REDACTED",
    "REDACTOR",
    "Redactor",
    "contains_secret",
    "install_stream_redaction",
    "redact",
    "redact_bytes",
    "redact_value",
    "register_secret",
    "structlog_processor",
]


def _until_stable(pattern: re.Pattern[AnyStr], replacement: AnyStr, value: AnyStr) -> AnyStr:
    """Replace until nothing matches (a replacement can join its neighbours into a new match),
    at most `_PASSES` more times."""
    value, count = pattern.subn(replacement, value)
    for _ in range(_PASSES):
        if not count:
            break
        value, count = pattern.subn(replacement, value)
    return value
