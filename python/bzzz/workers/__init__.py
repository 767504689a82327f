"""Worker processes, each run by the supervisor as `python -m bzzz.workers.<name>`."""
