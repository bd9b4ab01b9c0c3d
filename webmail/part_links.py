"""Signed, short-lived links to a message's inline images.

An HTML body is shown in an `<iframe sandbox>` without allow-same-origin, so its document has an
opaque origin and the images it asks for travel without the session cookie: the cookie-guarded
part view sent them to the login page. A `cid:` image therefore points at a link that carries its
own proof instead: a signature over the message, the part and the owner, valid for LIFETIME. The
body document is never cached, so each showing signs afresh.

The owner's id is in the token in clear (what the signature covers); the rest of the link names
the message and the part. A token for one part of one message opens nothing else, for nobody else.
"""

from __future__ import annotations

import uuid

from django.core import signing
from django.http import Http404
from django.urls import reverse

from fetcher.models import Message

LIFETIME_SECONDS = 10 * 60  # long enough for a slow page to load its images, short if a link leaks


def _signer(public_id: uuid.UUID | str, part: int) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=f"postane.inline-part:{public_id}:{part}")


def inline_url(message: Message, part: int) -> str:
    """The link a `cid:` image of `message` shows from inside the frame."""
    token = _signer(message.public_id, part).sign(str(message.mailbox.owner_id))
    return reverse("message_inline_part", args=[message.public_id, part, token])


def owner_of(public_id: uuid.UUID, part: int, token: str) -> int:
    """The owner a link was signed for; 404 for a token forged, altered, expired or made for another part."""
    try:
        return int(_signer(public_id, part).unsign(token, max_age=LIFETIME_SECONDS))
    except (signing.BadSignature, ValueError):
        raise Http404("No such part") from None
