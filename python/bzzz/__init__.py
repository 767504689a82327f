"""Bzzz: a decentralized task-execution mesh of agents that run local AI models.

Re-exported here: the Rust core (`bzzz._core`: keys, signed envelopes and their gate, the
Merkle log). The rest is one sub-package or module per concern:

- `bus`: how one agent's workers talk: ZeroMQ events and requests over the run dir's sockets;
- `capabilities`: what an agent can do (tools, models, GPUs, load), detected and advertised;
- `cli`: the `bzzz` command line, one module per command group;
- `config`: the agent's configuration (TOML, `BZZZ_*` environment variables);
- `executor`: doing a task: workspaces, commands in the sandbox, the model, the Ollama server;
- `forge`: a GitHub-compatible server (REST API and git over HTTP) for the tests and the demo;
- `github`: taking work from GitHub: race-safe claims, leases, comments and results;
- `hmmm`: agents discuss an issue before they act, and ask each other for help;
- `log`: the agent's own signed log: its store, key, entries and bus service;
- `mesh`: the libp2p mesh: discovery, gated gossip, capabilities, peers, log replication;
- `paths`: the layout of an agent's data dir, spelled once;
- `redaction`: the one redaction point: no configured secret in anything that leaves a task;
- `runtime`: what every worker process shares: its identity, settings, heartbeats, JSON logs;
- `state`: each worker's durable inbox and outbox (SQLite);
- `supervisor`: the agent process: starts, watches and restarts the workers; `bzzz ctl`'s socket;
- `tasks`: the task: which issue, what it asks (its `bzzz-task` block), how it ended;
- `testing`: test support, not the agent: the probe workers tests run in place of real ones;
- `workers`: the worker processes' entry points (`python -m bzzz.workers.<name>`).
"""

from bzzz._core import (
    REJECT_REASONS,
    CoreError,
    Envelope,
    EnvelopeRejected,
    Gate,
    KeyPair,
    Limits,
    LogCorrupted,
    LogVerifier,
    MerkleLog,
    Proof,
    Safeguards,
    SeenCache,
    VerificationFailed,
    VerifiedTree,
    __version__,
    discovery_key,
    forward_envelope,
    message_id,
    peer_id,
    sign_envelope,
    verify_envelope,
)

__all__ = [
    "CoreError",
    "discovery_key",
    "Envelope",
    "EnvelopeRejected",
    "forward_envelope",
    "Gate",
    "KeyPair",
    "Limits",
    "LogCorrupted",
    "LogVerifier",
    "MerkleLog",
    "message_id",
    "peer_id",
    "Proof",
    "REJECT_REASONS",
    "Safeguards",
    "SeenCache",
    "sign_envelope",
    "VerificationFailed",
    "VerifiedTree",
    "verify_envelope",
    "__version__",
]
