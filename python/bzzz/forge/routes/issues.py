"""Issues: listing with GitHub's filters, editing, assignees, labels, comments, events, timeline."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from bzzz.forge.api import ApiError, Context, Reply, endpoint, invalid, not_found, wrong_type
from bzzz.forge.routes.common import (
    choice,
    found,
    issue_of,
    names,
    number_param,
    repo_of,
    string_field,
    string_list,
)
from bzzz.forge.store import IssueFilter, Row, parse_iso


def list_issues(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    since = ctx.query("since")
    try:
        since_ts = parse_iso(since) if since else None
    except ValueError:
        raise invalid("Query", "since", message="since must be an ISO 8601 timestamp") from None
    labels = tuple(x.strip() for x in (ctx.query("labels") or "").split(",") if x.strip())
    f = IssueFilter(
        state=choice(ctx, "state", "open", ("open", "closed", "all")),
        labels=labels,
        assignee=ctx.query("assignee") or None,
        creator=ctx.query("creator") or None,
        since=since_ts,
        sort=choice(ctx, "sort", "created", ("created", "updated", "comments")),
        direction=choice(ctx, "direction", "desc", ("asc", "desc")),
    )
    rows = ctx.store.issues(repo["id"], f)
    return ctx.paginate([ctx.render.issue(row, repo) for row in rows])


def create_issue(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    me = ctx.me()
    if not repo["has_issues"]:
        raise ApiError(410, "Issues are disabled for this repo")
    body = ctx.json_object()
    title = body.get("title")
    if isinstance(title, int) and not isinstance(title, bool):
        title = str(title)  # GitHub's schema allows a number as the title
    if not isinstance(title, str) or not title.strip():
        raise invalid("Issue", "title", "missing_field")
    text = string_field(body, "body", "Issue", nullable=True)
    assignees = string_list(body, "assignees", "Issue") or []
    assignee = string_field(body, "assignee", "Issue", nullable=True)
    if assignee:
        assignees = [assignee, *assignees]
    labels = string_list(body, "labels", "Issue") or []
    issue = ctx.store.create_issue(repo, me, title, text, labels=labels, assignees=assignees)
    location = f"{ctx.render.base}/repos/{repo['owner_login']}/{repo['name']}/issues/{issue['number']}"
    return Reply(201, ctx.render.issue(issue, repo), {"Location": location})


def get_issue(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    return Reply(200, ctx.render.issue(issue_of(ctx, repo), repo))


def patch_issue(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    issue = issue_of(ctx, repo)
    me = ctx.me()
    if not ctx.store.can_push(repo, me) and issue["user_id"] != me["id"]:
        raise ApiError(403, "You do not have permission to edit this issue")
    body = ctx.json_object()
    fields: dict[str, Any] = {}
    if "title" in body:
        title = body["title"]
        if not isinstance(title, str | int) or isinstance(title, bool) or not str(title).strip():
            raise invalid("Issue", "title")
        fields["title"] = str(title)
    if "body" in body:
        fields["body"] = string_field(body, "body", "Issue", nullable=True)
    if "state" in body:
        if not isinstance(body["state"], str) or body["state"] not in ("open", "closed"):
            raise invalid("Issue", "state")
        fields["state"] = body["state"]
    if "state_reason" in body:
        if not isinstance(body["state_reason"], str | None) or body["state_reason"] not in (
            "completed",
            "not_planned",
            "duplicate",
            "reopened",
            None,
        ):
            raise invalid("Issue", "state_reason")
        fields["state_reason"] = body["state_reason"]
    if "labels" in body:
        fields["labels"] = string_list(body, "labels", "Issue") if body["labels"] is not None else []
    if "assignees" in body:
        fields["assignees"] = string_list(body, "assignees", "Issue") if body["assignees"] is not None else []
    elif "assignee" in body:
        fields["assignee"] = string_field(body, "assignee", "Issue", nullable=True)
    ctx.store.edit_issue(repo, issue, me, fields)
    return Reply(200, ctx.render.issue(ctx.store.issue_by_id(issue["id"]), repo))  # type: ignore[arg-type]


def _assignee_logins(ctx: Context) -> list[str]:
    body = ctx.json_object()
    logins = string_list(body, "assignees", "Issue")
    if logins is None:
        raise invalid("Issue", "assignees", "missing_field")
    return logins


def add_assignees(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    issue = issue_of(ctx, repo)
    ctx.store.add_assignees(repo, issue["id"], ctx.me(), _assignee_logins(ctx))
    return Reply(201, ctx.render.issue(ctx.store.issue_by_id(issue["id"]), repo))  # type: ignore[arg-type]


def remove_assignees(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    issue = issue_of(ctx, repo)
    ctx.store.remove_assignees(repo, issue["id"], ctx.me(), _assignee_logins(ctx))
    return Reply(200, ctx.render.issue(ctx.store.issue_by_id(issue["id"]), repo))  # type: ignore[arg-type]


def check_issue_assignee(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    issue_of(ctx, repo)
    login = ctx.param("assignee").lower()
    if any(u["login"].lower() == login for u in ctx.store.assignable(repo)):
        return Reply(204)
    raise not_found()


# --- labels of an issue ---------------------------------------------------------------------


def _label_names(ctx: Context) -> list[str]:
    body = ctx.body
    if isinstance(body, list | str):
        body = {"labels": body}
    if isinstance(body, dict) and isinstance(body.get("labels"), list):
        return names(body["labels"])  # [{"name": ...}] is accepted as well as ["name"]
    if (body is None and not ctx.body_given) or (isinstance(body, dict) and "labels" not in body):
        return []
    if isinstance(body, dict):
        raise invalid("Label", "labels", message="labels must be an array of strings")
    raise wrong_type("links/0/schema", body, "an object")


def _issue_labels(ctx: Context, repo: Row, issue: Row) -> Reply:
    return Reply(200, [ctx.render.label(label, repo) for label in ctx.store.issue_labels(issue["id"])])


def _editable(ctx: Context) -> tuple[Row, Row, Row]:
    repo = repo_of(ctx)
    issue = issue_of(ctx, repo)
    me = ctx.me()
    if not ctx.store.can_push(repo, me):
        raise ApiError(403, "Must have push access to repository")
    return repo, issue, me


def list_issue_labels(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    issue = issue_of(ctx, repo)
    return ctx.paginate([ctx.render.label(label, repo) for label in ctx.store.issue_labels(issue["id"])])


def add_issue_labels(ctx: Context) -> Reply:
    repo, issue, me = _editable(ctx)
    names = _label_names(ctx)
    if not names:
        raise invalid("Label", "labels", "missing_field")
    ctx.store.set_labels(repo, issue["id"], me, names, replace=False)
    return _issue_labels(ctx, repo, issue)


def set_issue_labels(ctx: Context) -> Reply:
    repo, issue, me = _editable(ctx)
    ctx.store.set_labels(repo, issue["id"], me, _label_names(ctx), replace=True)
    return _issue_labels(ctx, repo, issue)


def clear_issue_labels(ctx: Context) -> Reply:
    repo, issue, me = _editable(ctx)
    ctx.store.set_labels(repo, issue["id"], me, [], replace=True)
    return Reply(204)


def remove_issue_label(ctx: Context) -> Reply:
    repo, issue, me = _editable(ctx)
    if not ctx.store.remove_label(repo, issue["id"], me, ctx.param("name")):
        raise ApiError(404, "Label does not exist")
    return _issue_labels(ctx, repo, issue)


# --- comments -----------------------------------------------------------------------------


def list_comments(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    issue = issue_of(ctx, repo)
    since = ctx.query("since")
    try:
        since_ts = parse_iso(since) if since else None
    except ValueError:
        raise invalid("Query", "since") from None
    rows = ctx.store.comments(issue["id"], since_ts)
    return ctx.paginate([ctx.render.comment(row, repo, issue["number"]) for row in rows])


def create_comment(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    issue = issue_of(ctx, repo)
    body = string_field(ctx.json_object(), "body", "IssueComment", required=True)
    assert body is not None
    if issue["locked"] and not ctx.store.can_push(repo, ctx.me()):
        raise ApiError(403, "Issue is locked")
    row = ctx.store.add_comment(issue["id"], ctx.me(), body)
    return Reply(
        201,
        ctx.render.comment(row, repo, issue["number"]),
        {"Location": ctx.render.comment(row, repo, issue["number"])["url"]},
    )


def _comment(ctx: Context, *, write: bool) -> tuple[Row, Row, int]:
    repo = repo_of(ctx)
    row = found(ctx.store.comment(repo["id"], number_param(ctx, "comment_id")))
    if write:
        me = ctx.me()
        if row["user_id"] != me["id"] and not ctx.store.can_push(repo, me):
            raise ApiError(403, "You do not have permission to change this comment")
    issue = ctx.store.issue_by_id(row["issue_id"])
    assert issue is not None
    return repo, row, int(issue["number"])


def get_comment(ctx: Context) -> Reply:
    repo, row, number = _comment(ctx, write=False)
    return Reply(200, ctx.render.comment(row, repo, number))


def patch_comment(ctx: Context) -> Reply:
    repo, row, number = _comment(ctx, write=True)
    body = string_field(ctx.json_object(), "body", "IssueComment", required=True)
    assert body is not None
    ctx.store.edit_comment(row["id"], body)
    updated = ctx.store.comment(repo["id"], row["id"])
    assert updated is not None
    return Reply(200, ctx.render.comment(updated, repo, number))


def delete_comment(ctx: Context) -> Reply:
    _, row, _ = _comment(ctx, write=True)
    ctx.store.delete_comment(row["id"])
    return Reply(204)


# --- events and timeline --------------------------------------------------------------------


def issue_events(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    issue = issue_of(ctx, repo)
    return ctx.paginate([ctx.render.event(row, repo) for row in ctx.store.events(issue_id=issue["id"])])


def repo_events(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    return ctx.paginate([ctx.render.event(row, repo, with_issue=True) for row in ctx.store.events(repo_id=repo["id"])])


def timeline(ctx: Context) -> Reply:
    """Events and comments of one issue, oldest first (comments appear as `commented`)."""
    repo = repo_of(ctx)
    issue = issue_of(ctx, repo)
    items: list[tuple[int, int, dict[str, Any]]] = []
    for row in ctx.store.events(issue_id=issue["id"]):
        items.append((row["created_at"], 0, ctx.render.event(row, repo, timeline=True)))
    for row in ctx.store.comments(issue["id"]):
        items.append((row["created_at"], 1, ctx.render.timeline_comment(row, repo, issue["number"])))
    items.sort(key=lambda item: (item[0], item[1], item[2]["id"]))
    return ctx.paginate([item[2] for item in items])


_ISSUES = "/repos/{owner}/{repo}/issues"
_ISSUE = _ISSUES + "/{issue_number:int}"
ROUTES = [
    Route(_ISSUES, endpoint(list_issues), methods=["GET"]),
    Route(_ISSUES, endpoint(create_issue, creates_content=True), methods=["POST"]),
    Route(f"{_ISSUES}/events", endpoint(repo_events), methods=["GET"]),
    Route(f"{_ISSUES}/comments/{{comment_id}}", endpoint(get_comment), methods=["GET"]),
    Route(f"{_ISSUES}/comments/{{comment_id}}", endpoint(patch_comment), methods=["PATCH"]),
    Route(f"{_ISSUES}/comments/{{comment_id}}", endpoint(delete_comment), methods=["DELETE"]),
    Route(_ISSUE, endpoint(get_issue), methods=["GET"]),
    Route(_ISSUE, endpoint(patch_issue), methods=["PATCH"]),
    Route(f"{_ISSUE}/assignees", endpoint(add_assignees), methods=["POST"]),
    Route(f"{_ISSUE}/assignees", endpoint(remove_assignees), methods=["DELETE"]),
    Route(f"{_ISSUE}/assignees/{{assignee}}", endpoint(check_issue_assignee), methods=["GET"]),
    Route(f"{_ISSUE}/labels", endpoint(list_issue_labels), methods=["GET"]),
    Route(f"{_ISSUE}/labels", endpoint(add_issue_labels), methods=["POST"]),
    Route(f"{_ISSUE}/labels", endpoint(set_issue_labels), methods=["PUT"]),
    Route(f"{_ISSUE}/labels", endpoint(clear_issue_labels), methods=["DELETE"]),
    Route(f"{_ISSUE}/labels/{{name}}", endpoint(remove_issue_label), methods=["DELETE"]),
    Route(f"{_ISSUE}/comments", endpoint(list_comments), methods=["GET"]),
    Route(f"{_ISSUE}/comments", endpoint(create_comment, creates_content=True), methods=["POST"]),
    Route(f"{_ISSUE}/events", endpoint(issue_events), methods=["GET"]),
    Route(f"{_ISSUE}/timeline", endpoint(timeline), methods=["GET"]),
]
