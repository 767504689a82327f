"""Seeding a forge from YAML: users and tokens, repositories with content, labels and issues.

```yaml
users:
  - login: alice
    name: Alice
    site_admin: true            # may change fault settings at run time
    tokens: [alice-token]
  - login: agent-1
    tokens: [agent-1-token]
repos:
  - owner: alice
    name: widgets
    private: false
    default_branch: main
    collaborators: {agent-1: push}
    files: {README.md: "# Widgets\n", src/widgets.py: "print('hi')\n"}
    labels: [{name: bzzz-task, color: 0e8a16, description: "for the agents"}]
    issues:
      - {title: "Add --verbose", body: "...", labels: [bzzz-task], user: alice}
```

Seeding is idempotent: users, repositories, labels and collaborators that exist are left as
they are (tokens are added), and a repository's issues are created only when it is created,
so a forge restarted with the same `--seed` keeps its state.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from bzzz.forge.app import Forge
from bzzz.forge.store import DEFAULT_LABEL_COLOR, Conflict


class SeedUser(BaseModel, extra="forbid"):
    login: str = Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
    name: str | None = None
    email: str | None = None
    site_admin: bool = False
    tokens: list[str] = Field(default_factory=list)


class SeedLabel(BaseModel, extra="forbid"):
    name: str
    color: str = Field(default=DEFAULT_LABEL_COLOR, pattern=r"^[0-9a-fA-F]{6}$")
    description: str | None = None


class SeedIssue(BaseModel, extra="forbid"):
    title: str
    body: str | None = None
    user: str | None = None  # default: the repository's owner
    labels: list[str] = Field(default_factory=list)
    assignees: list[str] = Field(default_factory=list)
    state: str = Field(default="open", pattern="^(open|closed)$")


class SeedRepo(BaseModel, extra="forbid"):
    owner: str
    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    description: str | None = None
    private: bool = False
    default_branch: str = "main"
    collaborators: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)
    labels: list[SeedLabel] = Field(default_factory=list)
    issues: list[SeedIssue] = Field(default_factory=list)


class Seed(BaseModel, extra="forbid"):
    users: list[SeedUser] = Field(default_factory=list)
    repos: list[SeedRepo] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Seed:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"{path} is not valid YAML: {error}") from None
        return cls.model_validate(data)


def apply(forge: Forge, seed: Seed) -> dict[str, int]:
    """Create what the seed names and the forge lacks; counts of what was created."""
    store, created = forge.store, {"users": 0, "repos": 0, "issues": 0}
    for u in seed.users:
        if store.user(u.login) is None:
            store.create_user(u.login, name=u.name, email=u.email, site_admin=u.site_admin)
            created["users"] += 1
        for token in u.tokens:
            store.add_token(u.login, token)
    for r in seed.repos:
        owner = store.user(r.owner)
        if owner is None:
            raise ValueError(f"repository {r.owner}/{r.name}: no user {r.owner!r} (list it under users)")
        repo = store.repo(r.owner, r.name)
        new = repo is None
        if repo is None:
            repo = store.create_repo(
                owner, r.name, description=r.description, private=r.private, default_branch=r.default_branch
            )
            if not forge.git.exists(r.owner, r.name):
                forge.git.create(r.owner, r.name, default_branch=r.default_branch, files=r.files or None)
            created["repos"] += 1
        for login, permission in r.collaborators.items():
            user = store.user(login)
            if user is None:
                raise ValueError(f"repository {r.owner}/{r.name}: collaborator {login!r} is not a user")
            store.set_collaborator(repo["id"], user["id"], permission)
        for label in r.labels:
            try:
                store.create_label(repo["id"], label.name, label.color, label.description)
            except Conflict:
                pass
        if not new:
            continue
        for issue in r.issues:
            author = store.user(issue.user or r.owner)
            if author is None:
                raise ValueError(f"issue {issue.title!r}: no user {issue.user!r}")
            row = store.create_issue(
                repo, author, issue.title, issue.body, labels=issue.labels, assignees=issue.assignees, triager=owner
            )
            if issue.state == "closed":
                store.edit_issue(repo, row, owner, {"state": "closed"})
            created["issues"] += 1
    return created


__all__ = ["Seed", "apply"]
