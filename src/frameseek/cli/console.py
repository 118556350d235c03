"""The command line's two consoles and its one-line notes (shared by every command module)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

out = Console()
err = Console(stderr=True)


def note(text: str) -> None:
    """One ``note: ...`` line on stderr (never wrapped, never read as markup)."""
    err.print(f"[yellow]note:[/] {escape(' '.join(text.split()))}", highlight=False, soft_wrap=True)
