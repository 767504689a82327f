"""Repositories, their forks, labels, assignable users, branches and git refs."""

from __future__ import annotations

import re

from starlette.routing import Route

from bzzz.forge.api import ApiError, Context, Reply, endpoint, invalid, not_found
from bzzz.forge.routes.common import bool_field, pushable_repo, repo_name, repo_of, string_field
from bzzz.forge.store import DEFAULT_LABEL_COLOR, Conflict

_COLOR = re.compile(r"[0-9a-fA-F]{6}\Z")


def get_repo(ctx: Context) -> Reply:
    return Reply(200, ctx.render.repo(repo_of(ctx), ctx.user, full=True))


def patch_repo(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    if ctx.store.permission(repo, ctx.me()) != "admin":
        raise ApiError(403, "Must have admin rights to Repository.")
    body = ctx.json_object()
    repo_name(body, "name", "Repository")
    for name in ("description", "homepage", "default_branch"):
        string_field(body, name, "Repository", nullable=name in ("description", "homepage"))
    if body.get("default_branch") == "":
        raise invalid("Repository", "default_branch", message="default_branch must not be empty")
    for name in ("private", "has_issues", "archived"):
        if name in body:
            bool_field(body, name)
    new_name = body.get("name")
    if new_name and new_name != repo["name"]:
        if ctx.store.repo(repo["owner_login"], new_name) is not None:
            raise invalid("Repository", "name", "custom", "name already exists on this account")
        ctx.forge.git.rename(repo["owner_login"], repo["name"], new_name)
    branch = body.get("default_branch")
    if branch and ctx.forge.git.resolve(repo["owner_login"], new_name or repo["name"], f"heads/{branch}") is None:
        raise invalid("Repository", "default_branch", message=f"branch {branch} does not exist")
    ctx.store.update_repo(repo["id"], body)
    updated = ctx.store.repo_by_id(repo["id"])
    assert updated is not None
    return Reply(200, ctx.render.repo(updated, ctx.user, full=True))


def delete_repo(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    if ctx.store.permission(repo, ctx.me()) != "admin":
        raise ApiError(403, "Must have admin rights to Repository.")
    ctx.store.delete_repo(repo["id"])
    ctx.forge.git.delete(repo["owner_login"], repo["name"])
    return Reply(204)


def list_forks(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    forks = [f for f in ctx.store.forks(repo["id"]) if ctx.store.permission(f, ctx.user) is not None]
    return ctx.paginate([ctx.render.repo(f, ctx.user) for f in forks])


def create_fork(ctx: Context) -> Reply:
    """A fork in the caller's account, with the whole git history (GitHub answers 202: it is async there)."""
    repo = repo_of(ctx)
    me = ctx.me()
    body = ctx.json_object()
    name = repo_name(body, "name", "Fork") or repo["name"]
    existing = ctx.store.repo(me["login"], name)
    if existing is not None:
        if existing["fork_of"] == repo["id"]:
            return Reply(202, ctx.render.repo(existing, me, full=True))
        raise invalid("Fork", "name", "already_exists", f"{me['login']}/{name} already exists")
    fork = ctx.store.create_repo(
        me,
        name,
        description=repo["description"],
        private=bool(repo["private"]),
        default_branch=repo["default_branch"],
        fork_of=repo["id"],
    )
    ctx.forge.git.fork(repo["owner_login"], repo["name"], fork["owner_login"], fork["name"])
    return Reply(202, ctx.render.repo(fork, me, full=True))


def list_assignees(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    return ctx.paginate([ctx.render.user(u) for u in ctx.store.assignable(repo)])


def check_assignee(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    login = ctx.param("assignee").lower()
    if any(u["login"].lower() == login for u in ctx.store.assignable(repo)):
        return Reply(204)
    raise not_found()


def list_labels(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    return ctx.paginate([ctx.render.label(label, repo) for label in ctx.store.labels(repo["id"])])


def create_label(ctx: Context) -> Reply:
    repo = pushable_repo(ctx)
    body = ctx.json_object()
    name = string_field(body, "name", "Label", required=True)
    assert name is not None
    color = (string_field(body, "color", "Label") or DEFAULT_LABEL_COLOR).lstrip("#")
    if not _COLOR.match(color):
        raise invalid("Label", "color")
    try:
        label = ctx.store.create_label(repo["id"], name, color, string_field(body, "description", "Label"))
    except Conflict:
        raise invalid("Label", "name", "already_exists") from None
    return Reply(201, ctx.render.label(label, repo))


def get_branch(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    owner, name, branch = repo["owner_login"], repo["name"], ctx.param("branch")
    sha = ctx.forge.git.resolve(owner, name, f"heads/{branch}")
    if sha is None:
        raise ApiError(404, "Branch not found")
    commit = ctx.forge.git.commit(owner, name, sha)
    assert commit is not None
    api = f"{ctx.render.base}/repos/{owner}/{name}"
    git_user = {"name": commit.author_name, "email": commit.author_email, "date": commit.authored_at}
    committer = {"name": commit.committer_name, "email": commit.committer_email, "date": commit.committed_at}
    return Reply(
        200,
        {
            "name": branch,
            "commit": {
                "sha": sha,
                "node_id": f"C_{sha}",
                "url": f"{api}/commits/{sha}",
                "html_url": f"{ctx.render.base}/{owner}/{name}/commit/{sha}",
                "comments_url": f"{api}/commits/{sha}/comments",
                "commit": {
                    "url": f"{api}/git/commits/{sha}",
                    "author": git_user,
                    "committer": committer,
                    "message": commit.message,
                    "comment_count": 0,
                    "tree": {"sha": commit.tree_sha, "url": f"{api}/git/trees/{commit.tree_sha}"},
                },
                # GitHub links a commit's author to an account by e-mail; the forge does not: `{}` is its "no account".
                "author": {},
                "committer": {},
                "parents": [{"sha": p, "url": f"{api}/commits/{p}"} for p in commit.parents],
            },
            "_links": {"self": f"{api}/branches/{branch}", "html": f"{ctx.render.base}/{owner}/{name}/tree/{branch}"},
            "protected": False,
            "protection": {
                "enabled": False,
                "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
            },
            "protection_url": f"{api}/branches/{branch}/protection",
        },
    )


def get_ref(ctx: Context) -> Reply:
    repo = repo_of(ctx)
    ref = ctx.param("ref")
    sha = ctx.forge.git.resolve(repo["owner_login"], repo["name"], ref) if ref.startswith(("heads/", "tags/")) else None
    if sha is None:
        raise not_found()
    return Reply(200, ctx.render.git_ref(repo, f"refs/{ref}", sha))


def create_ref(ctx: Context) -> Reply:
    repo = pushable_repo(ctx)
    body = ctx.json_object()
    ref = string_field(body, "ref", "Reference", required=True)
    sha = string_field(body, "sha", "Reference", required=True)
    assert ref is not None and sha is not None
    if not ref.startswith("refs/") or ref.count("/") < 2:
        raise ApiError(422, "Reference name must start with 'refs/' and have at least two slashes.")
    try:
        ctx.forge.git.create_ref(repo["owner_login"], repo["name"], ref, sha)
    except FileExistsError:
        raise ApiError(422, "Reference already exists") from None
    except ValueError as error:
        raise ApiError(422, str(error) or "Object does not exist") from None
    ctx.store.touch_pushed(repo["id"])
    return Reply(
        201,
        ctx.render.git_ref(repo, ref, sha),
        {"Location": f"{ctx.render.base}/repos/{repo['owner_login']}/{repo['name']}/git/{ref}"},
    )


_REPO = "/repos/{owner}/{repo}"
ROUTES = [
    Route(_REPO, endpoint(get_repo), methods=["GET"]),
    Route(_REPO, endpoint(patch_repo), methods=["PATCH"]),
    Route(_REPO, endpoint(delete_repo), methods=["DELETE"]),
    Route(f"{_REPO}/forks", endpoint(list_forks), methods=["GET"]),
    Route(f"{_REPO}/forks", endpoint(create_fork), methods=["POST"]),
    Route(f"{_REPO}/assignees", endpoint(list_assignees), methods=["GET"]),
    Route(f"{_REPO}/assignees/{{assignee}}", endpoint(check_assignee), methods=["GET"]),
    Route(f"{_REPO}/labels", endpoint(list_labels), methods=["GET"]),
    Route(f"{_REPO}/labels", endpoint(create_label), methods=["POST"]),
    Route(f"{_REPO}/branches/{{branch:path}}", endpoint(get_branch), methods=["GET"]),
    Route(f"{_REPO}/git/ref/{{ref:path}}", endpoint(get_ref), methods=["GET"]),
    # Where every git-ref's `url` points (GitHub still serves it), so clients can follow it.
    Route(f"{_REPO}/git/refs/{{ref:path}}", endpoint(get_ref), methods=["GET"]),
    Route(f"{_REPO}/git/refs", endpoint(create_ref), methods=["POST"]),
]
