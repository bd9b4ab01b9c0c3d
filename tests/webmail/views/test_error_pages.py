"""Error pages are Postane's own, in the reader's language, with a way back; the login page says Postane."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import translation
from django.views import defaults
from django.views.csrf import csrf_failure

pytestmark = pytest.mark.django_db


def _looks_like_postane(page: str) -> None:
    assert 'data-testid="error-page"' in page
    assert "Postane" in page
    assert f'href="{reverse("home")}"' in page  # a way back
    assert "css/postane" in page


def test_a_missing_page_is_postanes_own_in_english_and_turkish(client: Client) -> None:
    english = client.get("/no/such/page/", HTTP_ACCEPT_LANGUAGE="en")
    turkish = client.get("/no/such/page/", HTTP_ACCEPT_LANGUAGE="tr")

    assert english.status_code == turkish.status_code == 404
    _looks_like_postane(english.content.decode())
    assert "Not found" in english.content.decode()
    assert "Bulunamadı" in turkish.content.decode()
    assert "Back to your mail" not in turkish.content.decode()


@pytest.mark.parametrize(
    ("view", "status", "english", "turkish"),
    [
        (
            lambda request: defaults.permission_denied(request, PermissionDenied()),
            403,
            "Not allowed",
            "İzin yok",
        ),
        (lambda request: defaults.bad_request(request, ValueError()), 400, "Bad request", "Geçersiz istek"),
        (csrf_failure, 403, "The form expired", "Formun süresi doldu"),
        (
            defaults.server_error,
            500,
            "Something went wrong",
            "Bir şeyler ters gitti",
        ),
    ],
)
def test_every_error_page_is_postanes_own(
    view: Callable[[HttpRequest], HttpResponse], status: int, english: str, turkish: str
) -> None:
    request = RequestFactory().get("/somewhere/")
    for language, heading in (("en", english), ("tr", turkish)):
        with translation.override(language):
            response = view(request)
        page = response.content.decode()
        assert response.status_code == status
        _looks_like_postane(page)
        assert heading in page, (language, page)


def test_the_login_page_says_postane_not_the_host(client: Client) -> None:
    page = client.get(reverse("login"), HTTP_HOST="localhost").content.decode()

    assert '<a class="brand" href="/">Postane</a>' in page
    assert "localhost" not in page.split("<body", 1)[1].split("</header>", 1)[0]
    assert "<title>Log in · Postane</title>" in page
