"""What a client sends is never the forge's fault: a body GitHub cannot parse is its 400
"Problems parsing JSON", JSON of the wrong shape its 422 "Invalid request", on every
endpoint that takes a body; never a 500, never a traceback in the forge's log.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from github import GithubException

from tests.forge.harness import Forge, check_contract, start_forge, stop_forge
from tests.forge.test_pulls_and_git import push_branch

UNPARSEABLE = {
    "invalid UTF-8": b'{"title": "\xff\xfe", "body": "\xc3\x28", "name": "\xff"}',
    "an escaped lone high surrogate": b'{"title": "\\ud800", "body": "\\ud800", "name": "\\ud800"}',
    "an escaped lone low surrogate": b'{"title": "a\\udc00b", "body": "a\\udc00b", "name": "a\\udc00b"}',
    "a surrogate encoded as UTF-8 bytes": b'{"title": "\xed\xa0\x80", "body": "\xed\xa0\x80"}',
    "form encoding, not JSON": b"title=hello&body=world",
    "truncated JSON": b'{"title": "hello", "body": "wor',
    "NaN, which JSON does not have": b'{"title": NaN, "body": Infinity}',
    "nesting deeper than any parser's stack": b"[" * 200_000 + b"]" * 200_000,
    "a number no parser holds": b'{"title": 1e999999, "number": ' + b"9" * 5000 + b"}",
}
# JSON, but not the object every one of these operations takes (GitHub's own wording: its
# request schema's root is `links/0/schema`, and values are shown as Ruby shows them).
NOT_AN_OBJECT = {b"42": "42", b"true": "true", b"null": "nil", b'"text"': '"text"', b"[1, 2]": "[1, 2]"}


class Endpoints:
    """Every operation of the forge that takes a body, with a body it accepts."""

    def __init__(self, forge: Forge, tmp_path: Path) -> None:
        self.forge = forge
        comment = forge.call("POST", "/repos/alice/widgets/issues/2/comments", json={"body": "to be edited"})
        assert comment.status_code == 201
        self.comment_id = comment.json()["id"]
        push_branch(forge, tmp_path, "agent-1/bodies")
        pull = forge.call(
            "POST",
            "/repos/alice/widgets/pulls",
            json={"title": "A pull to edit", "head": "agent-1/bodies", "base": "main"},
        )
        assert pull.status_code == 201, pull.text
        self.pull_number = pull.json()["number"]
        self.main_sha = forge.call("GET", "/repos/alice/widgets/branches/main").json()["commit"]["sha"]

    def all(self) -> list[tuple[str, str, str, Callable[[], Any], int]]:
        """(method, path, token, a fresh valid body, the status it gets)"""
        issue, comment, pull = "/repos/alice/widgets/issues/1", self.comment_id, self.pull_number
        unique = lambda: uuid.uuid4().hex[:8]  # noqa: E731
        return [
            ("POST", "/repos/alice/widgets/issues", "agent-1-token", lambda: {"title": "A new issue"}, 201),
            ("PATCH", issue, "agent-1-token", lambda: {"body": "Edited."}, 200),
            ("POST", f"{issue}/comments", "agent-1-token", lambda: {"body": "A comment."}, 201),
            (
                "PATCH",
                f"/repos/alice/widgets/issues/comments/{comment}",
                "agent-1-token",
                lambda: {"body": "Edited comment."},
                200,
            ),
            ("POST", f"{issue}/assignees", "agent-1-token", lambda: {"assignees": ["agent-2"]}, 201),
            ("DELETE", f"{issue}/assignees", "agent-1-token", lambda: {"assignees": ["agent-2"]}, 200),
            ("POST", f"{issue}/labels", "agent-1-token", lambda: {"labels": ["bug"]}, 200),
            ("PUT", f"{issue}/labels", "agent-1-token", lambda: {"labels": ["bzzz-task"]}, 200),
            (
                "POST",
                "/repos/alice/widgets/labels",
                "agent-1-token",
                lambda: {"name": f"label-{unique()}", "color": "aabbcc"},
                201,
            ),
            (
                "POST",
                "/repos/alice/widgets/git/refs",
                "agent-1-token",
                lambda: {"ref": f"refs/heads/ref-{unique()}", "sha": self.main_sha},
                201,
            ),
            (
                "POST",
                "/repos/alice/widgets/pulls",
                "agent-1-token",
                lambda: {"title": "Same head again", "head": "agent-1/bodies", "base": "main"},
                422,
            ),
            ("PATCH", f"/repos/alice/widgets/pulls/{pull}", "agent-1-token", lambda: {"body": "Edited pull."}, 200),
            ("POST", "/repos/alice/widgets/forks", "agent-2-token", lambda: {}, 202),
            ("PATCH", "/repos/alice/widgets", "alice-token", lambda: {"description": "Widgets, edited"}, 200),
            ("PATCH", "/user", "agent-1-token", lambda: {"bio": "Works on widgets."}, 200),
        ]


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    # Content is created here far faster than GitHub's secondary limit allows: turned off.
    forge = start_forge(tmp_path_factory.mktemp("bodies"), "--secondary-per-minute", "0", "--secondary-per-hour", "0")
    try:
        yield Endpoints(forge, tmp_path_factory.mktemp("work"))
    finally:
        stop_forge(forge)
    assert forge.process.stdout is not None
    log = forge.process.stdout.read()
    assert "Traceback" not in log and "forge request failed" not in log, log[-3000:]
    assert not [e for e in forge.exchanges() if int(e["status"]) >= 500]  # type: ignore[call-overload]
    check_contract(forge)


def _ids(endpoints: Endpoints) -> list[str]:
    return [f"{m} {p}" for m, p, *_ in endpoints.all()]


def test_every_endpoint_accepts_its_valid_body(endpoints: Endpoints) -> None:
    for method, path, token, body, status in endpoints.all():
        response = endpoints.forge.call(method, path, token=token, json=body())
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        if status == 422:  # the one valid body that is refused on its merits: past parsing, into the handler
            assert "A pull request already exists" in response.text


@pytest.mark.parametrize("what", list(UNPARSEABLE))
def test_a_body_that_is_not_json_in_utf8_is_a_400_on_every_endpoint(endpoints: Endpoints, what: str) -> None:
    for method, path, token, _, _ in [*endpoints.all(), ("PUT", "/_forge/faults", "alice-token", dict, 200)]:
        response = endpoints.forge.call(
            method, path, token=token, data=UNPARSEABLE[what], headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, f"{method} {path}: {response.status_code} {response.text}"
        assert response.json()["message"] == "Problems parsing JSON"
        assert response.json()["documentation_url"].startswith("https://docs.github.com/")


@pytest.mark.parametrize("raw", list(NOT_AN_OBJECT))
def test_json_that_is_not_an_object_is_githubs_422_invalid_request(endpoints: Endpoints, raw: bytes) -> None:
    for method, path, token, _, _ in endpoints.all():
        response = endpoints.forge.call(method, path, token=token, data=raw)
        assert response.status_code == 422, f"{method} {path}: {response.status_code} {response.text}"
        message = response.json()["message"]
        if "/issues/" in path and path.endswith("/labels") and raw in (b'"text"', b"[1, 2]"):
            # GitHub takes a bare label name or array of names here; these fail as labels do
            assert message.startswith(("Invalid request.\n\nFor 'items', 1 is not", "Validation Failed")), message
        else:
            assert message == f"Invalid request.\n\nFor 'links/0/schema', {NOT_AN_OBJECT[raw]} is not an object."


VALUES: list[Any] = [
    None,
    True,
    0,
    2**70,
    1.5,
    "",
    "\u0000",
    "x" * 300,
    [],
    [1],
    [None],
    [{}],
    [{"name": 7}],
    {},
    {"name": "bug"},
]


def fields_of(method: str, path: str) -> list[str]:
    """The fields an operation reads, and one it does not."""
    tail = path.rsplit("/", 2)
    if path.endswith("/labels"):
        known = ["labels", "name", "color", "description"]
    elif path.endswith("/assignees"):
        known = ["assignees"]
    elif path.endswith("/git/refs"):
        known = ["ref", "sha"]
    elif path == "/user":
        known = ["name", "email", "blog", "bio"]
    elif path.endswith("/issues"):
        known = ["title", "body", "assignee", "assignees", "labels", "milestone"]
    elif tail[-2] == "issues":
        known = ["title", "body", "state", "state_reason", "labels", "assignees", "assignee"]
    elif path.endswith("/pulls"):
        known = ["title", "body", "head", "base", "draft", "maintainer_can_modify", "issue"]
    elif tail[-2] == "pulls":
        known = ["title", "body", "state", "base", "maintainer_can_modify"]
    else:
        known = ["body"]
    return [*known, "unknown"]


def test_no_value_of_any_json_type_in_any_field_makes_the_forge_fail(endpoints: Endpoints) -> None:
    """Each field each endpoint reads (and one it does not), set to each kind of JSON value:
    an answer of GitHub's, accepted or refused, never a 500."""
    refused = 0
    for method, path, token, valid, _ in endpoints.all():
        if path == "/repos/alice/widgets" or path.endswith("/forks"):
            continue  # renaming or forking the repository would take it from under the others; below
        for field in fields_of(method, path):
            for value in VALUES:
                response = endpoints.forge.call(method, path, token=token, json={**valid(), field: value})
                assert response.status_code < 500, f"{method} {path} {field}={value!r}: {response.text}"
                if response.status_code >= 400:
                    refused += 1
                    assert isinstance(response.json()["message"], str)
    assert refused > 100  # the values really were wrong for most fields: these were not all ignored
    for field in ("name", "default_branch", "private", "description", "homepage"):
        for value in VALUES:
            for method, path, token in (
                ("PATCH", "/repos/alice/widgets", "alice-token"),
                ("POST", "/repos/alice/widgets/forks", "stranger-token"),
            ):
                response = endpoints.forge.call(method, path, token=token, json={field: value})
                assert response.status_code < 500, f"{method} {path} {field}={value!r}: {response.text}"
    assert endpoints.forge.call("GET", "/repos/alice/widgets").status_code == 200  # never renamed to a wrong name


def test_a_wrong_type_is_named_as_github_names_it(endpoints: Endpoints) -> None:
    forge = endpoints.forge
    response = forge.call("POST", "/repos/alice/widgets/issues", json={"title": "Typed", "body": False})
    assert response.status_code == 422
    assert response.json()["message"] == "Invalid request.\n\nFor 'properties/body', false is not a string or null."
    response = forge.call("POST", "/repos/alice/widgets/issues/1/labels", json={"labels": [None]})
    assert response.json()["message"] == "Invalid request.\n\nFor 'items', nil is not a string or object."


def test_pygithub_gets_a_githubexception_with_githubs_message(endpoints: Endpoints) -> None:
    issue = endpoints.forge.github().get_repo("alice/widgets").get_issue(1)
    with pytest.raises(GithubException) as raised:
        issue.create_comment("\ud800")  # PyGithub escapes it in JSON as it is: a lone surrogate
    assert raised.value.status == 400 and raised.value.data["message"] == "Problems parsing JSON"
    assert issue.create_comment("\U0001f41d").body == "\U0001f41d"  # a whole pair is fine
