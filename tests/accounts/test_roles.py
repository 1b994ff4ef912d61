"""Roles are groups with permission sets, created by migration and kept in sync (R7.2.4)."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from crm.accounts import roles

pytestmark = pytest.mark.django_db


def perms(role):
    return set(Group.objects.get(name=role).permissions.values_list("content_type__app_label", "codename"))


def test_every_role_exists():
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ROLES)


def test_administrator_holds_every_permission():
    assert Group.objects.get(name=roles.ADMINISTRATOR).permissions.count() == Permission.objects.count()


def test_scopes_and_sensitive_data_per_role():
    assert ("accounts", "view_team_records") in perms(roles.SALES_MANAGER)
    assert ("accounts", "view_sensitive_data") in perms(roles.SALES_MANAGER)
    assert ("accounts", "view_sensitive_data") not in perms(roles.SALES_REP)
    assert ("accounts", "view_all_records") not in perms(roles.SALES_REP)
    assert ("accounts", "view_all_records") in perms(roles.ANALYST)
    assert ("accounts", "view_sensitive_data") not in perms(roles.ANALYST)


def test_sync_restores_a_tampered_role(capsys):
    group = Group.objects.get(name=roles.SALES_REP)
    group.permissions.add(Permission.objects.get(codename="view_sensitive_data"))
    Group.objects.filter(name=roles.ANALYST).delete()
    call_command("sync_roles")
    assert ("accounts", "view_sensitive_data") not in perms(roles.SALES_REP)
    assert Group.objects.filter(name=roles.ANALYST).exists()
    assert "Analyst" in capsys.readouterr().out


def test_grant_adds_permissions_and_rejects_unknown():
    granted_by_apps = set(roles._granted[roles.SALES_REP])
    roles.grant(roles.SALES_REP, ["accounts.view_team"])
    try:
        roles.sync_roles()
        assert ("accounts", "view_team") in perms(roles.SALES_REP)
        roles.grant(roles.SALES_REP, ["accounts.no_such_perm"])
        with pytest.raises(ValueError, match="no_such_perm"):
            roles.sync_roles()
    finally:
        # Restore what the apps granted: later tests in this process sync roles again.
        roles._granted[roles.SALES_REP] = granted_by_apps
        roles.sync_roles()


def test_unknown_role_rejected():
    with pytest.raises(ValueError, match="Unknown role"):
        roles.grant("Wizard", ["accounts.view_user"])


def test_role_labels_translate():
    from django.utils import translation

    with translation.override("en"):
        assert str(roles.role_label(roles.SALES_REP)) == "Sales rep"
    assert roles.role_label("Custom group") == "Custom group"


def test_administrator_role_grants_admin_access_however_given(make_user):
    user = make_user(roles.SALES_REP)
    assert not user.is_staff
    user.groups.add(Group.objects.get(name=roles.ADMINISTRATOR))
    user.refresh_from_db()
    assert user.is_staff
    user.groups.remove(Group.objects.get(name=roles.ADMINISTRATOR))
    user.refresh_from_db()
    assert not user.is_staff


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("abcdefGHIJ", False),
        ("1234567890", False),
        ("!!!!????##", False),
        ("Crm-shop", True),
        ("shop2026x", True),
    ],
)
def test_password_must_mix_letters_with_digits_or_symbols(password, ok):
    from django.core.exceptions import ValidationError

    from crm.accounts.validators import CharacterClassValidator

    if ok:
        CharacterClassValidator().validate(password)
    else:
        with pytest.raises(ValidationError) as excinfo:
            CharacterClassValidator().validate(password)
        assert excinfo.value.code == "password_too_simple"


def test_admin_user_form_rejects_invalid_mobile(admin_user, client):
    from crm.accounts.models import User

    client.force_login(admin_user)
    target = User.objects.create_user(username="target", password="x-Password-1")
    url = f"/admin/accounts/user/{target.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    data = {
        "username": "target",
        "mobile": "12345",
        "language": "zh-hans",
        "time_zone": "Asia/Shanghai",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    response = client.post(url, data)
    assert response.status_code == 200  # re-rendered with the error
    assert response.context["adminform"].form.errors["mobile"]
    target.refresh_from_db()
    assert target.mobile == ""
