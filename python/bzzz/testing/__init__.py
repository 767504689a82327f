"""Test support, not part of the agent: doubles the tests and benchmarks run in place of real
workers. They ship in the package only because the supervisor runs every worker as
`python -m <module>` in its own process, where `tests/` may not be importable (an agent run as
another user, from another directory).

- `probe`: a worker that heartbeats and misbehaves on request (exits, hangs, ignores SIGTERM);
- `probe_append`: its `--append`: entries to the agent's log through a durable outbox;
- `probe_executor`: its `--executor`: an `executor` service whose every task succeeds.
"""
