"""Markdown as a reader's viewer shows it (CommonMark with tables), to check that text a peer
chose never becomes a link, an image or HTML in a notice or a DefectDojo description."""

from __future__ import annotations

from markdown_it import MarkdownIt

HOSTILE_VERSION = (
    "1.5.0 [fix now](https://evil.example/fix) ![t](https://evil.example/p.png) "
    "<img src=https://evil.example/q.png> www.evil.example https://evil.example/bare *x* | y"
)
"""An Orthanc `/system` Version as a hostile server could answer it (still a version 1.5.0)."""

_RENDERER = MarkdownIt("commonmark").enable("table")


def rendered(text: str) -> str:
    """The HTML a CommonMark viewer makes of `text`."""
    return _RENDERER.render(text)
