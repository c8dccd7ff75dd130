"""Dictionaries of AE titles to try, most likely first.

A server that checks the called AE title rejects a stranger with reason 7 ("called AE title not
recognised"); one that checks the calling title rejects with reason 3. The titles to try are
data (``pacsaudit/data/called_ae_titles.txt`` and ``calling_ae_titles.txt``): one per line,
``#`` starts a comment, file order is try order.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

__all__ = ["called_ae_dictionary", "calling_ae_dictionary", "is_valid_ae_title"]

# PS3.5 6.2, VR AE: 1-16 characters of the default repertoire (printable ASCII), no backslash,
# no control characters; leading and trailing spaces are not significant.
_AE_TITLE = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}", re.ASCII)


def is_valid_ae_title(title: str) -> bool:
    """True if ``title`` can be sent as an AE title as is (1-16 chars, no backslash, not blank)."""
    return bool(_AE_TITLE.fullmatch(title)) and title.strip() == title and bool(title)


@functools.cache
def called_ae_dictionary() -> tuple[str, ...]:
    """Called AE titles that PACS, archives and modalities ship with or are commonly given."""
    return _load("called_ae_titles.txt")


@functools.cache
def calling_ae_dictionary() -> tuple[str, ...]:
    """Calling AE titles commonly allowed by servers that check who calls."""
    return _load("calling_ae_titles.txt")


def _load(file_name: str) -> tuple[str, ...]:
    text = (resources.files("pacsaudit") / "data" / file_name).read_text("ascii")
    return parse_ae_titles(text, file_name)


def parse_ae_titles(text: str, where: str = "<text>") -> tuple[str, ...]:
    """Parse a dictionary file; raise ``ValueError`` on an invalid title or a duplicate."""
    titles: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        title = line.split("#", 1)[0].strip()
        if not title:
            continue
        if not is_valid_ae_title(title):
            raise ValueError(f"{where}:{number}: invalid AE title {title!r}")
        if title in seen:
            raise ValueError(f"{where}:{number}: duplicate AE title {title!r}")
        seen.add(title)
        titles.append(title)
    return tuple(titles)
