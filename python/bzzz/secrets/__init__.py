"""Where an agent's GitHub token comes from, now: a file, the environment, or HashiCorp Vault.

The github and executor workers ask a `TokenSource` (`bzzz.secrets.source.open_source`) for the
*current* token on every request, so a rotated token is used without restarting them:

- `settings`: the `[github_token]` section of the agent config (`TokenSourceSettings`);
- `files`: a token in a file, re-read when the file changes (Swarm/Kubernetes/systemd
  credentials are rotated by replacing the file), or in `$GITHUB_TOKEN` (today's behaviour);
- `vault`: a token in a KV v2 secret, read with hvac; the Vault login (a token file, AppRole or
  `$VAULT_TOKEN`) is renewed before it runs out, the secret re-read every `refresh_s` and at once
  when GitHub answers 401; the last token is kept `max_stale_s` after Vault stops answering;
- `source`: the interface the workers use, and the one that picks a source from the settings.

Every value is registered with `bzzz.redaction` before it is handed out, and kept in memory
only: never in state, outbox, logs or a child's environment.
"""
