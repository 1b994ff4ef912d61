"""Account services: users, roles, profile, teams; contact validators (R5.6.1, R7.1.3)."""

import pytest
from django.core.exceptions import ValidationError

from crm.accounts import roles, services
from crm.accounts.models import User
from crm.core.audit.models import AuditAction, AuditEntry
from crm.core.validators import validate_email, validate_mobile, validate_phone

pytestmark = pytest.mark.django_db


def test_user_create_with_role_and_audit(admin_user):
    """R7.1.3: users are created through one service that checks the password policy."""
    user = services.user_create(
        username="newrep",
        password="Strong-Pass-99",
        roles=[roles.SALES_REP],
        actor=admin_user,
        email="newrep@example.com",
        mobile="+86 138-1234-5678",
    )
    user.refresh_from_db()
    assert user.check_password("Strong-Pass-99")
    assert user.role_names == [roles.SALES_REP]
    assert user.is_staff is False
    assert user.mobile == "13812345678"
    entry = AuditEntry.objects.filter(action=AuditAction.CREATE, object_id=str(user.pk)).get()
    assert entry.actor == admin_user
    assert "Strong-Pass-99" not in str(entry.changes)


def test_user_create_administrator_gets_staff(admin_user):
    user = services.user_create(username="boss", password="Strong-Pass-99", roles=[roles.ADMINISTRATOR])
    assert user.is_staff is True


@pytest.mark.parametrize("password", ["short1A", "password123", "1234567890123", "onlylowercaseletters"])
def test_user_create_enforces_password_policy(password):
    with pytest.raises(ValidationError) as exc:
        services.user_create(username="weak", password=password, roles=[roles.SALES_REP])
    assert "password" in exc.value.error_dict
    assert not User.objects.filter(username="weak").exists()


def test_user_create_without_password_is_unusable():
    user = services.user_create(username="invited", password=None)
    assert not user.has_usable_password()


def test_user_create_rejects_unknown_role_and_duplicate_name(rep):
    with pytest.raises(ValidationError) as exc:
        services.user_create(username="x1", password="Strong-Pass-99", roles=["Pirate"])
    assert "roles" in exc.value.error_dict
    with pytest.raises(ValidationError) as exc:
        services.user_create(username="REP1", password="Strong-Pass-99")
    assert "username" in exc.value.error_dict


def test_user_set_roles_follows_administrator_staff_flag(rep, admin_user):
    services.user_set_roles(user=rep, roles=[roles.ADMINISTRATOR, roles.SALES_REP], actor=admin_user)
    rep.refresh_from_db()
    assert sorted(rep.role_names) == sorted([roles.ADMINISTRATOR, roles.SALES_REP])
    assert rep.is_staff is True
    assert AuditEntry.objects.filter(action=AuditAction.PERMISSION_CHANGE, object_id=str(rep.pk)).exists()
    services.user_set_roles(user=rep, roles=[roles.SALES_REP], actor=admin_user)
    rep.refresh_from_db()
    assert rep.role_names == [roles.SALES_REP]
    assert rep.is_staff is False


def test_user_set_roles_rejects_unknown(rep):
    with pytest.raises(ValidationError):
        services.user_set_roles(user=rep, roles=["Pirate"])
    assert rep.role_names == [roles.SALES_REP]


def test_user_update_profile_saves_and_normalises(rep):
    """R5.6.1: language and time zone are stored on the user."""
    services.user_update_profile(
        user=rep, actor=rep, mobile="0086 139 1234 5678", language="en", time_zone="Europe/London"
    )
    rep.refresh_from_db()
    assert (rep.mobile, rep.language, rep.time_zone) == ("13912345678", "en", "Europe/London")
    entry = AuditEntry.objects.filter(action=AuditAction.UPDATE, object_id=str(rep.pk)).latest("seq")
    assert "13912345678" not in str(entry.changes)
    assert entry.changes["language"] == ["zh-hans", "en"]
    assert entry.changes["mobile"] == ["***", "***"]


def test_user_update_profile_no_change_writes_nothing(rep):
    before = AuditEntry.objects.count()
    services.user_update_profile(user=rep, actor=rep, language=rep.language)
    assert AuditEntry.objects.count() == before


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"mobile": "12345"}, "mobile"),
        ({"email": "nope"}, "email"),
        ({"language": "fr"}, "language"),
    ],
)
def test_user_update_profile_validates(rep, fields, bad):
    with pytest.raises(ValidationError) as exc:
        services.user_update_profile(user=rep, actor=rep, **fields)
    assert bad in exc.value.error_dict
    rep.refresh_from_db()
    assert rep.language == "zh-hans"


def test_user_update_profile_rejects_bad_time_zone_and_unknown_field(rep):
    with pytest.raises(ValidationError):
        services.user_update_profile(user=rep, actor=rep, time_zone="Nowhere/City")
    with pytest.raises(TypeError):
        services.user_update_profile(user=rep, actor=rep, is_superuser=True)
    rep.refresh_from_db()
    assert rep.time_zone == "Asia/Shanghai"
    assert rep.is_superuser is False


def test_team_create_and_add_member(admin_user, make_user, rep):
    leader = make_user(roles.SALES_MANAGER, username="lead")
    team = services.team_create(name="华南二组", leader=leader, actor=admin_user)
    leader.refresh_from_db()
    assert leader.team == team
    services.team_add_member(team=team, user=rep, actor=admin_user)
    rep.refresh_from_db()
    assert rep.team == team
    assert rep.manager == leader
    with pytest.raises(ValidationError):
        services.team_create(name="华南二组", leader=None, actor=admin_user)


def test_team_add_member_leader_is_not_own_manager(admin_user, make_user):
    leader = make_user(roles.SALES_MANAGER, username="lead2")
    team = services.team_create(name="Team L", leader=leader, actor=admin_user)
    services.team_add_member(team=team, user=leader, actor=admin_user)
    leader.refresh_from_db()
    assert leader.manager is None


# Validators ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["13812345678", "19912345678", "138 1234 5678", "+86 138 1234 5678", "+85291234567", "+442071234567"],
)
def test_validate_mobile_accepts(value):
    validate_mobile(value)


@pytest.mark.parametrize(
    "value", ["12812345678", "1381234567", "138123456789", "+12345", "+1234567890123456", "abc"]
)
def test_validate_mobile_rejects(value):
    with pytest.raises(ValidationError) as exc:
        validate_mobile(value)
    assert exc.value.code == "invalid_mobile"


def test_validate_phone_accepts_landline_and_rejects_junk():
    validate_phone("021-12345678")
    validate_phone("0755 1234567")
    validate_phone("13812345678")
    with pytest.raises(ValidationError):
        validate_phone("21-12345678")


def test_validate_email():
    validate_email("a.b@example.cn")
    validate_email("")
    with pytest.raises(ValidationError):
        validate_email("a@b")
