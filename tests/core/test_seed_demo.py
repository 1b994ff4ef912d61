"""seed_demo: demo teams and logins per role, idempotent, app steps run in order (R6.1.5, R5.6.1)."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from crm.accounts import roles
from crm.accounts.models import Team, User
from crm.core import demo
from crm.core.fields import sensitive_q
from crm.core.registry import DemoStep, registry


def authenticate(*, username, password):
    """The user if they may sign in with this password (active, password matches), else None."""
    user = User.objects.filter(username=username, is_active=True).first()
    return user if user and user.check_password(password) else None


def seed(*args):
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def isolated_steps(monkeypatch):
    """Run seed_demo with only the steps a test registers (apps' own steps are tested by them)."""
    monkeypatch.setattr(registry, "demo_steps", {})
    return registry


@pytest.mark.django_db
def test_creates_one_login_per_role_with_teams_and_managers(isolated_steps):
    """R6.1.5: every role has a demo login that can sign in with the printed password."""
    out = seed()
    for spec in demo.DEMO_USERS:
        assert spec.username in out
        user = User.objects.get(username=spec.username)
        assert user.role_names == [spec.role]
        assert user.display_name == spec.display_name
        assert authenticate(username=spec.username, password=demo.DEFAULT_DEMO_PASSWORD) == user
    assert {r for u in User.objects.all() for r in u.role_names} == set(roles.ROLES)
    assert demo.DEFAULT_DEMO_PASSWORD in out
    admin = User.objects.get(username="admin")
    assert admin.is_staff
    assert admin.is_superuser
    assert not User.objects.filter(is_superuser=True).exclude(username="admin").exists()
    sales1 = User.objects.get(username="sales1")
    assert sales1.team.name == "华东一组"
    assert sales1.manager.username == "salesmgr"
    assert Team.objects.get(name="华南一组").leader.username == "salesmgr"
    assert Team.objects.get(name="客服组").leader.username == "servicemgr"
    assert set(Team.objects.values_list("name", flat=True)) == {"华东一组", "华南一组", "客服组"}


@pytest.mark.django_db
def test_mobiles_encrypted_and_languages(isolated_steps):
    """R5.6.1 / R7.1.1: mobiles are findable through the blind index; one user uses English."""
    seed()
    assert User.objects.filter(sensitive_q(User, "mobile", "13800000003")).get().username == "sales1"
    assert set(User.objects.values_list("language", flat=True)) == {"zh-hans", "en"}
    assert User.objects.get(username="analyst").language == "en"


@pytest.mark.django_db
def test_idempotent_and_keeps_changed_passwords(isolated_steps):
    seed()
    counts = (User.objects.count(), Team.objects.count())
    user = User.objects.get(username="sales1")
    user.set_password("Changed-by-user-99")
    user.save()
    out = seed()
    assert (User.objects.count(), Team.objects.count()) == counts
    assert "(unchanged)" in out
    assert "--reset-passwords" in out
    assert authenticate(username="sales1", password="Changed-by-user-99") is not None
    assert User.objects.get(username="sales1").groups.count() == 1


@pytest.mark.django_db
def test_reset_passwords_and_custom_password(isolated_steps):
    seed()
    User.objects.filter(username="agent1").update(is_active=False)
    seed("--reset-passwords", "--password", "Another-Demo-77")
    assert authenticate(username="agent1", password="Another-Demo-77") is not None
    assert authenticate(username="admin", password=demo.DEFAULT_DEMO_PASSWORD) is None


@pytest.mark.django_db
def test_weak_password_and_bad_scale_rejected(isolated_steps):
    with pytest.raises(CommandError, match="too weak"):
        seed("--password", "123")
    with pytest.raises(CommandError, match="--scale"):
        seed("--scale", "0")
    assert not User.objects.exists()


@pytest.mark.django_db
def test_scale_adds_bulk_reps_once(isolated_steps):
    out = seed("--scale", "3")
    assert "20 bulk sales reps" in out
    reps = User.objects.filter(username__startswith=demo.EXTRA_REP_PREFIX)
    assert reps.count() == demo.extra_rep_count(3) == 20
    rep = reps.get(username="rep0007")
    assert rep.role_names == [roles.SALES_REP]
    assert rep.manager.username == "salesmgr"
    assert rep.mobile == "13900000007"
    assert authenticate(username="rep0007", password=demo.DEFAULT_DEMO_PASSWORD) == rep
    seed("--scale", "3")
    assert reps.count() == 20
    assert demo.extra_rep_count(1) == 0
    assert demo.extra_rep_count(10_000) == demo.MAX_EXTRA_REPS


@pytest.mark.django_db
def test_registered_steps_run_in_order_with_scale(isolated_steps):
    calls = []
    isolated_steps.add_demo_step(DemoStep("b", lambda *, scale, stdout: calls.append(("b", scale)), order=20))
    isolated_steps.add_demo_step(DemoStep("a", lambda *, scale, stdout: calls.append(("a", scale)), order=10))
    seed("--scale", "2")
    assert calls == [("a", 2), ("b", 2)]


@pytest.mark.django_db
def test_full_seed_with_every_registered_step_is_idempotent():
    """All apps' registered steps together: a second run creates no new users."""
    seed()
    users = User.objects.count()
    seed()
    assert User.objects.count() == users


@pytest.mark.django_db
def test_welcome_notifications_only_for_new_users(isolated_steps):
    notifications = pytest.importorskip("crm.core.notifications.models")
    seed()
    sent = notifications.Notification.objects.filter(category="welcome")
    assert sent.count() == 2 * len(demo.DEMO_USERS)
    assert sent.filter(recipient__username="sales1").count() == 2
    seed()
    assert sent.count() == 2 * len(demo.DEMO_USERS)
