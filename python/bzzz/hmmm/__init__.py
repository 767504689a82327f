"""HMMM: agents discuss before they act.

* `messages`: the wire (channels, `meta_msg`, help and escalation payloads);
* `discussion`: the claimant's side of an issue's discussion (plan, objections, verdict);
* `thinking`: what the agent's model says of plans, objections, questions and help;
* `helpdesk`: help requests, answers and relays;
* `escalation`: forwarding escalations to N8N / Slack webhooks, once each;
* `engine`: one agent's hub tying them together over a `Transport`, journalling everything;
* `transport`: the hub's transport, the mesh worker over the bus;
* `client` / `service`: the `hmmm` bus service, as other workers ask it and as the hmmm worker
  answers it (with the worker's settings, `HmmmWorkerSettings`).

The safeguards that end runaway discussions (hop limit, participants, TTLs, sender rate) are
the Rust core's (`bzzz._core.Safeguards`), enforced by the mesh's gate on every message.
"""
