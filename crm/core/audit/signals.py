"""Sign-ins, sign-outs and permission changes go to the audit ledger (R7.1.4).

Connected from ``AuditConfig.ready()``.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed

from crm.core import request_context

from .models import AuditAction
from .services import audit_record


def _request_meta(request) -> dict:
    """IP and user agent from the request itself (the login view may run outside the middleware)."""
    if request is None or not hasattr(request, "META"):
        return {}
    return {
        "ip": request_context.client_ip(request),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
    }


def on_logged_in(sender, request, user, **kwargs):
    audit_record(action=AuditAction.LOGIN, actor=user, obj=user, **_request_meta(request))


def on_login_failed(sender, credentials, request=None, **kwargs):
    # Only the attempted user name: never the password or any other credential.
    username_field = get_user_model().USERNAME_FIELD
    username = str(credentials.get(username_field) or credentials.get("username") or "")[:150]
    audit_record(
        action=AuditAction.LOGIN_FAILED,
        actor=None,
        object_type=get_user_model()._meta.label_lower,
        object_repr=username,
        message=f"attempted username: {username}",
        **_request_meta(request),
    )


def on_logged_out(sender, request, user, **kwargs):
    if user is None:
        return
    audit_record(action=AuditAction.LOGOUT, actor=user, obj=user, **_request_meta(request))


def _names(model, pks) -> list[str]:
    if not pks:
        return []
    if model is Permission:
        rows = Permission.objects.filter(pk__in=pks).values_list("content_type__app_label", "codename")
        return sorted(f"{app}.{code}" for app, code in rows)
    if model is Group:
        return sorted(Group.objects.filter(pk__in=pks).values_list("name", flat=True))
    user_model = get_user_model()
    users = user_model._default_manager.filter(pk__in=pks)
    return sorted(users.values_list(user_model.USERNAME_FIELD, flat=True))


def _pending_key(sender) -> str:
    return f"_audit_cleared_{sender._meta.db_table}"


def make_m2m_receiver(field_name: str, reverse_field_name: str):
    """A receiver for one m2m relation; ``field_name`` names it from the forward side."""

    def receiver(sender, instance, action, reverse, model, pk_set, **kwargs):
        if action == "pre_clear":
            # post_clear does not say what was removed: remember it now.
            manager = getattr(instance, reverse_field_name if reverse else field_name)
            setattr(instance, _pending_key(sender), list(manager.values_list("pk", flat=True)))
            return
        if action not in ("post_add", "post_remove", "post_clear"):
            return
        if action == "post_clear":
            pk_set = instance.__dict__.pop(_pending_key(sender), None)
        names = _names(model, pk_set)
        if not names:
            return
        key = "added" if action == "post_add" else "removed"
        name = reverse_field_name if reverse else field_name
        audit_record(
            action=AuditAction.PERMISSION_CHANGE,
            obj=instance,
            changes={name: {key: names}},
            message=f"{name} {key}: {', '.join(names)}"[:2000],
        )

    return receiver


def connect() -> None:
    user_model = get_user_model()
    user_logged_in.connect(on_logged_in, dispatch_uid="audit.login")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit.login_failed")
    user_logged_out.connect(on_logged_out, dispatch_uid="audit.logout")
    relations = [
        (user_model.groups.through, "groups", "user_set"),
        (user_model.user_permissions.through, "user_permissions", "user_set"),
        (Group.permissions.through, "permissions", "group_set"),
    ]
    for through, field_name, reverse_name in relations:
        m2m_changed.connect(
            make_m2m_receiver(field_name, reverse_name),
            sender=through,
            weak=False,
            dispatch_uid=f"audit.m2m.{through._meta.label_lower}",
        )
