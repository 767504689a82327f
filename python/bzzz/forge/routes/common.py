"""Look-ups every resource needs, with GitHub's answers when they fail."""

from __future__ import annotations

from typing import Any

from bzzz.forge.api import ApiError, Context, invalid, not_found
from bzzz.forge.store import Row


def repo_of(ctx: Context) -> Row:
    """The repository of the path; a private one the caller cannot see is a 404, as on GitHub."""
    repo = ctx.store.repo(ctx.param("owner"), ctx.param("repo"))
    if repo is None or ctx.store.permission(repo, ctx.user) is None:
        raise not_found()
    return repo


def pushable_repo(ctx: Context) -> Row:
    repo = repo_of(ctx)
    ctx.me()
    if not ctx.store.can_push(repo, ctx.user):
        raise ApiError(403, "Must have push access to repository")
    return repo


def found(row: Row | None) -> Row:
    if row is None:
        raise not_found()
    return row


def number_param(ctx: Context, name: str) -> int:
    """A numeric path parameter; anything else names nothing there is (404, as on GitHub)."""
    try:
        return int(ctx.param(name))
    except ValueError:
        raise not_found() from None


def issue_of(ctx: Context, repo: Row) -> Row:
    return found(ctx.store.issue(repo["id"], number_param(ctx, "issue_number")))


def string_field(body: dict[str, Any], name: str, resource: str, *, required: bool = False,
                 nullable: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(resource, name, "missing_field")
        if name in body and not nullable:
            raise invalid(resource, name, message=f"{name} must be a string")
        return None
    if not isinstance(value, str):
        raise invalid(resource, name, message=f"{name} must be a string")
    return value


def string_list(body: dict[str, Any], name: str, resource: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str | dict) for v in value):
        raise invalid(resource, name, message=f"{name} must be an array of strings")
    return [v["name"] if isinstance(v, dict) else v for v in value]


def choice(ctx: Context, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = ctx.query(name) or default
    if value not in allowed:
        raise invalid("Query", name, message=f"{name} must be one of {', '.join(allowed)}")
    return value
