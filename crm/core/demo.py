"""The platform's part of ``manage.py seed_demo``: teams and one demo login per role.

Business apps add their own steps to ``crm.core.registry.registry`` (``DemoStep``); this module
only creates what the platform owns (teams, users, roles, a couple of welcome notifications).
Everything here is idempotent: running it twice creates nothing new and, unless asked to,
changes no password a person may have set since.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction

from crm.accounts import roles
from crm.accounts.models import Team, User

DEFAULT_DEMO_PASSWORD = "Demo-2026-crm"  # noqa: S105 (public demo password, documented)
EXTRA_REPS_PER_SCALE = 10
MAX_EXTRA_REPS = 300
EXTRA_REP_PREFIX = "rep"

TEAMS = [
    ("华东一组", "华东地区销售一组 / East China sales team 1"),
    ("华南一组", "华南地区销售一组 / South China sales team 1"),
    ("客服组", "售后客服组 / After-sales service team"),
]


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    role: str
    mobile: str
    team: str | None = None
    manager: str | None = None
    leads: tuple[str, ...] = ()
    language: str = "zh-hans"
    superuser: bool = False


DEMO_USERS = [
    DemoUser("admin", "王建国", roles.ADMINISTRATOR, "13800000001", superuser=True),
    DemoUser(
        "salesmgr",
        "李明",
        roles.SALES_MANAGER,
        "13800000002",
        team="华东一组",
        leads=("华东一组", "华南一组"),
    ),
    DemoUser("sales1", "张伟", roles.SALES_REP, "13800000003", team="华东一组", manager="salesmgr"),
    DemoUser("sales2", "刘芳", roles.SALES_REP, "13800000004", team="华南一组", manager="salesmgr"),
    DemoUser("marketing", "陈静", roles.MARKETING, "13800000005"),
    DemoUser("servicemgr", "赵敏", roles.SERVICE_MANAGER, "13800000006", team="客服组", leads=("客服组",)),
    DemoUser("agent1", "孙丽", roles.SERVICE_AGENT, "13800000007", team="客服组", manager="servicemgr"),
    DemoUser("analyst", "Emma Zhou", roles.ANALYST, "13800000008", language="en"),
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    display_name: str
    role: str
    created: bool
    password_set: bool


@dataclass
class PlatformDemoResult:
    logins: list[DemoLogin]
    teams_created: int
    extra_reps_created: int
    passwords_reset: int


def extra_rep_count(scale: int) -> int:
    """How many bulk sales reps ``--scale`` adds: none at 1, ten per unit above, at most 300."""
    return max(0, min((scale - 1) * EXTRA_REPS_PER_SCALE, MAX_EXTRA_REPS))


def _role_groups() -> dict[str, Group]:
    groups = {g.name: g for g in Group.objects.filter(name__in=roles.ROLES)}
    if len(groups) < len(roles.ROLES):
        roles.sync_roles()
        groups = {g.name: g for g in Group.objects.filter(name__in=roles.ROLES)}
    return groups


@transaction.atomic
def seed_platform(
    *, scale: int = 1, password: str = DEFAULT_DEMO_PASSWORD, reset_passwords: bool = False, stdout=None
) -> PlatformDemoResult:
    """Create (or complete) the demo teams and users. Safe to run any number of times."""
    groups = _role_groups()
    teams: dict[str, Team] = {}
    teams_created = 0
    for name, description in TEAMS:
        teams[name], created = Team.objects.get_or_create(name=name, defaults={"description": description})
        teams_created += created

    password_hash = make_password(password)
    users: dict[str, User] = {}
    logins: list[DemoLogin] = []
    resets = 0
    created_users: list[User] = []
    for spec in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=spec.username,
            defaults={
                "display_name": spec.display_name,
                "email": f"{spec.username}@example.com",
                "mobile": spec.mobile,
                "language": spec.language,
                "time_zone": "Asia/Shanghai",
                "team": teams.get(spec.team) if spec.team else None,
                "is_staff": spec.superuser,
                "is_superuser": spec.superuser,
                "password": password_hash,
            },
        )
        if created:
            created_users.append(user)
        elif reset_passwords:
            user.password = password_hash
            user.is_active = True
            user.save(update_fields=["password", "is_active"])
            resets += 1
        user.groups.add(groups[spec.role])
        users[spec.username] = user
        logins.append(
            DemoLogin(spec.username, spec.display_name, spec.role, created, created or reset_passwords)
        )

    # Relations that need other users to exist: managers and team leaders (only filled when empty,
    # so an administrator's later changes survive a re-run).
    for spec in DEMO_USERS:
        user = users[spec.username]
        if spec.manager and user.manager_id is None:
            user.manager = users[spec.manager]
            user.save(update_fields=["manager"])
        for team_name in spec.leads:
            team = teams[team_name]
            if team.leader_id is None:
                team.leader = user
                team.save(update_fields=["leader"])

    extra_created = _seed_extra_reps(
        count=extra_rep_count(scale),
        password_hash=password_hash,
        reset_passwords=reset_passwords,
        teams=[teams["华东一组"], teams["华南一组"]],
        manager=users["salesmgr"],
        group=groups[roles.SALES_REP],
    )
    _welcome(created_users)
    if stdout is not None:
        stdout.write(
            f"platform: {len(created_users)} users and {teams_created} teams created, "
            f"{extra_created} extra sales reps"
        )
    return PlatformDemoResult(
        logins=logins, teams_created=teams_created, extra_reps_created=extra_created, passwords_reset=resets
    )


def _seed_extra_reps(*, count, password_hash, reset_passwords, teams, manager, group) -> int:
    if count <= 0:
        return 0
    usernames = [f"{EXTRA_REP_PREFIX}{i:04d}" for i in range(1, count + 1)]
    existing = set(User.objects.filter(username__in=usernames).values_list("username", flat=True))
    if reset_passwords and existing:
        User.objects.filter(username__in=existing).update(password=password_hash)
    new = [
        User(
            username=username,
            display_name=f"销售代表{username[len(EXTRA_REP_PREFIX) :]}",
            email=f"{username}@example.com",
            mobile=f"139{int(username[len(EXTRA_REP_PREFIX) :]):08d}",
            language="zh-hans",
            time_zone="Asia/Shanghai",
            team=teams[i % len(teams)],
            manager=manager,
            password=password_hash,
        )
        for i, username in enumerate(usernames)
        if username not in existing
    ]
    created = User.objects.bulk_create(new, batch_size=500)
    if created and created[0].pk is None:  # backends that do not return ids (MySQL)
        created = list(User.objects.filter(username__in=[u.username for u in new]))
    membership = User.groups.through
    membership.objects.bulk_create(
        [membership(user_id=u.pk, group_id=group.pk) for u in created], ignore_conflicts=True
    )
    return len(created)


def _welcome(users: list[User]) -> None:
    """Welcome notifications for new demo users, when the notifications service exists."""
    if not users:
        return
    try:
        from crm.core.notifications.services import notify
    except ImportError:
        return
    from django.urls import NoReverseMatch, reverse
    from django.utils.translation import gettext_lazy as _

    try:
        profile_url = reverse("accounts:profile")
    except NoReverseMatch:
        profile_url = ""
    notify(
        recipients=users,
        title=_("Welcome to the CRM"),
        body=_("This is a demo account. Explore the menu to see what your role can do."),
        url="/",
        category="welcome",
    )
    notify(
        recipients=users,
        title=_("Choose your language and time zone"),
        body=_("Your profile page lets you switch between Chinese and English and set your time zone."),
        url=profile_url,
        category="welcome",
    )
