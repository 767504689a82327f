"""Taking work from GitHub: discovery, race-safe claims, comments and results."""
