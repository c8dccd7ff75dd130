"""Where results go: JSON Lines files, and the terminal."""

from pacsaudit.output.jsonl import JsonlWriter

__all__ = ["JsonlWriter"]
