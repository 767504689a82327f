"""One redaction point: no form of a configured secret leaves a task, in a comment, a signed-log
entry, a state file or a worker's log. Each test first shows the form really is in what goes in
(a positive control), so it cannot pass by the secret never having been there."""

from __future__ import annotations

import base64
import json
import os
import string
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from github import Auth, Github
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bzzz import redaction
from bzzz.github.reporter import Reporter
from bzzz.log.events import decode_entry, encode_event
from bzzz.log.store import AgentLog
from bzzz.redaction import REDACTED, Redactor
from bzzz.secrets.source import open_source
from bzzz.state import WorkerState

TOKEN = "ghp_R3dact10nT0kenXyZ0123456789abcdEFGH"
# Characters every encoding treats differently: a space, '+', '/', '%', '~', '"', '\', non-ASCII.
ODD = 'p@ss w+rd/~%"\\é-42'
ROOT = Path(__file__).resolve().parents[2]


def b64_fixed_by(encoded: str, offset: int, length: int) -> str:
    """The characters of `encoded` (base64 of some bytes) whose 6 bits all come from the `length`
    bytes at byte `offset`: what a reader could decode the secret back from."""
    first = -(-8 * offset // 6)
    end = 8 * (offset + length) // 6
    return encoded[first:end]


def every_byte_pct(secret: str, case: Callable[[str], str]) -> str:
    return "".join(case(f"%{b:02x}") for b in secret.encode())


def forms(secret: str) -> dict[str, str]:
    """The forms of `secret` a task's output may carry it in, each as it would be printed."""
    data = secret.encode()
    found = {
        "raw": secret,
        "hex": data.hex(),
        "HEX": data.hex().upper(),
        "quote": quote(secret, safe=""),
        "quote with / safe": quote(secret),
        "quote_plus": quote_plus(secret),
        "%xx": every_byte_pct(secret, str.lower),
        "%XX": every_byte_pct(secret, str.upper),
    }
    for prefix in ("", "x-access-token:", "a", "ab", "abc", "abcd", "abcde", "Authorization: "):
        for name, encode in (("b64", base64.b64encode), ("urlsafe", base64.urlsafe_b64encode)):
            encoded = encode(f"{prefix}{secret} and more".encode()).decode()
            found[f"{name} after {prefix!r}"] = encoded
            found[f"{name} after {prefix!r}, unpadded"] = encoded.rstrip("=")
    return found


def no_form_left(secret: str, text: str) -> list[str]:
    """The forms of `secret` still readable in `text` (base64: the characters fixed by it)."""
    data = secret.encode()
    left = [name for name, form in forms(secret).items() if not name.startswith(("b64", "urlsafe")) and form in text]
    for prefix in ("", "x-access-token:", "a", "ab", "abc", "abcd", "abcde"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(prefix.encode() + data + b" and more").decode()
            if b64_fixed_by(encoded, len(prefix.encode()), len(data)) in text:
                left.append(f"base64 after {prefix!r}")
    return left


@pytest.mark.parametrize("secret", [TOKEN, ODD], ids=["token", "odd-characters"])
@pytest.mark.parametrize("name", list(forms(TOKEN)))
def test_every_form_of_a_secret_is_redacted_and_the_text_around_it_kept(secret: str, name: str) -> None:
    form = forms(secret)[name]
    text = f"before: {form} :after"
    redactor = Redactor([secret])
    assert form in text and no_form_left(secret, text)  # the control: it is there to be found

    out = redactor.redact(text)

    assert no_form_left(secret, out) == []
    assert REDACTED in out and out.startswith("before: ") and out.endswith(" :after")


def test_text_holding_no_secret_comes_back_unchanged() -> None:
    text = (
        "Ran 12 tests in 0.4s\nOK\n"
        + json.dumps({"sha": "9fceb02d0ae598e95dc970b74767f19372d61af8", "b64": base64.b64encode(b"other").decode()})
        + "\nünïcödé, 中文, emoji 🐝, %41%42 and +/=\n"
    )
    assert Redactor([TOKEN, ODD]).redact(text) == text
    assert Redactor([TOKEN]).redact_bytes(text.encode()) == text.encode()
    nothing = Redactor()
    assert not nothing and nothing.redact(text) is text  # no secrets: not even looked at


def test_a_secret_too_short_to_redact_safely_is_refused_and_an_empty_one_ignored() -> None:
    redactor = Redactor()
    with pytest.raises(ValueError, match="too short"):
        redactor.add("abc12")
    redactor.add("")
    redactor.add(b"")
    assert redactor.secrets_count == 0
    redactor.add("abc123")
    assert redactor.secrets_count == 1 and redactor.redact("x abc123 y") == f"x {REDACTED} y"


def test_a_secret_containing_another_is_replaced_whole() -> None:
    redactor = Redactor(["ghp_abc", "ghp_abcdef"])
    assert redactor.redact("x ghp_abcdef and ghp_abc y") == f"x {REDACTED} and {REDACTED} y"


def test_a_secret_that_a_replacement_rebuilds_with_its_neighbours_is_redacted_too() -> None:
    # "ED]" + "tail42" is a secret again once the hex before "tail42" became "[REDACTED]"
    secret = "ED]tail42"
    text = secret.encode().hex() + "tail42"
    assert secret not in text
    out = Redactor([secret]).redact(text)
    assert secret not in out


def test_bytes_of_a_state_blob_lose_every_form_too() -> None:
    blob = (
        b"\x00\xffSQLite format 3\x00"
        + TOKEN.encode()
        + b"\x81\x82"
        + base64.b64encode(b"x-access-token:" + TOKEN.encode())
        + b"\x00"
        + TOKEN.encode().hex().upper().encode()
        + b"\xfe"
        + quote(ODD, safe="").encode()
        + ODD.encode()
    )
    redactor = Redactor([TOKEN, ODD])
    assert redactor.contains_secret(blob) and TOKEN.encode() in blob and ODD.encode() in blob

    out = redactor.redact_bytes(blob)

    assert not redactor.contains_secret(out)
    assert TOKEN.encode() not in out and ODD.encode() not in out and TOKEN.encode().hex().upper().encode() not in out
    assert out.startswith(b"\x00\xffSQLite format 3\x00" + REDACTED.encode() + b"\x81\x82")
    assert out.count(REDACTED.encode()) == 5


def test_a_non_utf8_secret_is_found_in_bytes_and_in_its_text_encodings() -> None:
    secret = b"\xde\xad\xbe\xef\x00\x01\x02"
    redactor = Redactor([secret])
    assert redactor.redact_bytes(b"<" + secret + b">") == b"<" + REDACTED.encode() + b">"
    assert redactor.redact(f"<{secret.hex()}>") == f"<{REDACTED}>"
    assert redactor.redact(f"<{quote(secret)}>") == f"<{REDACTED}>"


def test_nested_values_are_redacted_keys_included_and_their_shape_kept() -> None:
    value = {
        "cmd": ["sh", "-c", f"echo {TOKEN}"],
        TOKEN: ("kept", b"raw " + TOKEN.encode()),
        "deep": {"auth": "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()},
        "n": 7,
        "ok": True,
        "none": None,
    }
    assert TOKEN in repr(value)

    out = Redactor([TOKEN]).redact_value(value)

    assert TOKEN not in repr(out) and TOKEN.encode().hex() not in repr(out)
    assert out["cmd"] == ["sh", "-c", f"echo {REDACTED}"]
    assert out[REDACTED] == ("kept", b"raw " + REDACTED.encode())
    assert out["deep"]["auth"].startswith("Basic ") and REDACTED in out["deep"]["auth"]
    assert (out["n"], out["ok"], out["none"]) == (7, True, None)


def test_a_number_that_spells_a_secret_is_redacted() -> None:
    assert Redactor(["31415926"]).redact_value({"pin": 314159265}) == {"pin": REDACTED}


def test_a_signed_log_entry_never_holds_a_secret_however_deep_or_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    quoted = 'tok"en\\with-escapes'
    monkeypatch.setattr(redaction, "REDACTOR", Redactor([TOKEN, quoted]))
    fields = {"output": {"stdout": f"token={TOKEN}\n", "lines": [quoted, {"k": TOKEN.encode().hex()}]}}
    plain = json.dumps(fields, ensure_ascii=False)
    # The control: JSON escapes the quoted secret, so a search of the encoded entry would miss it.
    assert TOKEN in plain and quoted not in plain and json.dumps(quoted)[1:-1] in plain

    entry = encode_event("task_finished", ts=1, **fields)

    assert quoted.encode() not in entry and json.dumps(quoted)[1:-1].encode() not in entry
    assert TOKEN.encode() not in entry and TOKEN.encode().hex().encode() not in entry
    event = decode_entry(entry)
    assert isinstance(event, dict) and event["type"] == "task_finished" and event["ts"] == 1
    assert event["output"]["stdout"] == f"token={REDACTED}\n"
    assert event["output"]["lines"] == [REDACTED, {"k": REDACTED}]


def test_the_signed_log_files_on_disk_hold_no_form_of_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redaction, "REDACTOR", Redactor())
    token_file = tmp_path / "github-token"
    token_file.write_text(TOKEN + "\n")
    assert open_source(environ={"GITHUB_TOKEN_FILE": str(token_file)}).current() == TOKEN  # registers it, as workers do
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()

    with AgentLog.create(tmp_path / "log") as log:
        index = log.append_event(
            "task_finished", agent="agent-1", result={"output": f"{TOKEN}\nAuthorization: Basic {basic}"}
        )
        [(_, entry)] = list(log.entries(index))

    assert isinstance(entry, dict) and entry["result"]["output"].startswith(REDACTED)
    on_disk = b"".join(p.read_bytes() for p in (tmp_path / "log").rglob("*") if p.is_file())
    assert b"task_finished" in on_disk  # the control: the entry really is in these files
    assert TOKEN.encode() not in on_disk and b64_fixed_by(basic, 15, len(TOKEN)).encode() not in on_disk


def test_a_token_too_short_to_redact_is_a_token_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bzzz.github.client import TokenError

    monkeypatch.setattr(redaction, "REDACTOR", Redactor())
    with pytest.raises(TokenError, match="too short"):
        open_source(environ={"GITHUB_TOKEN": "abc"})


def test_the_reporter_stores_no_encoded_form_of_its_token_in_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redaction, "REDACTOR", Redactor())
    github = Github(base_url="http://127.0.0.1:9", auth=Auth.Token(TOKEN))  # never contacted: enqueue only
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    body = f"push failed:\nAuthorization: Basic {basic}\nurl=https://x:{quote(TOKEN, safe='')}@host/r.git\n{ODD}"
    assert basic in body
    with WorkerState.for_worker(tmp_path, "agent-1") as state:
        reporter = Reporter(state, github, agent="agent-1", secrets=[ODD])
        reporter.comment("alice/widgets", 1, body, key="c1")
        reporter.open_issue("alice/widgets", f"{TOKEN} leaked", body, [f"label-{TOKEN}"], key="i1")
        with state.transaction() as db:
            payloads = b"".join(row[0] for row in db.execute("SELECT payload FROM outbox"))

    text = payloads.decode()
    assert "push failed" in text and "alice/widgets" in text
    assert no_form_left(TOKEN, text) == [] and no_form_left(ODD, text) == []
    assert not Redactor([TOKEN, ODD]).contains_secret(payloads)


WORKER = textwrap.dedent(
    """
    import base64, os, sys, warnings
    import structlog
    from bzzz.secrets.source import open_source
    from bzzz import runtime

    # As the CLI does: a logger bound to stderr as it was before any wrapping.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    log = structlog.get_logger("test")

    def main(rt):
        token = open_source().current()
        print("worker ran", rt.name)
        print("token", token, "basic", base64.b64encode(("x-access-token:" + token).encode()).decode())
        log.info("cloning", url=f"https://x-access-token:{token}@example.com/r.git", env={"GITHUB_TOKEN": token})
        sys.stdout.write(token[:5])
        sys.stdout.write(token[5:] + " written in two pieces\\n")
        sys.stdout.write("x" * 20000 + token + "y" * 20000 + "\\n")
        sys.stdout.flush()
        sys.stdout.buffer.write(b"bytes " + token.encode().hex().encode() + b"\\n")
        warnings.warn("deprecated: " + token)
        try:
            raise KeyError(token)
        except KeyError:
            log.exception("failed while holding the token")
        raise RuntimeError("task output: " + token)

    if os.environ.get("NAIVE"):
        main(type("Runtime", (), {"name": "naive"})())  # the same worker, not started by runtime.run
    else:
        runtime.run(main)
    """
)


def run_worker(tmp_path: Path, *, naive: bool) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "data").mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "GITHUB_TOKEN_FILE": str(token_file),
        "BZZZ_WORKER": "redacting",
        "BZZZ_RUN_DIR": str(tmp_path / "run"),
        "BZZZ_DATA_DIR": str(tmp_path / "data"),
        **({"NAIVE": "1"} if naive else {}),
    }
    return subprocess.run(
        [sys.executable, str(script)], check=False, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_worker_prints_no_form_of_its_token_in_logs_warnings_or_tracebacks(tmp_path: Path) -> None:
    naive = run_worker(tmp_path, naive=True)
    # The control: the same worker, not started through runtime.run, leaks the token everywhere.
    assert "worker ran naive" in naive.stdout and TOKEN in naive.stdout and TOKEN in naive.stderr
    assert TOKEN.encode().hex() in naive.stdout

    worker = run_worker(tmp_path, naive=False)

    out = worker.stdout + worker.stderr
    assert worker.returncode == 1, out
    assert "worker ran redacting" in worker.stdout and "written in two pieces" in worker.stdout
    assert "cloning" in out and "failed while holding the token" in out and "deprecated: " in out
    assert "RuntimeError: task output: " in worker.stderr and "KeyError" in out  # the tracebacks were printed
    assert "x" * 20000 in worker.stdout and "y" * 20000 in worker.stdout
    assert no_form_left(TOKEN, out) == [] and not Redactor([TOKEN]).contains_secret(out)
    assert out.count(REDACTED) >= 8


printable = st.text(alphabet=string.printable, max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " ", min_size=8, max_size=60),
    before=printable,
    after=printable,
)
def test_for_any_secret_and_any_text_around_it_no_form_survives(secret: str, before: str, after: str) -> None:
    redactor = Redactor([secret])
    data = secret.encode()
    for name, form in forms(secret).items():
        text = before + form + after
        out = redactor.redact(text)
        assert no_form_left(secret, out) == [], (name, text, out)
    for offset in range(4):
        prefix = (before.encode() + bytes(offset))[:offset]
        encoded = base64.b64encode(prefix + data + after.encode()).decode()
        core = b64_fixed_by(encoded, offset, len(data))
        assert core in encoded
        assert core not in redactor.redact(f"{before}{encoded}{after}"), (offset, encoded)


def test_a_megabyte_of_output_with_three_secrets_is_redacted() -> None:
    secrets = [TOKEN, ODD, "another-secret-value-0042"]
    chunk = "".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(1000))
    text = (chunk * (1_000_000 // len(chunk) + 1))[:1_000_000]
    text = text[:1000] + TOKEN + text[1000:500_000] + quote(ODD) + text[500_000:] + secrets[2].encode().hex()
    redactor = Redactor(secrets)
    assert all(Redactor([secret]).contains_secret(text) for secret in secrets)

    out = redactor.redact(text)

    assert out.count(REDACTED) == 3 and not redactor.contains_secret(out)
    assert len(out) == len(text) - len(TOKEN) - len(quote(ODD)) - 2 * len(secrets[2]) + 3 * len(REDACTED)
