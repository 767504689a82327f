"""How other workers (the executor) use the hmmm worker: the `hmmm` service over the bus.

    hmmm = HmmmClient(run_dir)
    verdict = hmmm.discuss("acme/widgets", 12, title, body, plan)     # blocks for the objection period
    answers = hmmm.ask_help("acme/widgets#12", problem, tried, needs)
    hmmm.escalate("acme/widgets", 12, reason, summary)
    hmmm.transcript("acme/widgets", 12)     # {"channel", "first", "last", "entries"}: the discussion in the log

This module is the service's wire, defined once: its name and the request structs. The hmmm
worker answers it in `bzzz.hmmm.service`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from bzzz.bus import Client

SERVICE = "hmmm"
RESEND_S = 30.0


class Discuss(msgspec.Struct, tag="discuss", tag_field="op", frozen=True):
    repo: str
    number: int
    title: str
    body: str
    plan: str
    window_s: float | None = None


class AskHelp(msgspec.Struct, tag="ask_help", tag_field="op", frozen=True):
    task_id: str
    problem: str
    tried: list[str]
    needs: list[str]
    window_s: float = 20.0


class Escalate(msgspec.Struct, tag="escalate", tag_field="op", frozen=True):
    repo: str
    number: int
    reason: str
    summary: str
    messages: list[str] = []


class GetTranscript(msgspec.Struct, tag="transcript", tag_field="op", frozen=True):
    repo: str
    number: int


class Finish(msgspec.Struct, tag="finish", tag_field="op", frozen=True):
    repo: str
    number: int


HmmmRequest = Discuss | AskHelp | Escalate | GetTranscript | Finish
request_decoder = msgspec.json.Decoder(HmmmRequest)


class HmmmClient:
    def __init__(self, run_dir: Path | str, *, sender: str = "hmmm-client", timeout_s: float = 10.0) -> None:
        self._client = Client(run_dir, sender=sender, timeout_s=timeout_s, retries=0)
        self._run_dir = run_dir

    def _call(self, request: HmmmRequest, *, timeout_s: float | None = None) -> Any:
        client = self._client
        if timeout_s is not None:
            # A long call is asked again every RESEND_S with the same request id: a worker still on
            # it answers once it is done (the repeat then from its reply cache); one restarted
            # meanwhile starts it afresh. Either way the caller hears within a resend of the end.
            client = Client(
                self._run_dir,
                sender=self._client.sender,
                timeout_s=RESEND_S,
                retries=max(1, int(timeout_s // RESEND_S)),
            )
        try:
            return msgspec.json.decode(client.request(SERVICE, msgspec.json.encode(request)))
        finally:
            if client is not self._client:
                client.close()

    def discuss(
        self,
        repo: str,
        number: int,
        title: str,
        body: str,
        plan: str,
        *,
        window_s: float | None = None,
        timeout_s: float = 7200.0,
    ) -> dict[str, Any]:
        """The verdict (`bzzz.hmmm.discussion.Verdict.as_dict`) once the discussion decided."""
        return dict(self._call(Discuss(repo, number, title, body, plan, window_s), timeout_s=timeout_s))

    def ask_help(
        self, task_id: str, problem: str, tried: list[str], needs: list[str], *, window_s: float = 20.0
    ) -> list[dict[str, Any]]:
        reply = self._call(AskHelp(task_id, problem, tried, needs, window_s), timeout_s=window_s + 30.0)
        return list(reply["answers"])

    def escalate(self, repo: str, number: int, reason: str, summary: str, messages: list[str] | None = None) -> str:
        return str(self._call(Escalate(repo, number, reason, summary, messages or []))["msg_id"])

    def transcript(self, repo: str, number: int) -> dict[str, Any]:
        """{"channel", "first", "last", "entries"}: where this issue's discussion is in the agent's log."""
        return dict(self._call(GetTranscript(repo, number)))

    def finish(self, repo: str, number: int) -> None:
        self._call(Finish(repo, number))

    def close(self) -> None:
        self._client.close()
