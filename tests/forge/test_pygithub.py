"""PyGithub, unchanged, drives every operation the agents use against a running forge.

Each response is also checked against GitHub's OpenAPI description when the module ends
(see conftest.check_contract).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import github
import pytest
from github import GithubException

from tests.forge.harness import Forge, contract


def test_the_authenticated_user_and_a_bad_token(forge: Forge) -> None:
    me = forge.github("agent-1-token").get_user()
    assert me.login == "agent-1"
    me.edit(name="Agent One", bio="works issues")
    assert forge.github("agent-1-token").get_user().name == "Agent One"
    with pytest.raises(github.BadCredentialsException) as bad:
        _ = forge.github("not-a-token").get_user().login  # the lazy user is fetched on first use
    assert bad.value.status == 401 and bad.value.data["message"] == "Bad credentials"


def test_a_repository_is_what_github_would_say(forge: Forge) -> None:
    repo = forge.github().get_repo("alice/widgets")
    assert (repo.full_name, repo.default_branch, repo.private, repo.owner.login) == (
        "alice/widgets",
        "main",
        False,
        "alice",
    )
    assert repo.permissions.push and not repo.permissions.admin
    assert repo.clone_url == f"{forge.url}/alice/widgets.git"
    assert {u.login for u in repo.get_assignees()} == {"alice", "agent-1", "agent-2"}
    assert repo.has_in_assignees("agent-2") and not repo.has_in_assignees("stranger")


def test_a_private_repository_is_invisible_to_others(forge: Forge) -> None:
    assert forge.github("alice-token").get_repo("alice/secret").private
    with pytest.raises(github.UnknownObjectException):
        forge.github("agent-1-token").get_repo("alice/secret")


def test_issues_are_created_edited_and_read_back(forge: Forge) -> None:
    repo = forge.github().get_repo("alice/widgets")
    issue = repo.create_issue("Support YAML config", body="as TOML is", labels=["bzzz-task"])
    assert issue.state == "open" and [label.name for label in issue.labels] == ["bzzz-task"]
    assert issue.user.login == "agent-1"
    issue.edit(title="Support YAML and TOML config", body="both", labels=["bug"])
    again = repo.get_issue(issue.number)
    assert (again.title, again.body, [label.name for label in again.labels]) == (
        "Support YAML and TOML config",
        "both",
        ["bug"],
    )
    again.edit(state="closed", state_reason="not_planned")
    closed = repo.get_issue(issue.number)
    assert closed.state == "closed" and closed.state_reason == "not_planned" and closed.closed_by.login == "agent-1"
    closed.edit(state="open")
    assert repo.get_issue(issue.number).state == "open"


def test_an_issue_without_a_title_is_a_validation_error(forge: Forge) -> None:
    response = forge.call("POST", "/repos/alice/widgets/issues", json={"body": "no title"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"resource": "Issue", "field": "title", "code": "missing_field"}]


def test_listing_issues_filters_as_github_does(forge: Forge) -> None:
    repo = forge.github().get_repo("alice/widgets")
    task = repo.create_issue("Filtered task", labels=["bzzz-task", "bug"])
    open_numbers = {i.number for i in repo.get_issues(state="open")}
    assert task.number in open_numbers
    bug_tasks = {i.number for i in repo.get_issues(labels=["bzzz-task", "bug"])}
    assert task.number in bug_tasks and 1 not in bug_tasks  # #1 is bzzz-task only
    unassigned = {i.number for i in repo.get_issues(assignee="none")}
    assert task.number in unassigned and 2 not in unassigned  # #2 is seeded assigned to agent-1
    assert 2 in {i.number for i in repo.get_issues(assignee="*")}
    assert 2 in {i.number for i in repo.get_issues(assignee="agent-1")}
    assert {i.number for i in repo.get_issues(creator="stranger")} == {3}
    ascending = [i.number for i in repo.get_issues(state="all", sort="created", direction="asc")]
    assert ascending == sorted(ascending)
    since = datetime.now(UTC) + timedelta(hours=1)
    assert list(repo.get_issues(since=since)) == []


def test_pagination_follows_link_headers(forge: Forge) -> None:
    gh = forge.github(per_page=2)
    repo = gh.get_repo("alice/widgets")
    for n in range(5):
        repo.create_issue(f"page filler {n}")
    everything = [i.number for i in repo.get_issues(state="all")]
    assert len(everything) == len(set(everything)) >= 8
    first = forge.call("GET", "/repos/alice/widgets/issues?per_page=2&state=all")
    assert 'rel="next"' in first.headers["Link"] and 'rel="last"' in first.headers["Link"]
    last = first.links["last"]["url"]
    page = forge.call("GET", last.removeprefix(forge.url))
    assert 'rel="prev"' in page.headers["Link"] and 'rel="next"' not in page.headers["Link"]


def test_assignees_are_added_never_replaced_and_strangers_are_silently_ignored(forge: Forge) -> None:
    repo = forge.github().get_repo("alice/widgets")
    issue = repo.create_issue("Claim me")
    issue.add_to_assignees("agent-1")
    issue.add_to_assignees("agent-2", "stranger")  # stranger has no push access: dropped, no error
    assert [a.login for a in repo.get_issue(issue.number).assignees] == ["agent-1", "agent-2"]
    issue.remove_from_assignees("agent-2")
    assert [a.login for a in repo.get_issue(issue.number).assignees] == ["agent-1"]
    events = [(e.event, e.assignee.login, e.actor.login) for e in repo.get_issue(issue.number).get_events()]
    assert events == [
        ("assigned", "agent-1", "agent-1"),
        ("assigned", "agent-2", "agent-1"),
        ("unassigned", "agent-2", "agent-1"),
    ]


def test_at_most_ten_assignees(forge_factory) -> None:
    helpers = [f"helper-{n}" for n in range(12)]
    users = "\n".join(f"  - {{login: {login}}}" for login in helpers)
    crowd = forge_factory(
        name="crowd",
        seed=f"""
users:
  - {{login: alice, tokens: [alice-token]}}
{users}
repos:
  - owner: alice
    name: crowded
    collaborators: {{{", ".join(f"{login}: push" for login in helpers)}}}
""",
    )
    issue = crowd.github("alice-token").get_repo("alice/crowded").create_issue("Many hands")
    issue.add_to_assignees(*helpers[:8])
    issue.add_to_assignees(*helpers[8:])  # only two more fit
    assert [a.login for a in crowd.github("alice-token").get_repo("alice/crowded").get_issue(1).assignees] == helpers[
        :10
    ]


def test_a_user_without_push_access_cannot_assign(forge: Forge) -> None:
    issue = forge.github("alice-token").get_repo("alice/widgets").create_issue("Not yours")
    response = forge.call(
        "POST",
        f"/repos/alice/widgets/issues/{issue.number}/assignees",
        token="stranger-token",
        json={"assignees": ["stranger", "agent-1"]},
    )
    assert response.status_code == 201 and response.json()["assignees"] == []


def test_two_clients_assigning_at_the_same_moment_both_succeed_and_both_are_assigned(forge: Forge) -> None:
    number = forge.github("alice-token").get_repo("alice/widgets").create_issue("Race me").number
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def claim(login: str) -> None:
        barrier.wait()
        response = forge.call(
            "POST",
            f"/repos/alice/widgets/issues/{number}/assignees",
            token=f"{login}-token",
            json={"assignees": [login]},
        )
        results[login] = response.status_code

    threads = [threading.Thread(target=claim, args=(login,)) for login in ("agent-1", "agent-2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"agent-1": 201, "agent-2": 201}
    issue = forge.github().get_repo("alice/widgets").get_issue(number)
    assert sorted(a.login for a in issue.assignees) == ["agent-1", "agent-2"]
    assigned = [e for e in issue.get_events() if e.event == "assigned"]
    assert len(assigned) == 2 and assigned[0].id < assigned[1].id  # the order every agent can agree on


def test_labels_of_a_repository_and_of_an_issue(forge: Forge) -> None:
    repo = forge.github().get_repo("alice/widgets")
    repo.create_label("needs-plan", "fbca04", "HMMM first")
    with pytest.raises(GithubException) as exists:
        repo.create_label("needs-plan", "fbca04")
    assert exists.value.status == 422
    issue = repo.create_issue("Label me")
    issue.add_to_labels("needs-plan", "brand-new")  # an unknown label is created on the way
    assert sorted(label.name for label in issue.get_labels()) == ["brand-new", "needs-plan"]
    issue.remove_from_labels("needs-plan")
    issue.set_labels("bug", "bzzz-task")
    assert sorted(label.name for label in repo.get_issue(issue.number).labels) == ["bug", "bzzz-task"]
    issue.delete_labels()
    assert list(repo.get_issue(issue.number).labels) == []
    assert "brand-new" in {label.name for label in repo.get_labels()}
    kinds = [e.event for e in repo.get_issue(issue.number).get_events()]
    assert kinds == ["labeled", "labeled", "unlabeled", "unlabeled", "labeled", "labeled", "unlabeled", "unlabeled"]


def test_comments_are_created_edited_listed_and_deleted(forge: Forge) -> None:
    repo = forge.github().get_repo("alice/widgets")
    issue = repo.create_issue("Talk to me")
    comment = issue.create_comment("Plan: add a flag.")
    comment.edit("Plan: add --verbose.")
    assert [c.body for c in issue.get_comments()] == ["Plan: add --verbose."]
    assert repo.get_issue(issue.number).comments == 1
    assert issue.get_comment(comment.id).body == "Plan: add --verbose."
    with pytest.raises(GithubException) as denied:
        forge.github("stranger-token").get_repo("alice/widgets").get_issue(issue.number).get_comment(comment.id).edit(
            "mine now"
        )
    assert denied.value.status == 403
    comment.delete()
    assert list(issue.get_comments()) == []


def test_events_and_timeline_record_who_did_what_in_order(forge: Forge) -> None:
    repo = forge.github().get_repo("alice/widgets")
    issue = repo.create_issue("Lifecycle")
    issue.add_to_assignees("agent-1")
    issue.add_to_labels("bug")
    issue.create_comment("on it")
    issue.edit(state="closed")
    issue.edit(state="open")
    events = list(repo.get_issue(issue.number).get_events())
    assert [e.event for e in events] == ["assigned", "labeled", "closed", "reopened"]
    assert all(e.actor.login == "agent-1" for e in events)
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert events[1].label.name == "bug"
    timeline = [t.event for t in issue.get_timeline()]
    assert timeline == ["assigned", "labeled", "commented", "closed", "reopened"]
    # The timeline's schema is an anyOf loose enough to take almost anything: hold each item
    # to the schema of its own kind.
    kinds = {
        "assigned": "timeline-assigned-issue-event",
        "labeled": "labeled-issue-event",
        "commented": "timeline-comment-event",
        "closed": "state-change-issue-event",
        "reopened": "state-change-issue-event",
    }
    raw = forge.call("GET", f"/repos/alice/widgets/issues/{issue.number}/timeline").json()
    for item in raw:
        contract().validate_schema(kinds[item["event"]], item)
    repo_events = list(repo.get_issues_events())
    assert repo_events[0].issue.number == issue.number and repo_events[0].event == "reopened"


def test_branches_and_git_refs_come_from_the_real_repository(forge: Forge) -> None:
    repo = forge.github().get_repo("alice/widgets")
    main = repo.get_branch("main")
    assert main.commit.commit.message.startswith("Initial commit")
    ref = repo.get_git_ref("heads/main")
    assert ref.object.sha == main.commit.sha
    created = repo.create_git_ref("refs/heads/agent-1/plan", main.commit.sha)
    assert created.ref == "refs/heads/agent-1/plan"
    assert repo.get_branch("agent-1/plan").commit.sha == main.commit.sha
    with pytest.raises(GithubException) as again:
        repo.create_git_ref("refs/heads/agent-1/plan", main.commit.sha)
    assert again.value.status == 422
    with pytest.raises(GithubException) as missing:
        repo.get_branch("no-such-branch")
    assert missing.value.status == 404


def test_rate_limit_is_reported(forge: Forge) -> None:
    gh = forge.github()
    limits = gh.get_rate_limit()
    core = limits.resources.core if hasattr(limits, "resources") else limits.core
    assert core.limit == 5000 and 0 < core.remaining <= 5000
    response = forge.call("GET", "/user")
    assert int(response.headers["X-RateLimit-Remaining"]) < 5000
    assert response.headers["X-RateLimit-Resource"] == "core"


def test_a_conditional_request_is_answered_304_and_not_counted(forge: Forge) -> None:
    first = forge.call("GET", "/repos/alice/widgets/issues/1")
    etag = first.headers["ETag"]
    again = forge.call("GET", "/repos/alice/widgets/issues/1", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["X-RateLimit-Remaining"] == first.headers["X-RateLimit-Remaining"]
    forge.call("POST", "/repos/alice/widgets/issues/1/comments", json={"body": "changes the issue"})
    changed = forge.call("GET", "/repos/alice/widgets/issues/1", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


@pytest.mark.parametrize(
    "method, path, body, status, message",
    [
        ("POST", "/repos/alice/widgets/issues", b"{not json", 400, "Problems parsing JSON"),
        ("GET", "/no/such/route", None, 404, "Not Found"),
        ("DELETE", "/rate_limit", None, 404, "Not Found"),  # GitHub answers a wrong method with 404
        ("GET", "/repos/alice/nothing-here", None, 404, "Not Found"),
        ("POST", "/repos/alice/widgets/issues", b"[" * 2_000_000, 413, "Payload too large"),
    ],
)
def test_bad_requests_get_githubs_error_body_never_a_traceback(
    forge: Forge, method: str, path: str, body: bytes | None, status: int, message: str
) -> None:
    response = forge.call(method, path, data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["message"] == message and response.json()["documentation_url"].startswith("https://")


def test_writing_needs_a_token(forge: Forge) -> None:
    response = forge.call("POST", "/repos/alice/widgets/issues", token=None, json={"title": "anonymous"})
    assert response.status_code == 401 and response.json()["message"] == "Requires authentication"
    assert forge.call("GET", "/repos/alice/widgets/issues/1", token=None).status_code == 200
