"""The command line: Typer wiring, one module per command. Never imports torch at top level."""
