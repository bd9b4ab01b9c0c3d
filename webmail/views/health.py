"""/healthz: what load balancers and compose poll (the checks are webmail.health's)."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from webmail.health import run_checks
from webmail.views.request import HtmxHttpRequest


@require_GET
@never_cache
def healthz(request: HtmxHttpRequest) -> JsonResponse:
    checks = run_checks()
    down = sorted(name for name, check in checks.items() if not check.ok)
    body = {
        "status": "ok" if not down else "down",
        "down": down,
        "checks": {name: {"ok": check.ok, "detail": check.detail} for name, check in checks.items()},
    }
    return JsonResponse(body, status=503 if down else 200)
