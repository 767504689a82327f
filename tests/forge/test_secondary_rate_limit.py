"""GitHub's secondary rate limit on content creation, as the forge enforces it.

GitHub documents it so: "no more than 80 content-generating requests per minute and no more
than 500 content-generating requests per hour", past which it answers 403 (or 429) with a
`retry-after` header and a message saying a secondary rate limit was exceeded. What counts
is what GitHub's own description of each operation says: "Creating content too quickly using
this endpoint may result in secondary rate limiting" (creating an issue, a comment, a pull
request). Reads, edits, labels and the like do not count; neither does a call that fails.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from github import Github, GithubException, RateLimitExceededException

from tests.forge.harness import Forge
from tests.forge.test_pulls_and_git import push_branch

REFERENCE = Path("/work/shared/reference/github-rest-openapi-subset.json")
MESSAGE = (
    "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. "
    "Please retry your request again later."
)
WARNING = "Creating content too quickly using this endpoint may result in secondary rate limiting"


def comment(forge: Forge, token: str = "agent-1-token", text: str = "A comment.") -> int:
    return forge.call("POST", "/repos/alice/widgets/issues/1/comments", token=token, json={"body": text}).status_code


def issue(forge: Forge, token: str = "agent-1-token") -> int:
    return forge.call("POST", "/repos/alice/widgets/issues", token=token, json={"title": "New"}).status_code


def assert_secondary_limited(response: object, longest_s: float) -> int:
    """GitHub's answer: 403, its message, a retry-after in whole seconds; the primary limit is not spent."""
    assert response.status_code == 403, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["message"] == MESSAGE
    assert body["documentation_url"].endswith("#about-secondary-rate-limits")
    headers = response.headers  # type: ignore[attr-defined]
    retry_after = int(headers["retry-after"])
    assert 1 <= retry_after <= longest_s
    assert int(headers["x-ratelimit-remaining"]) > 0  # not the primary limit
    return retry_after


def test_githubs_description_marks_exactly_the_operations_the_forge_counts() -> None:
    spec = json.loads(REFERENCE.read_text())
    warned = {
        f"{method.upper()} {path}"
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if isinstance(op, dict) and WARNING in " ".join(op.get("description", "").split())
    }
    assert warned == {
        "POST /repos/{owner}/{repo}/issues",
        "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
        "POST /repos/{owner}/{repo}/pulls",
    }


def test_by_default_the_81st_content_post_within_a_minute_is_refused(forge_factory: Callable[..., Forge]) -> None:
    forge = forge_factory()
    statuses = [comment(forge, text=f"Comment {n}") for n in range(80)]
    assert statuses == [201] * 80
    assert_secondary_limited(forge.call("POST", "/repos/alice/widgets/issues", json={"title": "One too many"}), 60)


def test_the_limit_counts_issues_comments_and_pull_requests_and_nothing_else(
    forge_factory: Callable[..., Forge], tmp_path: Path
) -> None:
    forge = forge_factory("--secondary-per-minute", "3")
    push_branch(forge, tmp_path, "agent-1/limited")
    # Failed attempts create nothing and use up nothing: without that, the third creation below would be refused.
    assert forge.call("POST", "/repos/alice/widgets/issues", json={"title": ""}).status_code == 422
    assert forge.call("POST", "/repos/alice/widgets/issues/999/comments", json={"body": "x"}).status_code == 404
    assert forge.call("POST", "/repos/alice/widgets/pulls", json={"head": "nope", "base": "main"}).status_code == 422
    assert issue(forge) == 201
    assert comment(forge) == 201
    pull = forge.call(
        "POST", "/repos/alice/widgets/pulls", json={"title": "Limited", "head": "agent-1/limited", "base": "main"}
    )
    assert pull.status_code == 201, pull.text

    assert_secondary_limited(forge.call("POST", "/repos/alice/widgets/issues/1/comments", json={"body": "4th"}), 60)
    assert_secondary_limited(forge.call("POST", "/repos/alice/widgets/issues", json={"title": "4th"}), 60)

    # Not content creation: reading, editing (GitHub does not mark PATCH so), labels, assignees, refs.
    assert forge.call("GET", "/repos/alice/widgets/issues/1").status_code == 200
    assert forge.call("GET", "/repos/alice/widgets/issues/1/comments").status_code == 200
    comment_id = forge.call("GET", "/repos/alice/widgets/issues/1/comments").json()[-1]["id"]
    assert (
        forge.call(
            "PATCH", f"/repos/alice/widgets/issues/comments/{comment_id}", json={"body": "Edited while limited."}
        ).status_code
        == 200
    )
    assert forge.call("PATCH", "/repos/alice/widgets/issues/1", json={"body": "Edited."}).status_code == 200
    assert forge.call("POST", "/repos/alice/widgets/issues/1/labels", json={"labels": ["bug"]}).status_code == 200
    assert (
        forge.call("POST", "/repos/alice/widgets/issues/1/assignees", json={"assignees": ["agent-1"]}).status_code
        == 201
    )
    assert (
        forge.call("PATCH", f"/repos/alice/widgets/pulls/{pull.json()['number']}", json={"body": "Edited."}).status_code
        == 200
    )
    assert forge.call("POST", "/repos/alice/widgets/labels", json={"name": "new-label"}).status_code == 201
    assert forge.call("GET", "/rate_limit").status_code == 200
    # Per user: another account creates as before.
    assert comment(forge, token="agent-2-token") == 201
    assert comment(forge) == 403  # and the first still cannot


def test_the_hourly_limit_holds_on_its_own(forge_factory: Callable[..., Forge]) -> None:
    forge = forge_factory("--secondary-per-minute", "0", "--secondary-per-hour", "2")
    assert [issue(forge), comment(forge)] == [201, 201]
    assert_secondary_limited(forge.call("POST", "/repos/alice/widgets/issues", json={"title": "3rd"}), 3600)


def test_zero_turns_the_limit_off(forge_factory: Callable[..., Forge]) -> None:
    forge = forge_factory("--secondary-per-minute", "0", "--secondary-per-hour", "0")
    assert [comment(forge, text=f"Comment {n}") for n in range(100)] == [201] * 100


def test_after_retry_after_seconds_the_limit_lifts(forge_factory: Callable[..., Forge]) -> None:
    # A "minute" of 3 s so that its end comes within the test.
    forge = forge_factory("--secondary-per-minute", "2", "--secondary-minute-seconds", "3", "--secondary-per-hour", "0")
    for _ in range(50):  # on a slow machine a slot may free while posting: post until refused
        response = forge.call("POST", "/repos/alice/widgets/issues/1/comments", json={"body": "Fast."})
        if response.status_code != 201:
            break
    retry_after = assert_secondary_limited(response, 3)
    time.sleep(retry_after)  # what the client is told to do, not an assertion on timing
    assert comment(forge) == 201


def test_pygithub_sees_a_secondary_rate_limit(forge_factory: Callable[..., Forge]) -> None:
    forge = forge_factory("--secondary-per-minute", "1")
    # retry=None: PyGithub would otherwise wait out the retry-after itself and try again.
    gh: Github = forge.github(retry=None)
    issue_1 = gh.get_repo("alice/widgets").get_issue(1)
    issue_1.create_comment("First.")
    with pytest.raises(RateLimitExceededException) as raised:
        issue_1.create_comment("Second.")
    assert isinstance(raised.value, GithubException) and raised.value.status == 403
    assert raised.value.headers is not None and int(raised.value.headers["retry-after"]) >= 1
    assert issue_1.edit(body="Edited instead.") is None and issue_1.body == "Edited instead."
