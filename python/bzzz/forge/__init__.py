"""The forge: a GitHub-compatible server (REST API v3 and git over smart HTTP) for tests and the demo."""
