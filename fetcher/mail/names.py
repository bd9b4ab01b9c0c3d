"""Names from mail (attachment file names) made safe to show and to save. Plain Python, no Django."""

from __future__ import annotations

import unicodedata

# Control and format characters: U+202E RIGHT-TO-LEFT OVERRIDE and the other bidi controls
# (U+200E/F, U+202A-U+202E, U+2066-U+2069, U+061C) are category Cf, and make
# "invoice\u202efdp.exe" look like "invoiceexe.pdf"; line and paragraph separators break lines.
_INVISIBLE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def visible_name(name: str) -> str:
    """The name without control, format (bidi) or unassigned characters: what it shows is what it is."""
    return "".join(ch for ch in name if unicodedata.category(ch) not in _INVISIBLE)
