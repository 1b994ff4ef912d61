from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import ListView

from . import selectors, services


class NotificationListView(ListView):
    template_name = "notifications/notification_list.html"
    context_object_name = "notifications"
    paginate_by = 20

    def get_queryset(self):
        return selectors.notification_list_for_user(user=self.request.user)


@require_GET
def notification_open(request, pk):
    """Mark the notification read and go to its page (internal paths only)."""
    notification = services.notification_mark_read(user=request.user, pk=pk)
    url = notification.url
    if (
        url
        and services.is_internal_url(url)
        and url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return redirect(url)
    return redirect("notifications:notification-list")


@require_POST
def notification_mark_read(request, pk):
    notification = services.notification_mark_read(user=request.user, pk=pk)
    if request.htmx:
        return render(request, "notifications/partials/_row.html", {"notification": notification})
    return redirect("notifications:notification-list")


@require_POST
def notification_mark_all_read(request):
    count = services.notification_mark_all_read(user=request.user)
    if count:
        messages.success(
            request,
            ngettext(
                "%(count)d notification marked as read.", "%(count)d notifications marked as read.", count
            )
            % {"count": count},
        )
    return redirect("notifications:notification-list")
