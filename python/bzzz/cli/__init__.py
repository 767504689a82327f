"""The `bzzz` command line: one module per command group."""
