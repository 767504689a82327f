"""Doing the work: workspaces, executors (commands, Ollama) and the sandbox they run in."""
