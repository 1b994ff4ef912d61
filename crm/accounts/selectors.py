"""Reads about users and teams, already scoped and with their related rows loaded."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import Team, User
from .roles import role_label


def user_get_profile(*, user: User) -> User:
    """The signed-in user with team, manager and roles loaded (for the profile page)."""
    return get_object_or_404(
        User.objects.select_related("team", "team__leader", "manager").prefetch_related("groups"),
        pk=user.pk,
    )


def user_role_labels(*, user: User) -> list[str]:
    """Translated role labels of ``user`` (uses prefetched groups when present)."""
    return sorted(str(role_label(group.name)) for group in user.groups.all())


@dataclass(frozen=True)
class TwoFactorStatus:
    enabled: bool
    backup_codes_left: int
    confirmed_at: object = None


def two_factor_status(*, user: User) -> TwoFactorStatus:
    device = (
        TOTPDevice.objects.filter(user=user, confirmed=True).only("pk", "created_at").order_by("pk").first()
    )
    backup = StaticToken.objects.filter(device__user=user, device__confirmed=True).count() if device else 0
    return TwoFactorStatus(
        enabled=device is not None,
        backup_codes_left=backup,
        confirmed_at=getattr(device, "created_at", None),
    )


def team_list(*, user: User | None = None) -> QuerySet[Team]:
    """Teams with their leader and member count."""
    return Team.objects.select_related("leader").annotate(member_count=Count("members"))


def team_members(*, team: Team) -> QuerySet[User]:
    return (
        User.objects.filter(team=team, is_active=True)
        .select_related("manager")
        .prefetch_related(Prefetch("groups"))
        .order_by("username")
    )


def backup_device_for(*, user: User) -> StaticDevice | None:
    return StaticDevice.objects.filter(user=user, confirmed=True).first()
