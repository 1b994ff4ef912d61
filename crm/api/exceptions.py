"""Every API error answers JSON: {"detail": ..., "code": ...} (plus field errors for 400)."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    if isinstance(exc, ValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(response.data, dict) and "detail" in response.data:
        response.data.setdefault("code", getattr(exc, "default_code", "error"))
    elif response.status_code == status.HTTP_400_BAD_REQUEST:
        response.data = {
            "detail": exceptions.ValidationError.default_detail,
            "code": "invalid",
            "errors": response.data,
        }
    return Response(
        response.data,
        status=response.status_code,
        headers=response.headers if hasattr(response, "headers") else None,
    )
