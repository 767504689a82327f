"""The forge's state: users, tokens, repositories and their issues, in one SQLite file (WAL).

Every change is one transaction under one lock, so concurrent requests see GitHub's
semantics (two clients adding assignees at the same moment both succeed, and both end up
assigned) and a restart keeps everything. Rows hold GitHub's own notions: issue numbers per
repository shared with pull requests, events with increasing ids, timestamps in whole
seconds (GitHub's `2011-04-14T16:00:49Z`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY, login TEXT NOT NULL UNIQUE COLLATE NOCASE, name TEXT, email TEXT,
        bio TEXT, company TEXT, blog TEXT NOT NULL DEFAULT '', location TEXT,
        site_admin INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id))",
    """CREATE TABLE IF NOT EXISTS repos (
        id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES users(id), name TEXT NOT NULL COLLATE NOCASE,
        description TEXT, homepage TEXT, private INTEGER NOT NULL DEFAULT 0,
        default_branch TEXT NOT NULL DEFAULT 'main', has_issues INTEGER NOT NULL DEFAULT 1,
        archived INTEGER NOT NULL DEFAULT 0, fork_of INTEGER REFERENCES repos(id),
        next_number INTEGER NOT NULL DEFAULT 1,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, pushed_at INTEGER,
        UNIQUE (owner_id, name))""",
    """CREATE TABLE IF NOT EXISTS collaborators (
        repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE, user_id INTEGER NOT NULL REFERENCES users(id),
        permission TEXT NOT NULL, PRIMARY KEY (repo_id, user_id))""",
    """CREATE TABLE IF NOT EXISTS labels (
        id INTEGER PRIMARY KEY, repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
        name TEXT NOT NULL COLLATE NOCASE, color TEXT NOT NULL, description TEXT, is_default INTEGER NOT NULL DEFAULT 0,
        UNIQUE (repo_id, name))""",
    """CREATE TABLE IF NOT EXISTS issues (
        id INTEGER PRIMARY KEY, repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
        number INTEGER NOT NULL, title TEXT NOT NULL, body TEXT, user_id INTEGER NOT NULL REFERENCES users(id),
        state TEXT NOT NULL DEFAULT 'open', state_reason TEXT, locked INTEGER NOT NULL DEFAULT 0,
        closed_by INTEGER REFERENCES users(id), created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        closed_at INTEGER, UNIQUE (repo_id, number))""",
    """CREATE TABLE IF NOT EXISTS issue_labels (
        issue_id INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
        label_id INTEGER NOT NULL REFERENCES labels(id) ON DELETE CASCADE, PRIMARY KEY (issue_id, label_id))""",
    """CREATE TABLE IF NOT EXISTS issue_assignees (
        issue_id INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id), seq INTEGER NOT NULL, PRIMARY KEY (issue_id, user_id))""",
    """CREATE TABLE IF NOT EXISTS comments (
        id INTEGER PRIMARY KEY, issue_id INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id), body TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, issue_id INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
        actor_id INTEGER NOT NULL REFERENCES users(id), event TEXT NOT NULL,
        assignee_id INTEGER REFERENCES users(id), label_name TEXT, label_color TEXT,
        state_reason TEXT, rename_from TEXT, rename_to TEXT, commit_id TEXT, created_at INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS pulls (
        id INTEGER PRIMARY KEY, issue_id INTEGER NOT NULL UNIQUE REFERENCES issues(id) ON DELETE CASCADE,
        head_repo_id INTEGER NOT NULL REFERENCES repos(id), head_ref TEXT NOT NULL, head_sha TEXT NOT NULL,
        base_ref TEXT NOT NULL, base_sha TEXT NOT NULL, draft INTEGER NOT NULL DEFAULT 0,
        maintainer_can_modify INTEGER NOT NULL DEFAULT 0, merged_at INTEGER, merged_by INTEGER REFERENCES users(id),
        merge_commit_sha TEXT)""",
)

PUSH_PERMISSIONS = ("admin", "maintain", "push", "write")
MAX_ASSIGNEES = 10
# GitHub's colour for a label created by adding it to an issue.
DEFAULT_LABEL_COLOR = "ededed"


def now() -> float:
    # Stored with sub-second precision, so that things done within one second keep their order
    # (the timeline interleaves events and comments by time); shown in whole seconds, as GitHub does.
    return time.time()


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> int:
    """GitHub's ISO 8601 timestamps (`since`); ValueError if it is not one."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


class Conflict(Exception):
    """The thing to create exists already (a 422 `already_exists`)."""


Row = sqlite3.Row


@dataclass(frozen=True)
class IssueFilter:
    state: str = "open"  # open | closed | all
    labels: tuple[str, ...] = ()
    assignee: str | None = None  # None: any; "none"; "*"; a login
    creator: str | None = None
    since: int | None = None
    sort: str = "created"  # created | updated | comments
    direction: str = "desc"
    pulls: bool | None = None  # None: issues and pull requests (GitHub's /issues lists both)


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self.transaction() as db:
            for statement in SCHEMA:
                db.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db.in_transaction:  # nested: part of the caller's transaction
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def one(self, sql: str, *args: Any) -> Row | None:
        with self._lock:
            row: Row | None = self._db.execute(sql, args).fetchone()
            return row

    def all(self, sql: str, *args: Any) -> list[Row]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- users and tokens -----------------------------------------------------------------

    def create_user(
        self, login: str, *, name: str | None = None, email: str | None = None, site_admin: bool = False
    ) -> Row:
        t = now()
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE login = ?", (login,)).fetchone():
                raise Conflict(f"user {login!r} exists")
            db.execute(
                "INSERT INTO users (login, name, email, site_admin, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (login, name, email, int(site_admin), t, t),
            )
        return self.user(login)  # type: ignore[return-value]

    def user(self, login: str) -> Row | None:
        return self.one("SELECT * FROM users WHERE login = ?", login)

    def user_by_id(self, user_id: int) -> Row | None:
        return self.one("SELECT * FROM users WHERE id = ?", user_id)

    def add_token(self, login: str, token: str) -> None:
        user = self.user(login)
        if user is None:
            raise KeyError(login)
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO tokens (token, user_id) VALUES (?, ?)", (token, user["id"]))

    def user_for_token(self, token: str) -> Row | None:
        return self.one("SELECT users.* FROM tokens JOIN users ON users.id = tokens.user_id WHERE token = ?", token)

    def update_user(self, user_id: int, fields: dict[str, Any]) -> None:
        allowed = {"name", "email", "blog", "company", "location", "bio"}
        sets = {k: v for k, v in fields.items() if k in allowed}
        if not sets:
            return
        with self.transaction() as db:
            db.execute(
                f"UPDATE users SET {', '.join(f'{k} = ?' for k in sets)}, updated_at = ? WHERE id = ?",
                (*sets.values(), now(), user_id),
            )

    # --- repositories ---------------------------------------------------------------------

    def create_repo(
        self,
        owner: Row,
        name: str,
        *,
        description: str | None = None,
        private: bool = False,
        default_branch: str = "main",
        fork_of: int | None = None,
    ) -> Row:
        t = now()
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM repos WHERE owner_id = ? AND name = ?", (owner["id"], name)).fetchone():
                raise Conflict(f"repository {owner['login']}/{name} exists")
            db.execute(
                "INSERT INTO repos (owner_id, name, description, private, default_branch, fork_of, created_at,"
                " updated_at, pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (owner["id"], name, description, int(private), default_branch, fork_of, t, t, t),
            )
        return self.repo(owner["login"], name)  # type: ignore[return-value]

    _REPO = "SELECT repos.*, users.login AS owner_login FROM repos JOIN users ON users.id = repos.owner_id"

    def repo(self, owner: str, name: str) -> Row | None:
        return self.one(f"{self._REPO} WHERE users.login = ? AND repos.name = ?", owner, name)

    def repo_by_id(self, repo_id: int) -> Row | None:
        return self.one(f"{self._REPO} WHERE repos.id = ?", repo_id)

    def forks(self, repo_id: int) -> list[Row]:
        return self.all(f"{self._REPO} WHERE repos.fork_of = ? ORDER BY repos.id DESC", repo_id)

    def update_repo(self, repo_id: int, fields: dict[str, Any]) -> None:
        allowed = {"name", "description", "homepage", "private", "default_branch", "has_issues", "archived"}
        sets = {k: (int(v) if isinstance(v, bool) else v) for k, v in fields.items() if k in allowed}
        with self.transaction() as db:
            if sets:
                db.execute(
                    f"UPDATE repos SET {', '.join(f'{k} = ?' for k in sets)}, updated_at = ? WHERE id = ?",
                    (*sets.values(), now(), repo_id),
                )

    def delete_repo(self, repo_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE repos SET fork_of = NULL WHERE fork_of = ?", (repo_id,))
            db.execute("DELETE FROM pulls WHERE head_repo_id = ?", (repo_id,))
            db.execute("DELETE FROM repos WHERE id = ?", (repo_id,))

    def touch_pushed(self, repo_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE repos SET pushed_at = ? WHERE id = ?", (now(), repo_id))

    def set_collaborator(self, repo_id: int, user_id: int, permission: str = "push") -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO collaborators (repo_id, user_id, permission) VALUES (?, ?, ?)",
                (repo_id, user_id, permission),
            )

    def permission(self, repo: Row, user: Row | None) -> str | None:
        """'admin' for the owner, the collaborator's permission, 'read' on a public repo, else None."""
        if user is not None:
            if user["id"] == repo["owner_id"]:
                return "admin"
            row = self.one(
                "SELECT permission FROM collaborators WHERE repo_id = ? AND user_id = ?", repo["id"], user["id"]
            )
            if row is not None:
                return str(row["permission"])
        return None if repo["private"] else "read"

    def can_push(self, repo: Row, user: Row | None) -> bool:
        return self.permission(repo, user) in PUSH_PERMISSIONS

    def assignable(self, repo: Row) -> list[Row]:
        """Users with push access: the owner and such collaborators, in id order."""
        marks = ",".join("?" * len(PUSH_PERMISSIONS))
        return self.all(
            "SELECT * FROM users WHERE id = ? OR id IN"
            f" (SELECT user_id FROM collaborators WHERE repo_id = ? AND permission IN ({marks})) ORDER BY id",
            repo["owner_id"],
            repo["id"],
            *PUSH_PERMISSIONS,
        )

    # --- labels ---------------------------------------------------------------------------

    def labels(self, repo_id: int) -> list[Row]:
        return self.all("SELECT * FROM labels WHERE repo_id = ? ORDER BY name", repo_id)

    def label(self, repo_id: int, name: str) -> Row | None:
        return self.one("SELECT * FROM labels WHERE repo_id = ? AND name = ?", repo_id, name)

    def create_label(
        self, repo_id: int, name: str, color: str = DEFAULT_LABEL_COLOR, description: str | None = None
    ) -> Row:
        with self.transaction() as db:
            if self.label(repo_id, name) is not None:
                raise Conflict(name)
            db.execute(
                "INSERT INTO labels (repo_id, name, color, description) VALUES (?, ?, ?, ?)",
                (repo_id, name, color.lower(), description),
            )
        return self.label(repo_id, name)  # type: ignore[return-value]

    def _label_for_issue(self, repo_id: int, name: str) -> Row:
        """An existing label, or a new one: GitHub creates a label that is added to an issue by name."""
        existing = self.label(repo_id, name)
        return existing if existing is not None else self.create_label(repo_id, name)

    # --- issues ---------------------------------------------------------------------------

    def create_issue(
        self,
        repo: Row,
        user: Row,
        title: str,
        body: str | None,
        *,
        labels: Sequence[str] = (),
        assignees: Sequence[str] = (),
        triager: Row | None = None,
    ) -> Row:
        """A new issue by `user`; labels and assignees are set by `triager` (default: `user`), and only
        if that one has push access (else silently dropped, as GitHub does)."""
        triager = user if triager is None else triager
        t = now()
        with self.transaction() as db:
            number = int(db.execute("SELECT next_number FROM repos WHERE id = ?", (repo["id"],)).fetchone()[0])
            db.execute("UPDATE repos SET next_number = ? WHERE id = ?", (number + 1, repo["id"]))
            cursor = db.execute(
                "INSERT INTO issues (repo_id, number, title, body, user_id, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (repo["id"], number, title, body, user["id"], t, t),
            )
            issue_id = int(cursor.lastrowid or 0)
            if self.can_push(repo, triager):
                self.set_labels(repo, issue_id, triager, labels, replace=True, events=False)
                self.add_assignees(repo, issue_id, triager, assignees)
        return self.issue_by_id(issue_id)  # type: ignore[return-value]

    _ISSUE = "SELECT issues.*, (SELECT count(*) FROM comments WHERE issue_id = issues.id) AS comment_count FROM issues"

    def issue(self, repo_id: int, number: int) -> Row | None:
        return self.one(f"{self._ISSUE} WHERE repo_id = ? AND number = ?", repo_id, number)

    def issue_by_id(self, issue_id: int) -> Row | None:
        return self.one(f"{self._ISSUE} WHERE id = ?", issue_id)

    def issues(self, repo_id: int, f: IssueFilter) -> list[Row]:
        where, args = ["repo_id = ?"], list[Any]([repo_id])
        if f.state != "all":
            where.append("state = ?")
            args.append(f.state)
        for name in f.labels:
            where.append("id IN (SELECT issue_id FROM issue_labels JOIN labels ON labels.id = label_id WHERE name = ?)")
            args.append(name)
        if f.assignee == "none":
            where.append("id NOT IN (SELECT issue_id FROM issue_assignees)")
        elif f.assignee == "*":
            where.append("id IN (SELECT issue_id FROM issue_assignees)")
        elif f.assignee is not None:
            where.append(
                "id IN (SELECT issue_id FROM issue_assignees JOIN users ON users.id = user_id WHERE login = ?)"
            )
            args.append(f.assignee)
        if f.creator is not None:
            where.append("user_id = (SELECT id FROM users WHERE login = ?)")
            args.append(f.creator)
        if f.since is not None:
            where.append("updated_at >= ?")
            args.append(f.since)
        if f.pulls is not None:
            where.append(f"id {'IN' if f.pulls else 'NOT IN'} (SELECT issue_id FROM pulls)")
        order = {"created": "created_at", "updated": "updated_at", "comments": "comment_count"}[f.sort]
        direction = "ASC" if f.direction == "asc" else "DESC"
        return self.all(
            f"{self._ISSUE} WHERE {' AND '.join(where)} ORDER BY {order} {direction}, number {direction}", *args
        )

    def issue_labels(self, issue_id: int) -> list[Row]:
        return self.all(
            "SELECT labels.* FROM issue_labels JOIN labels ON labels.id = label_id WHERE issue_id = ? ORDER BY name",
            issue_id,
        )

    def issue_assignees(self, issue_id: int) -> list[Row]:
        return self.all(
            "SELECT users.* FROM issue_assignees JOIN users ON users.id = user_id WHERE issue_id = ? ORDER BY seq",
            issue_id,
        )

    def _event(self, issue_id: int, actor: Row, event: str, **fields: Any) -> None:
        columns = ["issue_id", "actor_id", "event", "created_at", *fields]
        with self.transaction() as db:
            db.execute(
                f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                (issue_id, actor["id"], event, now(), *fields.values()),
            )

    def _touch(self, issue_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE issues SET updated_at = ? WHERE id = ?", (now(), issue_id))

    def add_assignees(self, repo: Row, issue_id: int, actor: Row, logins: Sequence[str]) -> None:
        """GitHub's semantics: never replaces; at most 10 in all; logins without push access silently ignored."""
        with self.transaction() as db:
            if not self.can_push(repo, actor):
                return
            current = {row["id"] for row in self.issue_assignees(issue_id)}
            allowed = {row["login"].lower(): row for row in self.assignable(repo)}
            changed = False
            for login in logins:
                user = allowed.get(str(login).lower())
                if user is None or user["id"] in current or len(current) >= MAX_ASSIGNEES:
                    continue
                seq = int(db.execute("SELECT coalesce(max(seq), 0) + 1 FROM issue_assignees").fetchone()[0])
                db.execute(
                    "INSERT INTO issue_assignees (issue_id, user_id, seq) VALUES (?, ?, ?)", (issue_id, user["id"], seq)
                )
                current.add(user["id"])
                self._event(issue_id, actor, "assigned", assignee_id=user["id"])
                changed = True
            if changed:
                self._touch(issue_id)

    def remove_assignees(self, repo: Row, issue_id: int, actor: Row, logins: Sequence[str]) -> None:
        with self.transaction() as db:
            if not self.can_push(repo, actor):
                return
            changed = False
            for user in self.issue_assignees(issue_id):
                if user["login"].lower() in {str(login).lower() for login in logins}:
                    db.execute("DELETE FROM issue_assignees WHERE issue_id = ? AND user_id = ?", (issue_id, user["id"]))
                    self._event(issue_id, actor, "unassigned", assignee_id=user["id"])
                    changed = True
            if changed:
                self._touch(issue_id)

    def set_assignees(self, repo: Row, issue_id: int, actor: Row, logins: Sequence[str]) -> None:
        """PATCH's `assignees`: replaces the set (within the same rules as adding)."""
        with self.transaction():
            wanted = {str(login).lower() for login in logins}
            drop = [u["login"] for u in self.issue_assignees(issue_id) if u["login"].lower() not in wanted]
            self.remove_assignees(repo, issue_id, actor, drop)
            self.add_assignees(repo, issue_id, actor, logins)

    def set_labels(
        self, repo: Row, issue_id: int, actor: Row, names: Sequence[str], *, replace: bool, events: bool = True
    ) -> None:
        with self.transaction() as db:
            current = {row["name"].lower(): row for row in self.issue_labels(issue_id)}
            wanted = {str(n).lower(): str(n) for n in names}
            if replace:
                for key, label in current.items():
                    if key not in wanted:
                        db.execute(
                            "DELETE FROM issue_labels WHERE issue_id = ? AND label_id = ?", (issue_id, label["id"])
                        )
                        if events:
                            self._event(
                                issue_id, actor, "unlabeled", label_name=label["name"], label_color=label["color"]
                            )
            for key, name in wanted.items():
                if key in current:
                    continue
                label = self._label_for_issue(repo["id"], name)
                db.execute("INSERT INTO issue_labels (issue_id, label_id) VALUES (?, ?)", (issue_id, label["id"]))
                if events:
                    self._event(issue_id, actor, "labeled", label_name=label["name"], label_color=label["color"])
            self._touch(issue_id)

    def remove_label(self, repo: Row, issue_id: int, actor: Row, name: str) -> bool:
        with self.transaction() as db:
            label = next((row for row in self.issue_labels(issue_id) if row["name"].lower() == name.lower()), None)
            if label is None:
                return False
            db.execute("DELETE FROM issue_labels WHERE issue_id = ? AND label_id = ?", (issue_id, label["id"]))
            self._event(issue_id, actor, "unlabeled", label_name=label["name"], label_color=label["color"])
            self._touch(issue_id)
            return True

    def edit_issue(self, repo: Row, issue: Row, actor: Row, fields: dict[str, Any]) -> None:
        """PATCH an issue: title, body, state (+ state_reason), and for pushers labels and assignees."""
        with self.transaction() as db:
            t = now()
            if "title" in fields and fields["title"] != issue["title"]:
                db.execute("UPDATE issues SET title = ? WHERE id = ?", (fields["title"], issue["id"]))
                self._event(issue["id"], actor, "renamed", rename_from=issue["title"], rename_to=fields["title"])
            if "body" in fields:
                db.execute("UPDATE issues SET body = ? WHERE id = ?", (fields["body"], issue["id"]))
            state = fields.get("state")
            if state is not None and state != issue["state"]:
                if state == "closed":
                    reason = fields.get("state_reason") or "completed"
                    db.execute(
                        "UPDATE issues SET state = 'closed', state_reason = ?, closed_at = ?, closed_by = ?"
                        " WHERE id = ?",
                        (reason, t, actor["id"], issue["id"]),
                    )
                    self._event(issue["id"], actor, "closed", state_reason=reason)
                else:
                    db.execute(
                        "UPDATE issues SET state = 'open', state_reason = 'reopened', closed_at = NULL,"
                        " closed_by = NULL WHERE id = ?",
                        (issue["id"],),
                    )
                    self._event(issue["id"], actor, "reopened", state_reason="reopened")
            elif state is None and fields.get("state_reason") and issue["state"] == "closed":
                db.execute("UPDATE issues SET state_reason = ? WHERE id = ?", (fields["state_reason"], issue["id"]))
            if self.can_push(repo, actor):
                if "labels" in fields and fields["labels"] is not None:
                    names = [x["name"] if isinstance(x, dict) else x for x in fields["labels"]]
                    self.set_labels(repo, issue["id"], actor, names, replace=True)
                if "assignees" in fields and fields["assignees"] is not None:
                    self.set_assignees(repo, issue["id"], actor, fields["assignees"])
                elif "assignee" in fields:
                    self.set_assignees(repo, issue["id"], actor, [fields["assignee"]] if fields["assignee"] else [])
            db.execute("UPDATE issues SET updated_at = ? WHERE id = ?", (t, issue["id"]))

    # --- comments and events --------------------------------------------------------------

    def comments(self, issue_id: int, since: int | None = None) -> list[Row]:
        return self.all(
            "SELECT * FROM comments WHERE issue_id = ? AND updated_at >= ? ORDER BY id", issue_id, since or 0
        )

    def comment(self, repo_id: int, comment_id: int) -> Row | None:
        return self.one(
            "SELECT comments.* FROM comments JOIN issues ON issues.id = comments.issue_id"
            " WHERE comments.id = ? AND issues.repo_id = ?",
            comment_id,
            repo_id,
        )

    def add_comment(self, issue_id: int, user: Row, body: str) -> Row:
        t = now()
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO comments (issue_id, user_id, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (issue_id, user["id"], body, t, t),
            )
            db.execute("UPDATE issues SET updated_at = ? WHERE id = ?", (t, issue_id))
        return self.one("SELECT * FROM comments WHERE id = ?", cursor.lastrowid)  # type: ignore[return-value]

    def edit_comment(self, comment_id: int, body: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE comments SET body = ?, updated_at = ? WHERE id = ?", (body, now(), comment_id))

    def delete_comment(self, comment_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM comments WHERE id = ?", (comment_id,))

    def events(self, *, issue_id: int | None = None, repo_id: int | None = None) -> list[Row]:
        if issue_id is not None:
            return self.all("SELECT * FROM events WHERE issue_id = ? ORDER BY id", issue_id)
        return self.all(
            "SELECT events.* FROM events JOIN issues ON issues.id = events.issue_id WHERE issues.repo_id = ?"
            " ORDER BY events.id DESC",
            repo_id,
        )

    def event(self, event_id: int) -> Row | None:
        return self.one("SELECT * FROM events WHERE id = ?", event_id)

    # --- pull requests --------------------------------------------------------------------

    def create_pull(
        self,
        repo: Row,
        user: Row,
        title: str,
        body: str | None,
        *,
        head_repo: Row,
        head_ref: str,
        head_sha: str,
        base_ref: str,
        base_sha: str,
        draft: bool,
        maintainer_can_modify: bool,
    ) -> Row:
        with self.transaction() as db:
            duplicate = db.execute(
                "SELECT 1 FROM pulls JOIN issues ON issues.id = pulls.issue_id WHERE issues.repo_id = ?"
                " AND issues.state = 'open' AND head_repo_id = ? AND head_ref = ? AND base_ref = ?",
                (repo["id"], head_repo["id"], head_ref, base_ref),
            ).fetchone()
            if duplicate:
                raise Conflict(f"A pull request already exists for {head_repo['owner_login']}:{head_ref}.")
            issue = self.create_issue(repo, user, title, body)
            db.execute(
                "INSERT INTO pulls (issue_id, head_repo_id, head_ref, head_sha, base_ref, base_sha, draft,"
                " maintainer_can_modify) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    issue["id"],
                    head_repo["id"],
                    head_ref,
                    head_sha,
                    base_ref,
                    base_sha,
                    int(draft),
                    int(maintainer_can_modify),
                ),
            )
        return self.pull(repo["id"], issue["number"])  # type: ignore[return-value]

    _PULL = (
        "SELECT pulls.*, pulls.id AS pull_id, issues.*, pulls.id AS id, issues.id AS issue_id,"
        " (SELECT count(*) FROM comments WHERE issue_id = issues.id) AS comment_count"
        " FROM pulls JOIN issues ON issues.id = pulls.issue_id"
    )

    def pull(self, repo_id: int, number: int) -> Row | None:
        return self.one(f"{self._PULL} WHERE issues.repo_id = ? AND issues.number = ?", repo_id, number)

    def pulls(
        self, repo_id: int, *, state: str, head: tuple[int, str] | None, base: str | None, sort: str, direction: str
    ) -> list[Row]:
        where, args = ["issues.repo_id = ?"], list[Any]([repo_id])
        if state != "all":
            where.append("issues.state = ?")
            args.append(state)
        if head is not None:
            where.append("pulls.head_repo_id = ? AND pulls.head_ref = ?")
            args.extend(head)
        if base is not None:
            where.append("pulls.base_ref = ?")
            args.append(base)
        order = {
            "created": "issues.created_at",
            "updated": "issues.updated_at",
            "popularity": "comment_count",
            "long-running": "issues.created_at",
        }[sort]
        d = "ASC" if direction == "asc" else "DESC"
        return self.all(f"{self._PULL} WHERE {' AND '.join(where)} ORDER BY {order} {d}, issues.number {d}", *args)

    def update_pull(self, pull_id: int, fields: dict[str, Any]) -> None:
        allowed = {"base_ref", "base_sha", "head_sha", "maintainer_can_modify"}
        sets = {k: v for k, v in fields.items() if k in allowed}
        if sets:
            with self.transaction() as db:
                db.execute(
                    f"UPDATE pulls SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?", (*sets.values(), pull_id)
                )


__all__ = ["DEFAULT_LABEL_COLOR", "Conflict", "IssueFilter", "Store", "iso", "now", "parse_iso"]
