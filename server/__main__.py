"""`python -m ringrun.server ...` is the `ringrun` command, `serve` included."""

from .cli import entry

entry()
