"""Writes on users, teams and two-factor devices. Every view, command and seed step uses these."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_record
from crm.core.crypto import normalize_phone
from crm.core.validators import validate_email, validate_mobile

from . import roles as roles_module
from .models import Team, User, validate_time_zone

PROFILE_FIELDS = ("display_name", "first_name", "last_name", "email", "mobile", "language", "time_zone")
BACKUP_CODE_COUNT = 10
TOTP_DEVICE_NAME = "authenticator"
BACKUP_DEVICE_NAME = "backup"


def _audit(*, action: str, actor=None, obj=None, changes=None, message: str = "") -> None:
    """Append an entry to the audit ledger in the current transaction (R7.1.4).

    Sign-in/out and role (group) changes are recorded by the ledger's own signal handlers.
    """
    audit_record(action=action, actor=actor, obj=obj, changes=changes, message=message)


def _validate_roles(roles: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(roles))
    unknown = [name for name in names if name not in roles_module.ROLES]
    if unknown:
        raise ValidationError(
            {"roles": _("Unknown role: %(roles)s") % {"roles": ", ".join(unknown)}}, code="unknown_role"
        )
    return names


def _apply_roles(user: User, names: list[str]) -> None:
    user.groups.set(Group.objects.filter(name__in=names))
    is_staff = roles_module.ADMINISTRATOR in names or user.is_superuser
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])


# Users -------------------------------------------------------------------------------------------


@transaction.atomic
def user_create(
    *, username: str, password: str | None, roles: Iterable[str] = (), actor=None, **fields
) -> User:
    """Create a staff user in ``roles`` (role names from crm.accounts.roles).

    The password is checked against AUTH_PASSWORD_VALIDATORS (None makes an unusable password,
    for accounts that must first reset it). Administrators get is_staff (admin site access).
    """
    names = _validate_roles(roles)
    username = (username or "").strip()
    if username and User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": _("A user with that user name already exists.")}, code="unique")
    user = User(username=username, **fields)
    if user.mobile:
        user.mobile = normalize_phone(user.mobile)
    if password is None:
        user.set_unusable_password()
    else:
        try:
            validate_password(password, user=user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.error_list}) from exc
        user.set_password(password)
    user.is_staff = roles_module.ADMINISTRATOR in names or user.is_superuser
    user.full_clean(exclude=["password"])
    user.save()
    if names:
        user.groups.set(Group.objects.filter(name__in=names))
    _audit(
        action=AuditAction.CREATE,
        actor=actor,
        obj=user,
        changes={
            "username": [None, user.username],
            "roles": [None, names],
            "is_staff": [None, user.is_staff],
        },
        message="user created",
    )
    return user


@transaction.atomic
def user_set_roles(*, user: User, roles: Iterable[str], actor=None) -> User:
    """Replace the user's roles; is_staff follows the Administrator role."""
    names = _validate_roles(roles)
    was_staff = user.is_staff
    _apply_roles(user, names)  # the group change itself is recorded by the ledger's m2m handler
    if was_staff != user.is_staff:
        _audit(
            action=AuditAction.PERMISSION_CHANGE,
            actor=actor,
            obj=user,
            changes={"is_staff": [was_staff, user.is_staff]},
            message="staff access follows the Administrator role",
        )
    return user


@transaction.atomic
def user_update_profile(*, user: User, actor=None, **fields) -> User:
    """Change the user's own settings: names, e-mail, mobile, language and time zone (R5.6.1)."""
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"Not a profile field: {', '.join(sorted(unknown))}")
    errors = {}
    if "mobile" in fields:
        fields["mobile"] = normalize_phone(fields["mobile"] or "")
        try:
            validate_mobile(fields["mobile"])
        except ValidationError as exc:
            errors["mobile"] = exc.error_list
    if "email" in fields:
        fields["email"] = (fields["email"] or "").strip()
        try:
            validate_email(fields["email"])
        except ValidationError as exc:
            errors["email"] = exc.error_list
    if errors:
        raise ValidationError(errors)
    if "time_zone" in fields:
        validate_time_zone(fields["time_zone"])
    changed = {name: value for name, value in fields.items() if getattr(user, name) != value}
    if not changed:
        return user
    before = {name: getattr(user, name) for name in changed}
    for name, value in changed.items():
        setattr(user, name, value)
    user.full_clean(exclude=["password"], validate_unique=False)
    update_fields = list(changed)
    if "mobile" in changed:
        update_fields += ["mobile_index", "mobile_last4_index"]
    user.save(update_fields=update_fields)
    # Sensitive values are not copied into the ledger, only the fact that they changed.
    audit_changes = {
        name: ["***", "***"] if name in ("mobile", "email") else [before[name], value]
        for name, value in changed.items()
    }
    _audit(action=AuditAction.UPDATE, actor=actor, obj=user, changes=audit_changes, message="profile")
    return user


@transaction.atomic
def user_password_changed(*, user: User, actor=None, reset: bool = False) -> None:
    """Record that a password was changed (the form has already saved it)."""
    _audit(
        action=AuditAction.UPDATE,
        actor=actor,
        obj=user,
        message="password reset by e-mail link" if reset else "password changed",
    )


# Teams -------------------------------------------------------------------------------------------


@transaction.atomic
def team_create(*, name: str, leader: User | None = None, actor=None, description: str = "") -> Team:
    name = (name or "").strip()
    if Team.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": _("A team with that name already exists.")}, code="unique")
    team = Team(name=name, leader=leader, description=description)
    team.full_clean()
    team.save()
    if leader is not None and leader.team_id != team.pk:
        leader.team = team
        leader.save(update_fields=["team"])
    _audit(
        action=AuditAction.CREATE,
        actor=actor,
        obj=team,
        changes={"name": [None, name], "leader": [None, leader.pk if leader else None]},
        message="team created",
    )
    return team


@transaction.atomic
def team_add_member(*, team: Team, user: User, actor=None, set_manager: bool = True) -> User:
    """Put ``user`` in ``team``; by default their manager becomes the team leader."""
    before = user.team_id
    user.team = team
    update_fields = ["team"]
    if set_manager and team.leader_id and team.leader_id != user.pk:
        user.manager_id = team.leader_id
        update_fields.append("manager")
    user.save(update_fields=update_fields)
    if before != team.pk:
        _audit(
            action=AuditAction.UPDATE,
            actor=actor,
            obj=user,
            changes={"team": [before, team.pk]},
            message="added to team",
        )
    return user


# Two-factor authentication -------------------------------------------------------------------------


def totp_device_for_setup(*, user: User) -> TOTPDevice:
    """The user's unconfirmed authenticator device, created on first use (a fresh secret)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def totp_device_confirmed(*, user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


@transaction.atomic
def two_factor_enable(*, user: User, device: TOTPDevice, actor=None) -> list[str]:
    """Confirm ``device`` (its code was verified by the caller) and return fresh backup codes."""
    if device.user_id != user.pk:
        raise ValidationError(_("This device belongs to another user."))
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    codes = _new_backup_codes(user)
    _audit(action=AuditAction.UPDATE, actor=actor, obj=user, message="two-factor authentication on")
    return codes


@transaction.atomic
def backup_codes_regenerate(*, user: User, actor=None) -> list[str]:
    """Replace the user's backup codes with ten new ones (each one works once)."""
    codes = _new_backup_codes(user)
    _audit(action=AuditAction.UPDATE, actor=actor, obj=user, message="two-factor backup codes renewed")
    return codes


def _new_backup_codes(user: User) -> list[str]:
    device, _created = StaticDevice.objects.get_or_create(
        user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _i in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def two_factor_can_disable(user: User) -> bool:
    from .twofactor import is_administrator

    return not (settings.REQUIRE_2FA_FOR_ADMINS and is_administrator(user))


@transaction.atomic
def two_factor_disable(*, user: User, actor=None) -> None:
    """Remove the user's authenticator and backup codes (not allowed for required administrators)."""
    if not two_factor_can_disable(user):
        raise ValidationError(
            _("Administrators must keep two-factor authentication switched on."), code="2fa_required"
        )
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    _audit(action=AuditAction.UPDATE, actor=actor, obj=user, message="two-factor authentication off")
