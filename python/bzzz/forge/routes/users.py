"""`/user` and `/rate_limit`."""

from __future__ import annotations

from starlette.routing import Route

from bzzz.forge.api import Context, Reply, endpoint, wrong_type


def get_user(ctx: Context) -> Reply:
    return Reply(200, ctx.render.private_user(ctx.me()))


def patch_user(ctx: Context) -> Reply:
    me = ctx.me()
    body = ctx.json_object()
    for name, value in body.items():
        if name in ("name", "email", "blog", "company", "location", "bio") and not isinstance(value, str):
            raise wrong_type(f"properties/{name}", value, "a string")
    ctx.store.update_user(me["id"], body)
    return Reply(200, ctx.render.private_user(ctx.store.user_by_id(me["id"])))  # type: ignore[arg-type]


def rate_limit(ctx: Context) -> Reply:
    key, limit = ctx.forge.rate_key(ctx.request, ctx.user)
    ctx.forge.limiter.give_back(key, limit)  # asking does not count (GitHub's rule for /rate_limit)
    used, remaining, reset = ctx.forge.limiter.status(key, limit)
    core = {"limit": limit, "used": used, "remaining": remaining, "reset": reset}
    return Reply(200, {"resources": {"core": core, "search": {**core}}, "rate": core})


ROUTES = [
    Route("/user", endpoint(get_user), methods=["GET"]),
    Route("/user", endpoint(patch_user), methods=["PATCH"]),
    Route("/rate_limit", endpoint(rate_limit), methods=["GET"]),
]
