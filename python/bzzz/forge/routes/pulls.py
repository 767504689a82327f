"""Pull requests: create (from a branch of the same repository or of a fork), list, get, edit."""

from __future__ import annotations

from starlette.routing import Route

from bzzz.forge.api import ApiError, Context, Reply, endpoint, invalid
from bzzz.forge.routes.common import bool_field, choice, found, number_param, repo_of, string_field
from bzzz.forge.store import Conflict, Row


def _render(ctx: Context, repo: Row, row: Row, *, full: bool = True) -> dict[str, object]:
    return ctx.render.pull(row, repo, ctx.store.repo_by_id(row["head_repo_id"]), full=full)


def _head(ctx: Context, repo: Row, head: str) -> tuple[Row, str]:
    """`branch` or `owner:branch` (a fork of this repository, or the repository itself)."""
    owner, _, branch = head.rpartition(":")
    if not owner or owner.lower() == repo["owner_login"].lower():
        return repo, branch
    for fork in ctx.store.forks(repo["id"]):
        if fork["owner_login"].lower() == owner.lower():
            return fork, branch
    raise invalid("PullRequest", "head")


def create_pull(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    me = ctx.me()
    body = ctx.json_object()
    title = string_field(body, "title", "PullRequest")
    head = string_field(body, "head", "PullRequest", required=True)
    base = string_field(body, "base", "PullRequest", required=True)
    assert head is not None and base is not None
    if body.get("issue") is not None:
        raise invalid("PullRequest", "issue", message="converting issues to pull requests is not supported here")
    if not title:
        raise invalid("PullRequest", "title", "missing_field")
    head_repo, head_ref = _head(ctx, repo, head)
    if head_repo["id"] == repo["id"] and not ctx.store.can_push(repo, me):
        raise ApiError(403, "Must have push access to create a pull request from a branch of this repository")
    git = ctx.forge.git
    base_sha = git.resolve(repo["owner_login"], repo["name"], f"heads/{base}")
    if base_sha is None:
        raise invalid("PullRequest", "base")
    head_sha = git.resolve(head_repo["owner_login"], head_repo["name"], f"heads/{head_ref}")
    if head_sha is None:
        raise invalid("PullRequest", "head")
    # A fork's head commit is in the fork's repository: fetch it over before comparing.
    if head_repo["id"] != repo["id"]:
        git.fetch_branch(
            repo["owner_login"],
            repo["name"],
            head_repo["owner_login"],
            head_repo["name"],
            head_ref,
            f"refs/forks/{head_repo['owner_login']}/{head_ref}",
        )
    if git.commits_between(repo["owner_login"], repo["name"], base_sha, head_sha) == 0:
        raise ApiError(
            422,
            "Validation Failed",
            errors=[{"resource": "PullRequest", "code": "custom", "message": f"No commits between {base} and {head}"}],
        )
    draft, modify = bool_field(body, "draft"), bool_field(body, "maintainer_can_modify")
    try:
        row = ctx.store.create_pull(
            repo,
            me,
            title,
            string_field(body, "body", "PullRequest", nullable=True),
            head_repo=head_repo,
            head_ref=head_ref,
            head_sha=head_sha,
            base_ref=base,
            base_sha=base_sha,
            draft=draft,
            maintainer_can_modify=modify,
        )
    except Conflict as error:
        raise ApiError(
            422, "Validation Failed", errors=[{"resource": "PullRequest", "code": "custom", "message": str(error)}]
        ) from None
    data = _render(ctx, repo, row)
    return Reply(201, data, {"Location": str(data["url"])})


def list_pulls(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    head = ctx.query("head")
    head_filter = None
    if head:
        owner, _, branch = head.rpartition(":")
        head_repo = repo if not owner else ctx.store.repo(owner, repo["name"])
        if head_repo is None or not branch:
            return ctx.paginate([])
        head_filter = (int(head_repo["id"]), branch)
    rows = ctx.store.pulls(
        repo["id"],
        state=choice(ctx, "state", "open", ("open", "closed", "all")),
        head=head_filter,
        base=ctx.query("base") or None,
        sort=choice(ctx, "sort", "created", ("created", "updated", "popularity", "long-running")),
        direction=choice(ctx, "direction", "desc", ("asc", "desc")),
    )
    return ctx.paginate([_render(ctx, repo, row, full=False) for row in rows])


def _pull(ctx: Context, repo: Row) -> Row:
    return found(ctx.store.pull(repo["id"], number_param(ctx, "pull_number")))


def get_pull(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    row = _pull(ctx, repo)
    # The head may have moved since (a push to the branch): GitHub shows the branch's tip.
    head_repo = ctx.store.repo_by_id(row["head_repo_id"]) or repo
    tip = ctx.forge.git.resolve(head_repo["owner_login"], head_repo["name"], f"heads/{row['head_ref']}")
    if tip is not None and tip != row["head_sha"] and row["state"] == "open":
        ctx.store.update_pull(row["id"], {"head_sha": tip})
        row = _pull(ctx, repo)
    return Reply(200, _render(ctx, repo, row))


def patch_pull(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    row = _pull(ctx, repo)
    me = ctx.me()
    if row["user_id"] != me["id"] and not ctx.store.can_push(repo, me):
        raise ApiError(403, "You do not have permission to edit this pull request")
    body = ctx.json_object()
    string_field(body, "title", "PullRequest")
    string_field(body, "body", "PullRequest", nullable=True)
    string_field(body, "state", "PullRequest")
    if "maintainer_can_modify" in body:
        bool_field(body, "maintainer_can_modify")
    fields = {k: body[k] for k in ("title", "body", "state") if k in body}
    if "state" in fields and fields["state"] not in ("open", "closed"):
        raise invalid("PullRequest", "state")
    if "title" in fields and not fields["title"].strip():
        raise invalid("PullRequest", "title")
    issue = ctx.store.issue_by_id(row["issue_id"])
    assert issue is not None
    ctx.store.edit_issue(repo, issue, me, fields)
    if "base" in body:
        base = string_field(body, "base", "PullRequest", required=True)
        sha = ctx.forge.git.resolve(repo["owner_login"], repo["name"], f"heads/{base}")
        if sha is None:
            raise invalid("PullRequest", "base")
        ctx.store.update_pull(row["id"], {"base_ref": base, "base_sha": sha})
    if isinstance(body.get("maintainer_can_modify"), bool):
        ctx.store.update_pull(row["id"], {"maintainer_can_modify": int(body["maintainer_can_modify"])})
    return Reply(200, _render(ctx, repo, _pull(ctx, repo)))


_PULLS = "/repos/{owner}/{repo}/pulls"
ROUTES = [
    Route(_PULLS, endpoint(list_pulls), methods=["GET"]),
    Route(_PULLS, endpoint(create_pull, creates_content=True), methods=["POST"]),
    Route(f"{_PULLS}/{{pull_number:int}}", endpoint(get_pull), methods=["GET"]),
    Route(f"{_PULLS}/{{pull_number:int}}", endpoint(patch_pull), methods=["PATCH"]),
]
