"""The claimant's decisions, one message at a time, and how model answers are read: fast
specifications of `bzzz.hmmm.discussion` and `bzzz.hmmm.thinking` (the agents' tests run them
over the real mesh)."""

from __future__ import annotations

import itertools
import queue
from dataclasses import dataclass, field
from typing import Any

import pytest

from bzzz.capabilities import satisfied
from bzzz.hmmm.discussion import Discussion, DiscussionClosed, DiscussionSettings
from bzzz.hmmm.escalation import Escalation
from bzzz.hmmm.messages import Message
from bzzz.hmmm.thinking import Answer, Issue, ModelThinker, NoThinker, Ruling, _keyword

ISSUE = Issue("acme/widgets", 12, "Fix the parser", "Parsing [] raises.")
_ids = (f"{n:032x}" for n in itertools.count(1))


@dataclass
class Channel:
    """Posts are recorded; peers' messages are queued in `inbox` before the discussion runs."""

    name: str = "bzzz/meta/issue/acme/widgets/12"
    inbox: queue.Queue[Message] = field(default_factory=queue.Queue)
    posts: list[tuple[str, str, str | None, dict[str, Any]]] = field(default_factory=list)
    escalations: list[tuple[str, str, list[str]]] = field(default_factory=list)
    closed_after: int | None = None

    def post(
        self, query_type: str, text: str, *, parent_id: str | None = None, parameters: dict[str, Any] | None = None
    ) -> str:
        if self.closed_after is not None and len(self.posts) >= self.closed_after:
            raise DiscussionClosed("closed")
        msg_id = next(_ids)
        self.posts.append((query_type, text, parent_id, {"msg_id": msg_id, **(parameters or {})}))
        return msg_id

    def escalate(self, reason: str, summary: str, messages: list[str]) -> str:
        self.escalations.append((reason, summary, messages))
        return next(_ids)

    def peer(
        self, query_type: str, text: str, parent_id: str | None = "first plan", node_id: str = "b", **parameters: Any
    ) -> Message:
        message = Message(next(_ids), node_id, self.name, "acme/widgets#12", parent_id, query_type, text, parameters)
        self.inbox.put(message)
        return message


@dataclass
class Thinker(NoThinker):
    ruling: Ruling | None = None
    answer_: Answer | None = None

    def rule(self, issue: Issue, plan: str, objection: str) -> Ruling | None:
        return self.ruling

    def answer(self, issue: Issue, plan: str, question: str) -> Answer | None:
        return self.answer_


def discuss(channel: Channel, thinker: Thinker | None = None, **settings: Any) -> Any:
    discussion = Discussion(
        channel, ISSUE, "plan A", DiscussionSettings(**{"window_s": 0.3, **settings}), thinker or Thinker()
    )
    # Peers' messages written with parent "first plan" answer revision 1, whatever its id.
    original = channel.post

    def post(query_type: str, text: str, **kwargs: Any) -> str:
        msg_id = original(query_type, text, **kwargs)
        if not discussion.plan_ids and query_type == "plan":
            waiting = list(channel.inbox.queue)
            channel.inbox.queue.clear()
            for message in waiting:  # in their order
                parent = msg_id if message.parent_id == "first plan" else message.parent_id
                channel.inbox.put(
                    Message(
                        message.msg_id,
                        message.node_id,
                        message.channel,
                        message.issue_id,
                        parent,
                        message.query_type,
                        message.text,
                        message.parameters,
                    )
                )
        return msg_id

    channel.post = post  # type: ignore[method-assign]
    return discussion.run()


def test_a_plan_nobody_objects_to_goes_ahead_as_it_was() -> None:
    channel = Channel()
    verdict = discuss(channel)
    assert (verdict.proceed, verdict.revision, verdict.plan) == (True, 1, "plan A")
    assert [p[0] for p in channel.posts] == ["plan"] and channel.posts[0][3]["window_ms"] == 300


def test_a_valid_objection_makes_a_revision_that_answers_it() -> None:
    channel = Channel()
    objection = channel.peer("objection", "keep the tests")
    verdict = discuss(channel, Thinker(ruling=Ruling(True, "plan B")))
    assert (verdict.proceed, verdict.revision, verdict.plan) == (True, 2, "plan B")
    revision = channel.posts[1]
    assert revision[:3] == ("plan", "plan B", objection.msg_id) and revision[3]["revision"] == 2


def test_an_objection_the_claimant_rules_wrong_is_answered_and_does_not_block() -> None:
    channel = Channel()
    objection = channel.peer("objection", "use tabs")
    verdict = discuss(channel, Thinker(ruling=Ruling(False, "the project uses spaces")))
    assert verdict.proceed and verdict.revision == 1
    assert channel.posts[1][:3] == ("answer", "The plan stands: the project uses spaces", objection.msg_id)


def test_an_objection_nobody_can_rule_on_stands_and_goes_to_a_human() -> None:
    channel = Channel()
    objection = channel.peer("objection", "ask the maintainers first")
    verdict = discuss(channel, Thinker(ruling=None))
    assert not verdict.proceed and "1 objection(s) standing" in verdict.reason
    [(reason, summary, messages)] = channel.escalations
    assert reason == "a discussion ended without agreement" and objection.msg_id in messages
    assert "ask the maintainers first" in summary and verdict.escalated


def test_the_objector_may_withdraw_its_objection() -> None:
    channel = Channel()
    objection = channel.peer("objection", "wait, is this right?")
    channel.peer("ack", "fine after all", parent_id=objection.msg_id)
    verdict = discuss(channel, Thinker(ruling=None))
    assert verdict.proceed


def test_past_max_revisions_a_valid_objection_stands() -> None:
    channel = Channel()
    channel.peer("objection", "again")
    verdict = discuss(channel, Thinker(ruling=Ruling(True, "plan B")), max_revisions=1)
    assert not verdict.proceed and verdict.plan == "plan A"


def test_an_objection_to_a_plan_already_revised_is_answered_by_the_revision() -> None:
    channel = Channel()
    channel.peer("objection", "one")
    channel.peer("objection", "two, to the same first plan")  # arrives after the revision
    thinker = Thinker(ruling=Ruling(True, "plan B"))
    verdict = discuss(channel, thinker)
    assert verdict.proceed and verdict.revision == 2  # not 3: the second objection was to plan A


def test_a_question_for_a_human_is_escalated_answered_and_does_not_block() -> None:
    channel = Channel()
    question = channel.peer("question", "which license?", needs_human=True)
    verdict = discuss(channel, Thinker(answer_=Answer(False, "MIT")))  # the asker wants a human: not the model
    assert verdict.proceed and len(verdict.escalated) == 1
    [(reason, summary, messages)] = channel.escalations
    assert reason == "a question needs a human" and question.msg_id in messages and "which license?" in summary
    assert channel.posts[1][0] == "answer" and channel.posts[1][2] == question.msg_id


def test_a_question_the_model_can_answer_is_answered() -> None:
    channel = Channel()
    channel.peer("question", "which file?")
    verdict = discuss(channel, Thinker(answer_=Answer(False, "parser.py")))
    assert verdict.proceed and channel.escalations == [] and channel.posts[1][1] == "parser.py"


def test_suggestions_and_corrections_become_notes_for_the_work() -> None:
    channel = Channel()
    channel.peer("suggestion", "add a changelog entry")
    channel.peer("correction", "the file is src/parser.py", node_id="c")
    verdict = discuss(channel)
    assert verdict.notes == ("suggestion from b: add a changelog entry", "correction from c: the file is src/parser.py")


def test_a_discussion_the_mesh_closed_ends_without_proceeding() -> None:
    channel = Channel(closed_after=1)
    channel.peer("objection", "no")
    verdict = discuss(channel, Thinker(ruling=Ruling(True, "plan B")))
    assert not verdict.proceed and "closed" in verdict.reason


@pytest.mark.parametrize(
    ("answer", "read"),
    [
        ("OBJECTION: keep the tests", ("OBJECTION", "keep the tests")),
        ("**ACK**", ("ACK", "")),
        ("  QUESTION:\nwhich file?", ("QUESTION", "which file?")),
        ("I think OBJECTION: maybe", None),  # the keyword must lead
        ("ack", None),  # and be written as asked
        ("", None),
        ("OBJECTIONABLE: x", None),
    ],
)
def test_a_model_answer_is_read_by_its_leading_keyword_or_not_at_all(answer: str, read: Any) -> None:
    assert _keyword(answer, ("ACK", "OBJECTION", "QUESTION")) == read


def test_noise_from_a_model_never_reads_as_agreement() -> None:
    class Noise:
        def chat(self, **kwargs: Any) -> Any:
            return type("R", (), {"message": type("M", (), {"content": "the the the ACK"})()})()

    thinker = ModelThinker("http://unused", "m", client=lambda **kwargs: Noise())
    assert thinker.review(ISSUE, "plan") is None
    assert thinker.rule(ISSUE, "plan", "no") is None
    assert thinker.answer(ISSUE, "plan", "why?") is None
    assert thinker.advise("fails", []) is None


@pytest.mark.parametrize(
    ("need", "mine", "met"),
    [
        ("make", {"make", "git"}, True),
        ("qwen2.5-coder", {"qwen2.5-coder:7b"}, True),
        ("qwen2.5", {"qwen2.5-coder:7b"}, False),
        ("Make", {"make"}, True),
        ("terraform", set(), False),
    ],
)
def test_a_help_request_names_what_helping_needs(need: str, mine: set[str], met: bool) -> None:
    assert satisfied(need, frozenset(mine)) is met


def test_escalation_bodies_carry_the_issue_and_keep_slack_markup_literal() -> None:
    escalation = Escalation(
        "ab" * 16,
        "walnut",
        "acme/widgets#12",
        "a question needs a human",
        "Is <script> & co fine?",
        ["cd" * 16],
        1_700_000_000_000,
    )
    n8n = escalation.n8n_body("oak")
    assert n8n["repo"] == "acme/widgets" and n8n["number"] == 12 and n8n["forwarded_by"] == "oak"
    assert n8n["channel"] == "bzzz/meta/issue/acme/widgets/12" and n8n["messages"] == ["cd" * 16]
    slack = escalation.slack_body()
    assert "&lt;script&gt; &amp; co" in slack["blocks"][0]["text"]["text"]
    assert slack["text"] == "Bzzz needs a human on acme/widgets#12: a question needs a human"
