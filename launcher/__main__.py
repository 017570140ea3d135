"""`python -m ringrun.launcher ...` is the `ringrun` command (used over ssh, where the console script may not be on
PATH)."""

from .cli import entry

entry()
