"""HTML mail made harmless, and plain text made clickable. Plain Python, no Django.

HTML goes through nh3 (the ammonia sanitiser) with an allow-list: formatting tags and
attributes only, no script, no event attributes, no forms, frames, objects, SVG or MathML,
links only to http, https and mailto, CSS limited to properties that cannot fetch or overlay.
Remote images are dropped unless the reader asked for them; `cid:` images point at Postane's
own attachment URL. The result is further confined by the page: it is shown in an
`<iframe sandbox>` without scripts, under a `default-src 'none'` Content-Security-Policy.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

import nh3

TAGS = frozenset(
    [
        "a",
        "abbr",
        "address",
        "article",
        "b",
        "bdi",
        "bdo",
        "big",
        "blockquote",
        "br",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "details",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "font",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "main",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "rp",
        "rt",
        "ruby",
        "s",
        "samp",
        "section",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "time",
        "tr",
        "tt",
        "u",
        "ul",
        "var",
        "wbr",
    ]
)
# Removed with everything inside them (the rest of an unknown tag's content is kept as text).
DROPPED_WITH_CONTENT = frozenset(
    [
        "script",
        "style",
        "title",
        "head",
        "noscript",
        "template",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "svg",
        "math",
        "select",
        "textarea",
        "button",
        "xmp",
        "noembed",
        "noframes",
    ]
)
_SHARED_ATTRIBUTES = {
    "style",
    "align",
    "valign",
    "dir",
    "lang",
    "title",
    "width",
    "height",
    "bgcolor",
    "border",
}
ATTRIBUTES = {
    "*": _SHARED_ATTRIBUTES,
    "a": {"href"},
    "img": {"src", "alt"},
    "font": {"color", "face", "size"},
    "table": {"cellpadding", "cellspacing", "summary"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "nowrap", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value"},
    "time": {"datetime"},
}
# CSS that formats text and boxes; nothing that loads a URL (background, list-style-image,
# content, cursor) or lifts content out of its place (position, z-index, transform).
STYLE_PROPERTIES = frozenset(
    [
        "color",
        "background-color",
        "font",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "font-variant",
        "line-height",
        "letter-spacing",
        "word-spacing",
        "text-align",
        "text-decoration",
        "text-indent",
        "text-transform",
        "white-space",
        "vertical-align",
        "direction",
        "unicode-bidi",
        "margin",
        "margin-top",
        "margin-right",
        "margin-bottom",
        "margin-left",
        "padding",
        "padding-top",
        "padding-right",
        "padding-bottom",
        "padding-left",
        "border",
        "border-top",
        "border-right",
        "border-bottom",
        "border-left",
        "border-color",
        "border-style",
        "border-width",
        "border-collapse",
        "border-spacing",
        "border-radius",
        "width",
        "max-width",
        "min-width",
        "height",
        "max-height",
        "min-height",
        "display",
        "float",
        "clear",
        "table-layout",
        "caption-side",
        "empty-cells",
        "list-style-type",
        "list-style-position",
        "overflow-wrap",
        "word-break",
    ]
)
URL_SCHEMES = frozenset({"http", "https", "mailto", "cid"})


@dataclass(frozen=True)
class Sanitised:
    html: str
    blocked_images: int  # remote images left out because the reader has not asked for them


def sanitise(
    source: str, *, cid_url: Callable[[str], str | None], own_prefix: str, remote_images: bool
) -> Sanitised:
    """Allow-listed HTML. `cid_url` maps a Content-ID to Postane's URL for that part (or None).

    `own_prefix` is the path under which those URLs live: the only relative URLs kept, so
    sanitising Postane's own output again changes nothing.
    """
    blocked = 0

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if attribute == "href" and not _is_link(value, own_prefix):
            return None
        if tag != "img" or attribute != "src":
            return value
        if value.lower().startswith("cid:"):
            return cid_url(value[4:].strip().strip("<>"))
        if value.startswith(own_prefix):
            return value
        if _is_remote(value) and remote_images:
            return value
        blocked += _is_remote(value)
        return None

    cleaner = nh3.Cleaner(
        tags=set(TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        attribute_filter=keep,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=set(URL_SCHEMES),
        filter_style_properties=set(STYLE_PROPERTIES),
        url_relative=lambda url: url if url.startswith(own_prefix) else None,
    )
    # A second pass settles attribute order (a link whose href was dropped), so that sanitising
    # the result again changes nothing.
    first = cleaner.clean(source)
    counted = blocked  # the second pass meets no remote image: the first one dropped them
    return Sanitised(cleaner.clean(first), counted)


def for_sending(source: str) -> str:
    """HTML that leaves in a message written here (rich text, a forwarded original): the same
    allow-list, without `cid:` and relative links (they would name nothing for the receiver);
    remote images stay, for the receiver's mail reader to hold back or show."""
    if not source.strip():
        return ""
    return sanitise(source, cid_url=lambda _cid: None, own_prefix="\x00", remote_images=True).html


def _is_remote(url: str) -> bool:
    return url.lower().startswith(("http://", "https://", "//"))


def _is_link(url: str, own_prefix: str) -> bool:
    return url.lower().startswith(("http://", "https://", "mailto:")) or url.startswith(own_prefix)


_LINKABLE = re.compile(
    r"(?P<url>\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]}])"
    r"|(?P<mail>\bmailto:[^\s<>\"']+[^\s<>\"'.,;:!?)\]}])"
    r"|(?P<address>\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b)"
)


def linkify(text: str) -> str:
    """Plain text as escaped HTML, with http, https and mailto links (and bare addresses) made links."""
    pieces, position = [], 0
    for match in _LINKABLE.finditer(text):
        pieces.append(html.escape(text[position : match.start()]))
        shown = match.group()
        target = f"mailto:{shown}" if match.lastgroup == "address" else shown
        link = f'<a href="{html.escape(target)}" target="_blank" rel="noopener noreferrer">'
        pieces.append(f"{link}{html.escape(shown)}</a>")
        position = match.end()
    pieces.append(html.escape(text[position:]))
    return "".join(pieces)
