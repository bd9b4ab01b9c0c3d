"""The toolbars' icons: small inline SVG drawn here (no icon font, no CDN: intranets are often offline).

Each is the inside of a 24x24 stroked SVG. An icon is never a control's name: it stands beside a text
label (visible, or for screen readers only on a phone), so every one is aria-hidden.
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

PATHS = {
    "reply": '<path d="M9 14 4 9l5-5"/><path d="M20 20v-7a4 4 0 0 0-4-4H4"/>',
    "reply-all": '<path d="M7 14 2 9l5-5"/><path d="M12 14 7 9l5-5"/><path d="M22 20v-7a4 4 0 0 0-4-4H7"/>',
    "forward": '<path d="m15 14 5-5-5-5"/><path d="M4 20v-7a4 4 0 0 1 4-4h12"/>',
    "attach": '<path d="m20 11-8 8a5 5 0 0 1-7-7l8.5-8.5a3.5 3.5 0 0 1 5 5L10 17a2 2 0 0 1-3-3l7.5-7.5"/>',
    "archive": '<rect x="3" y="4" width="18" height="5" rx="1"/><path d="M5 9v10a1 1 0 0 0 1 1h12a1 1 0 0 0'
    ' 1-1V9"/><path d="M10 13h4"/>',
    "delete": '<path d="M4 7h16"/><path d="M9 7V4h6v3"/><path d="m6 7 1 13h10l1-13"/>'
    '<path d="M10 11v5M14 11v5"/>',
    "star": '<path d="m12 3 2.8 5.8 6.2.9-4.5 4.3 1.1 6.2-5.6-2.9-5.6 2.9 1.1-6.2L3 9.7l6.2-.9z"/>',
    "unstar": '<path d="m12 3 2.8 5.8 6.2.9-4.5 4.3 1.1 6.2-5.6-2.9-5.6 2.9 1.1-6.2L3 9.7l6.2-.9z"/>'
    '<path d="M3 3l18 18"/>',
    "read": '<path d="M3 10 12 4l9 6v9a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1z"/><path d="m3 10 9 6 9-6"/>',
    "unread": '<rect x="3" y="5" width="18" height="14" rx="1"/><path d="m3 6 9 7 9-7"/>',
    "move": '<path d="M3 6a1 1 0 0 1 1-1h5l2 2h9a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1z"/>'
    '<path d="M9 13h6"/><path d="m12 10 3 3-3 3"/>',
    "back": '<path d="M19 12H5"/><path d="m12 19-7-7 7-7"/>',
    "more": '<circle cx="5" cy="12" r="1.5"/><circle cx="12" cy="12" r="1.5"/>'
    '<circle cx="19" cy="12" r="1.5"/>',
}


def icon(name: str) -> SafeString:
    """One icon by its name in PATHS; an unknown name is a programming error (KeyError)."""
    return format_html(
        '<svg class="icon" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor"'
        ' stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"'
        ' focusable="false">{}</svg>',
        mark_safe(PATHS[name]),  # noqa: S308 -- constant markup of this module
    )
