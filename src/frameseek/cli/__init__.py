"""The command line: one small module per command group, all of them thin calls of ``frameseek.api``."""

from frameseek.cli.main import main

__all__ = ["main"]
