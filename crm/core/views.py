from django.shortcuts import render
from django.views.defaults import bad_request as _bad_request
from django.views.defaults import page_not_found as _page_not_found
from django.views.defaults import permission_denied as _permission_denied
from django.views.defaults import server_error as _server_error

from .registry import registry


def home(request):
    return render(request, "core/home.html", {"widgets": registry.widgets_for(request)})


def bad_request(request, exception):
    return _bad_request(request, exception, template_name="errors/400.html")


def permission_denied(request, exception):
    return _permission_denied(request, exception, template_name="errors/403.html")


def page_not_found(request, exception):
    return _page_not_found(request, exception, template_name="errors/404.html")


def server_error(request):
    return _server_error(request, template_name="errors/500.html")
