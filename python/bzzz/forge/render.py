"""GitHub's JSON shapes for the forge's rows, with every field GitHub's description requires.

URLs point back at the forge (`base`): the API at its root, as `api.github.com` has it, and
the "web" URLs (`html_url`, `clone_url`) beside it, where git's smart HTTP is served.
"""

from __future__ import annotations

import base64
from typing import Any

from bzzz.forge.store import Row, Store, iso

Json = dict[str, Any]


def node_id(kind: str, number: int) -> str:
    """An opaque global id, as GitHub's (`MDQ6VXNlcjE=` is base64 of `04:User1`)."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


class Renderer:
    def __init__(self, store: Store, base: str) -> None:
        self.store = store
        self.base = base.rstrip("/")

    # --- users ----------------------------------------------------------------------------

    def user(self, row: Row | None) -> Json | None:
        if row is None:
            return None
        login = row["login"]
        api = f"{self.base}/users/{login}"
        return {
            "login": login,
            "id": row["id"],
            "node_id": node_id("User", row["id"]),
            "avatar_url": f"{self.base}/avatars/{login}",
            "gravatar_id": "",
            "url": api,
            "html_url": f"{self.base}/{login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": "User",
            "site_admin": bool(row["site_admin"]),
            "user_view_type": "public",
        }

    def user_by_id(self, user_id: int | None) -> Json | None:
        return None if user_id is None else self.user(self.store.user_by_id(user_id))

    def private_user(self, row: Row) -> Json:
        repos = self.store.all("SELECT private FROM repos WHERE owner_id = ?", row["id"])
        private = sum(1 for r in repos if r["private"])
        return {
            **(self.user(row) or {}),
            "name": row["name"],
            "company": row["company"],
            "blog": row["blog"] or "",
            "location": row["location"],
            "email": row["email"],
            "hireable": None,
            "bio": row["bio"],
            "twitter_username": None,
            "public_repos": len(repos) - private,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
            "private_gists": 0,
            "total_private_repos": private,
            "owned_private_repos": private,
            "disk_usage": 0,
            "collaborators": 0,
            "two_factor_authentication": False,
            "plan": {"name": "free", "space": 976562499, "private_repos": 10000, "collaborators": 0},
        }

    # --- repositories ---------------------------------------------------------------------

    def repo(self, row: Row, viewer: Row | None = None, *, full: bool = False) -> Json:
        full_name = f"{row['owner_login']}/{row['name']}"
        api = f"{self.base}/repos/{full_name}"
        html = f"{self.base}/{full_name}"
        permission = self.store.permission(row, viewer)
        forks = len(self.store.forks(row["id"]))
        open_issues = self._open_issues(row["id"])
        data: Json = {
            "id": row["id"],
            "node_id": node_id("Repository", row["id"]),
            "name": row["name"],
            "full_name": full_name,
            "owner": self.user_by_id(row["owner_id"]),
            "private": bool(row["private"]),
            "html_url": html,
            "description": row["description"],
            "fork": row["fork_of"] is not None,
            "url": api,
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{api}/assignees{{/user}}",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "comments_url": f"{api}/comments{{/number}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "contributors_url": f"{api}/contributors",
            "deployments_url": f"{api}/deployments",
            "downloads_url": f"{api}/downloads",
            "events_url": f"{api}/events",
            "forks_url": f"{api}/forks",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_url": f"{html}.git",
            "hooks_url": f"{api}/hooks",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "issues_url": f"{api}/issues{{/number}}",
            "keys_url": f"{api}/keys{{/key_id}}",
            "labels_url": f"{api}/labels{{/name}}",
            "languages_url": f"{api}/languages",
            "merges_url": f"{api}/merges",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "releases_url": f"{api}/releases{{/id}}",
            "ssh_url": f"git@forge.invalid:{full_name}.git",
            "stargazers_url": f"{api}/stargazers",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "tags_url": f"{api}/tags",
            "teams_url": f"{api}/teams",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "clone_url": f"{html}.git",
            "mirror_url": None,
            "svn_url": html,
            "homepage": row["homepage"],
            "language": None,
            "forks_count": forks,
            "forks": forks,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 0,
            "default_branch": row["default_branch"],
            "open_issues_count": open_issues,
            "open_issues": open_issues,
            "is_template": False,
            "topics": [],
            "has_issues": bool(row["has_issues"]),
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": False,
            "has_discussions": False,
            "archived": bool(row["archived"]),
            "disabled": False,
            "visibility": "private" if row["private"] else "public",
            "pushed_at": iso(row["pushed_at"]),
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
            "allow_forking": True,
            "web_commit_signoff_required": False,
            "license": None,
        }
        if permission is not None and viewer is not None:
            rank = ["read", "triage", "push", "maintain", "admin"]
            level = rank.index({"write": "push"}.get(permission, permission))
            data["permissions"] = {name: level >= i for i, name in enumerate(rank) if name != "read"} | {"pull": True}
        if full:
            data["network_count"] = 0
            data["subscribers_count"] = 0
            if row["fork_of"] is not None:
                parent = self.store.repo_by_id(row["fork_of"])
                if parent is not None:
                    data["parent"] = self.repo(parent)
                    data["source"] = self.repo(parent)
        return data

    def _open_issues(self, repo_id: int) -> int:
        row = self.store.one("SELECT count(*) AS n FROM issues WHERE repo_id = ? AND state = 'open'", repo_id)
        return int(row["n"]) if row else 0

    # --- labels, issues, comments ---------------------------------------------------------

    def label(self, row: Row, repo: Row) -> Json:
        return {
            "id": row["id"],
            "node_id": node_id("Label", row["id"]),
            "url": f"{self.base}/repos/{repo['owner_login']}/{repo['name']}/labels/{row['name']}",
            "name": row["name"],
            "color": row["color"],
            "description": row["description"],
            "default": bool(row["is_default"]),
        }

    def issue(self, row: Row, repo: Row, *, issue_id: int | None = None) -> Json:
        issue_id = row["id"] if issue_id is None else issue_id
        full_name = f"{repo['owner_login']}/{repo['name']}"
        api = f"{self.base}/repos/{full_name}/issues/{row['number']}"
        assignees = [self.user(u) for u in self.store.issue_assignees(issue_id)]
        pull = self.store.one("SELECT merged_at FROM pulls WHERE issue_id = ?", issue_id)
        data: Json = {
            "id": issue_id,
            "node_id": node_id("Issue", issue_id),
            "url": api,
            "repository_url": f"{self.base}/repos/{full_name}",
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "html_url": f"{self.base}/{full_name}/{'pull' if pull else 'issues'}/{row['number']}",
            "number": row["number"],
            "state": row["state"],
            "state_reason": row["state_reason"],
            "title": row["title"],
            "body": row["body"],
            "user": self.user_by_id(row["user_id"]),
            "labels": [self.label(label, repo) for label in self.store.issue_labels(issue_id)],
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": None,
            "locked": bool(row["locked"]),
            "active_lock_reason": None,
            "comments": row["comment_count"],
            "closed_at": iso(row["closed_at"]),
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
            "closed_by": self.user_by_id(row["closed_by"]),
            "author_association": self.association(repo, row["user_id"]),
        }
        if pull is not None:
            pulls = f"{self.base}/repos/{full_name}/pulls/{row['number']}"
            data["pull_request"] = {
                "url": pulls,
                "html_url": f"{self.base}/{full_name}/pull/{row['number']}",
                "diff_url": f"{self.base}/{full_name}/pull/{row['number']}.diff",
                "patch_url": f"{self.base}/{full_name}/pull/{row['number']}.patch",
                "merged_at": iso(pull["merged_at"]),
            }
        return data

    def association(self, repo: Row, user_id: int) -> str:
        if user_id == repo["owner_id"]:
            return "OWNER"
        row = self.store.one("SELECT 1 FROM collaborators WHERE repo_id = ? AND user_id = ?", repo["id"], user_id)
        return "COLLABORATOR" if row else "NONE"

    def comment(self, row: Row, repo: Row, issue_number: int) -> Json:
        full_name = f"{repo['owner_login']}/{repo['name']}"
        return {
            "id": row["id"],
            "node_id": node_id("IssueComment", row["id"]),
            "url": f"{self.base}/repos/{full_name}/issues/comments/{row['id']}",
            "html_url": f"{self.base}/{full_name}/issues/{issue_number}#issuecomment-{row['id']}",
            "issue_url": f"{self.base}/repos/{full_name}/issues/{issue_number}",
            "body": row["body"],
            "user": self.user_by_id(row["user_id"]),
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
            "author_association": self.association(repo, row["user_id"]),
            "performed_via_github_app": None,
        }

    def event(self, row: Row, repo: Row, *, with_issue: bool = False, timeline: bool = False) -> Json:
        full_name = f"{repo['owner_login']}/{repo['name']}"
        data: Json = {
            "id": row["id"],
            "node_id": node_id("IssueEvent", row["id"]),
            "url": f"{self.base}/repos/{full_name}/issues/events/{row['id']}",
            "actor": self.user_by_id(row["actor_id"]),
            "event": row["event"],
            "commit_id": row["commit_id"],
            "commit_url": None,
            "created_at": iso(row["created_at"]),
            "performed_via_github_app": None,
        }
        if row["event"] in ("assigned", "unassigned"):
            data["assignee"] = self.user_by_id(row["assignee_id"])
            if not timeline:
                data["assigner"] = data["actor"]
        elif row["event"] in ("labeled", "unlabeled"):
            data["label"] = {"name": row["label_name"], "color": row["label_color"]}
        elif row["event"] in ("closed", "reopened"):
            data["state_reason"] = row["state_reason"]
        elif row["event"] == "renamed":
            data["rename"] = {"from": row["rename_from"], "to": row["rename_to"]}
        if with_issue:
            issue = self.store.issue_by_id(row["issue_id"])
            data["issue"] = None if issue is None else self.issue(issue, repo)
        return data

    def timeline_comment(self, row: Row, repo: Row, issue_number: int) -> Json:
        actor = self.user_by_id(row["user_id"])
        return {**self.comment(row, repo, issue_number), "event": "commented", "actor": actor}

    # --- pull requests and git ------------------------------------------------------------

    def pull(self, row: Row, repo: Row, head_repo: Row | None, *, full: bool = True) -> Json:
        full_name = f"{repo['owner_login']}/{repo['name']}"
        number = row["number"]
        api = f"{self.base}/repos/{full_name}/pulls/{number}"
        html = f"{self.base}/{full_name}/pull/{number}"
        issue_api = f"{self.base}/repos/{full_name}/issues/{number}"
        issue = self.issue(row, repo, issue_id=row["issue_id"])
        base_owner = self.user_by_id(repo["owner_id"])
        head_source = head_repo or repo
        data: Json = {
            "url": api,
            "id": row["id"],
            "node_id": node_id("PullRequest", row["id"]),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue_api,
            "commits_url": f"{api}/commits",
            "review_comments_url": f"{api}/comments",
            "review_comment_url": f"{self.base}/repos/{full_name}/pulls/comments{{/number}}",
            "comments_url": f"{issue_api}/comments",
            "statuses_url": f"{self.base}/repos/{full_name}/statuses/{row['head_sha']}",
            "number": number,
            "state": row["state"],
            "locked": bool(row["locked"]),
            "title": row["title"],
            "user": issue["user"],
            "body": row["body"],
            "labels": issue["labels"],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
            "closed_at": iso(row["closed_at"]),
            "merged_at": iso(row["merged_at"]),
            "merge_commit_sha": row["merge_commit_sha"],
            "assignee": issue["assignee"],
            "assignees": issue["assignees"],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": {
                "label": f"{head_source['owner_login']}:{row['head_ref']}",
                "ref": row["head_ref"],
                "sha": row["head_sha"],
                "user": self.user_by_id(head_source["owner_id"]),
                "repo": self.repo(head_source),
            },
            "base": {
                "label": f"{repo['owner_login']}:{row['base_ref']}",
                "ref": row["base_ref"],
                "sha": row["base_sha"],
                "user": base_owner,
                "repo": self.repo(repo),
            },
            "_links": {
                "self": {"href": api},
                "html": {"href": html},
                "issue": {"href": issue_api},
                "comments": {"href": f"{issue_api}/comments"},
                "review_comments": {"href": f"{api}/comments"},
                "review_comment": {"href": f"{self.base}/repos/{full_name}/pulls/comments{{/number}}"},
                "commits": {"href": f"{api}/commits"},
                "statuses": {"href": f"{self.base}/repos/{full_name}/statuses/{row['head_sha']}"},
            },
            "author_association": issue["author_association"],
            "auto_merge": None,
            "draft": bool(row["draft"]),
        }
        if full:
            data.update(
                {
                    "merged": row["merged_at"] is not None,
                    "mergeable": None,
                    "rebaseable": None,
                    "mergeable_state": "unknown",
                    "merged_by": self.user_by_id(row["merged_by"]),
                    "comments": row["comment_count"],
                    "review_comments": 0,
                    "maintainer_can_modify": bool(row["maintainer_can_modify"]),
                    "commits": 0,
                    "additions": 0,
                    "deletions": 0,
                    "changed_files": 0,
                }
            )
        return data

    def git_ref(self, repo: Row, ref: str, sha: str) -> Json:
        full_name = f"{repo['owner_login']}/{repo['name']}"
        return {
            "ref": ref,
            "node_id": base64.b64encode(f"Ref:{repo['id']}:{ref}".encode()).decode(),
            "url": f"{self.base}/repos/{full_name}/git/{ref}",
            "object": {"type": "commit", "sha": sha, "url": f"{self.base}/repos/{full_name}/git/commits/{sha}"},
        }


__all__ = ["Json", "Renderer", "node_id"]
