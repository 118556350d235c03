"""The command line: one small module per command group, all of them thin calls of ``frameseek.api``.

``app`` is the typer application, ``main`` the console script's entry point (``frameseek``).
"""

from frameseek.cli.main import app, main

__all__ = ["app", "main"]
