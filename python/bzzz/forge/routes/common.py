"""Look-ups every resource needs, with GitHub's answers when they fail."""

from __future__ import annotations

import re
from typing import Any

from bzzz.forge.api import ApiError, Context, invalid, not_found, wrong_type
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


# GitHub's rule for repository names; anything else must not reach the disk as a path.
_REPO_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}\Z")


def string_field(
    body: dict[str, Any], name: str, resource: str, *, required: bool = False, nullable: bool = False
) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(resource, name, "missing_field")
        if name in body and not nullable:
            raise wrong_type(f"properties/{name}", value, "a string")
        return None
    if not isinstance(value, str):
        raise wrong_type(f"properties/{name}", value, "a string or null" if nullable else "a string")
    return value


def bool_field(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise wrong_type(f"properties/{name}", value, "a boolean")
    return value


def names(value: Any) -> list[str]:
    """Label or login names as GitHub takes them: strings, or objects with a string `name`."""
    if not isinstance(value, list):
        raise wrong_type("links/0/schema", value, "an array")
    out = []
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            out.append(item["name"])
        elif isinstance(item, str):
            out.append(item)
        else:
            raise wrong_type("items", item, "a string or object")
    return out


def string_list(body: dict[str, Any], name: str, resource: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise wrong_type(f"properties/{name}", value, "an array")
    return names(value)


def repo_name(body: dict[str, Any], name: str, resource: str) -> str | None:
    value = string_field(body, name, resource)
    if value is not None and (not _REPO_NAME.match(value) or value in (".", "..")):
        raise invalid(resource, name, message=f"{name} may contain only letters, digits, '.', '-' and '_'")
    return value


def choice(ctx: Context, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = ctx.query(name) or default
    if value not in allowed:
        raise invalid("Query", name, message=f"{name} must be one of {', '.join(allowed)}")
    return value
