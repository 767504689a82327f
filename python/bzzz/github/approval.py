"""Whether an issue's task may run here: an approval covers the exact content that was approved.

The threat (issue 16, item 3). Anyone can open an issue, and a trusted label used to be the
approval: a stranger files a harmless task, a maintainer adds `bzzz-approved`, the stranger
edits the body, and the agent runs the edited commands with the maintainer's blessing. A label
is attached to the issue, not to its text, and GitHub's REST API does not say when a body was
last edited (`updated_at` also moves for comments, labels and assignments, in whole seconds),
so no label, and no time, can tell which text was approved. A hash of the text can.

    approval = decide(issue, trusted_authors=frozenset({"alice"}), trusted_labels=frozenset({"bzzz-approved"}))
    if not approval.approved:
        say_once(issue, approval.why)                         # e.g. the github worker's comment
    elif approval.digest != task_digest(title, body):         # what is about to run, read once
        ...                                                   # not what was approved: do not run

The rule:

1. The issue's author is a trusted author: approved; the content is the author's own word.
2. Otherwise the issue runs only if an **approver** commented `bzzz approve <hex>` (a leading
   `/` is allowed; case is ignored; on a line of its own, not quoted), where `<hex>` is at least
   `MIN_PIN_HEX` leading hex digits of `task_digest()` of the issue's *current* title and body.
   Approvers are the trusted authors, and whoever added a trusted label the issue carries now
   (the actor of that label's latest `labeled` event), unless that is the issue's author. A pin
   by anyone else, or for another digest, approves nothing.
3. A trusted label without such a pin: not approved; `why` tells the approver what to comment,
   and says when an approver's older pin names another digest (the issue was edited after it
   was approved).
4. Neither: not approved, as before this rule.

Why at least 32 hex digits (128 bits), not 12. The author of the issue writes both texts: she
can search for a harmless body and a hostile body whose digests share a prefix (a birthday
search), file the harmless one, and swap in the hostile one once it is pinned. For a 12-digit
prefix that takes about 2^24 hashes (seconds on a laptop); 16 digits, 2^32 (an afternoon);
32 digits, 2^64 (out of reach). The hint gives the whole digest, to be copied as it is.

What rule 1 trusts. Anyone with push (or triage) access can edit an issue, a trusted author's
included, and change what it runs; they could push code to the repository anyway, so the
repository's collaborators are trusted as much as its code is. A stranger cannot edit someone
else's issue, or anyone's comment but her own.

What a trusted label trusts. Whoever can apply it (on GitHub, triage access or more) can
approve any issue but their own; a label added without an event the API shows (none is
known) names no approver, and then only the trusted authors can approve. Taking the label off
withdraws every approval it carried; deleting the pin comment withdraws that pin.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from github.Issue import Issue
from github.IssueComment import IssueComment

__all__ = ["MIN_PIN_HEX", "Approval", "decide", "pins", "task_digest"]

MIN_PIN_HEX = 32
"""Hex digits a pin must give (see the module's documentation: a shorter prefix can be collided)."""

_DOMAIN = b"bzzz task digest v1\n"
_LINE_END = re.compile(r"\r\n|\r")
_PIN = re.compile(r"^[ \t]*/?bzzz[ \t]+approve[ \t]+([0-9a-f]+)[ \t]*$", re.IGNORECASE | re.MULTILINE)
_EPOCH = datetime.min.replace(tzinfo=UTC)


def task_digest(title: str, body: str | None) -> str:
    """The sha256 (hex) of the task exactly as it would run: its title and its body.

    Line endings are normalised to `\\n` (GitHub's editors send `\\r\\n`, its API may give
    either, and the task parser reads both alike); nothing else is changed, not even trailing
    spaces. Each part is prefixed with its length, so moving text across the title/body
    boundary changes the digest. No body and an empty body are the same task.
    """
    digest = hashlib.sha256(_DOMAIN)
    for part in (title, body or ""):
        data = _LINE_END.sub("\n", part).encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class Approval:
    """What `decide` found. `digest` is that of the title and body it judged."""

    approved: bool
    digest: str
    by: str | None  # who approved (the author, or the approver of the pin)
    why: str  # one line for the issue when not approved, naming what to do
    needs_pin_from: tuple[str, ...] = ()  # who may approve (for the "comment this" hint)


def pins(text: str | None) -> list[str]:
    """The hex strings of the `bzzz approve <hex>` lines in a comment, lower-cased."""
    return [match.group(1).lower() for match in _PIN.finditer(_LINE_END.sub("\n", text or ""))]


def _fold(names: Iterable[str]) -> dict[str, str]:
    """Logins and labels as GitHub compares them (case ignored), each to its first spelling."""
    folded: dict[str, str] = {}
    for name in names:
        folded.setdefault(name.casefold(), name)
    return folded


def _login(user: object) -> str | None:
    login = getattr(user, "login", None)
    return login if isinstance(login, str) and login else None


def _labellers(issue: Issue, labels: dict[str, str]) -> dict[str, str]:
    """For each label (folded) in `labels`, who added it last, from the issue's events."""
    latest: dict[str, tuple[datetime, int, str | None]] = {}
    for event in issue.get_events():
        if event.event not in ("labeled", "unlabeled") or event.label is None:
            continue
        name = event.label.name.casefold()
        if name not in labels:
            continue
        when = (event.created_at or _EPOCH, int(event.id or 0))
        if name not in latest or when >= latest[name][:2]:
            # An `unlabeled` last (the label was added again without an event) leaves no adder.
            latest[name] = (*when, _login(event.actor) if event.event == "labeled" else None)
    return {name: who for name, (_, _, who) in latest.items() if who is not None}


def decide(
    issue: Issue,
    *,
    trusted_authors: frozenset[str],
    trusted_labels: frozenset[str],
    comments: Sequence[IssueComment] | None = None,
) -> Approval:
    """Whether the issue's current title and body may run (the module's rule), and why not.

    Reads the issue's events and comments (one request each, or a few for a long issue) only
    when it carries a trusted label and its author is not trusted; `comments` may be given if
    the caller has them already. Raises what PyGithub raises: not knowing is not approving.
    """
    title, body = issue.title, issue.body
    digest = task_digest(title, body)
    author = _login(issue.user) or "ghost"
    trusted = _fold(trusted_authors)
    if author.casefold() in trusted:
        return Approval(True, digest, author, f"@{author} is a trusted author here")
    wanted = _fold(trusted_labels)
    carried = _fold(label.name for label in issue.labels if label.name.casefold() in wanted)
    if not carried:
        listing = ", ".join(sorted(trusted_labels)) or "none"
        return Approval(
            False,
            digest,
            None,
            f"@{author} is not a trusted author here, and the issue carries none of the labels "
            f"trusted for execution ({listing}).",
        )

    labellers = {name: who for name, who in _labellers(issue, carried).items() if who.casefold() != author.casefold()}
    named = _fold(labellers[name] for name in sorted(labellers))
    approvers = {**named, **{k: v for k, v in trusted.items() if k not in named}}
    stale = False
    short: str | None = None
    for comment in comments if comments is not None else issue.get_comments():
        who = _login(comment.user)
        if who is None or who.casefold() not in approvers:
            continue
        for pin in pins(comment.body):
            if digest.startswith(pin) and len(pin) >= MIN_PIN_HEX:
                return Approval(True, digest, who, f"@{who} approved this exact task ({digest[:16]})")
            if digest.startswith(pin):
                short = who
            elif len(pin) >= MIN_PIN_HEX:
                stale = True

    labels = ", ".join(f"`{name}`" for name in sorted(carried.values()))
    command = f"`bzzz approve {digest}`"
    parts = [f"The issue carries {labels}, but a label does not pin what runs"]
    if stale:
        parts.append("and the issue was edited after it was approved (the approval names another version)")
    if short is not None:
        parts.append(f"and @{short}'s approval gives fewer than {MIN_PIN_HEX} hex digits of the digest")
    if named:
        mentions = " or ".join(f"@{who}" for who in named.values())
        ask = f"{mentions} (who added the label), to run exactly this version, comment {command} on a line of its own"
    elif trusted:
        mentions = " or ".join(f"@{who}" for who in trusted.values())
        ask = f"{mentions}, to run exactly this version, comment {command} on a line of its own"
    else:
        ask = (
            f"whoever adds the label (not the issue's author) may approve it by commenting {command} "
            "on a line of its own"
        )
    return Approval(False, digest, None, f"{', '.join(parts)}: {ask}.", tuple(approvers.values()))
