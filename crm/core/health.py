"""GET /healthz (filled in by the jobs/health work)."""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.http import require_GET


@login_not_required
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})
