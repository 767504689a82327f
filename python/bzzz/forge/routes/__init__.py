"""The forge's REST endpoints, one module per resource; `ROUTES` is the whole table."""

from bzzz.forge.routes import issues, pulls, repos, users

ROUTES = [*users.ROUTES, *repos.ROUTES, *issues.ROUTES, *pulls.ROUTES]

__all__ = ["ROUTES"]
