"""Visibility scoping: own / team / all by role; out-of-scope records are 404 (R7.2.4)."""

import pytest
from django.http import Http404

from crm.accounts import roles
from crm.core.visibility import Scope, get_visible_or_404, is_visible, scope_for, visible_to
from tests.factories import TeamFactory
from tests.testapp.models import Record

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user):
    east, south = TeamFactory(name="East"), TeamFactory(name="South")
    lead = make_user(roles.SALES_MANAGER, username="lead", team=east)
    east.leader = lead
    east.save()
    rep_a = make_user(roles.SALES_REP, username="rep_a", team=east, manager=lead)
    rep_b = make_user(roles.SALES_REP, username="rep_b", team=east)
    rep_s = make_user(roles.SALES_REP, username="rep_s", team=south)
    records = {
        "a": Record.objects.create(name="a", owner=rep_a, team=east),
        "b": Record.objects.create(name="b", owner=rep_b, team=east),
        "s": Record.objects.create(name="s", owner=rep_s, team=south),
        "s_in_east": Record.objects.create(name="s_in_east", owner=rep_s, team=east),
        "pool": Record.objects.create(name="pool", owner=None, team=None),
    }
    return {
        "lead": lead,
        "rep_a": rep_a,
        "rep_b": rep_b,
        "rep_s": rep_s,
        "east": east,
        "south": south,
        **records,
    }


def names(user):
    return set(visible_to(user, Record.objects.all()).values_list("name", flat=True))


def test_scopes_by_role(world, make_user, admin_user):
    assert scope_for(world["rep_a"]) is Scope.OWN
    assert scope_for(world["lead"]) is Scope.TEAM
    assert scope_for(make_user(roles.ANALYST)) is Scope.ALL
    assert scope_for(admin_user) is Scope.ALL
    assert scope_for(None) is Scope.NONE


def test_rep_sees_only_own(world):
    assert names(world["rep_a"]) == {"a"}
    assert names(world["rep_s"]) == {"s", "s_in_east"}


def test_team_lead_sees_team_records_but_not_another_teams(world):
    assert names(world["lead"]) == {"a", "b", "s_in_east"}


def test_team_member_with_team_scope_without_leading(world, make_user):
    member_manager = make_user(roles.SALES_MANAGER, username="mm", team=world["south"])
    # s_in_east is filed under East but owned by a South rep: the owner's team counts too.
    assert names(member_manager) == {"s", "s_in_east"}


def test_direct_reports_visible_to_manager_outside_team(world, make_user):
    boss = make_user(roles.SALES_MANAGER, username="boss")
    world["rep_s"].manager = boss
    world["rep_s"].save()
    assert names(boss) == {"s", "s_in_east"}


def test_all_scope_sees_everything_including_unowned(world, make_user, admin_user):
    everything = {"a", "b", "s", "s_in_east", "pool"}
    assert names(make_user(roles.ANALYST)) == everything
    assert names(admin_user) == everything


def test_inactive_and_anonymous_see_nothing(world):
    from django.contrib.auth.models import AnonymousUser

    world["rep_a"].is_active = False
    world["rep_a"].save()
    assert names(world["rep_a"]) == set()
    assert names(AnonymousUser()) == set()


def test_role_without_scope_sees_only_own(make_user):
    outsider = make_user(username="nobody")
    Record.objects.create(name="mine", owner=outsider)
    Record.objects.create(name="theirs", owner=make_user(username="x"))
    assert names(outsider) == {"mine"}


def test_get_visible_or_404_refuses_other_teams_record(world):
    assert get_visible_or_404(world["lead"], Record.objects.all(), pk=world["a"].pk) == world["a"]
    with pytest.raises(Http404):
        get_visible_or_404(world["lead"], Record.objects.all(), pk=world["s"].pk)
    with pytest.raises(Http404):
        get_visible_or_404(world["rep_a"], Record.objects.all(), pk=world["b"].pk)
    with pytest.raises(Http404):
        get_visible_or_404(world["rep_a"], Record.objects.all(), pk=999999)
    with pytest.raises(Http404):
        get_visible_or_404(world["rep_a"], Record.objects.all(), pk="not-a-number")


def test_is_visible(world):
    assert is_visible(world["rep_a"], world["a"])
    assert not is_visible(world["rep_a"], world["s"])


def test_counts_do_not_leak(world):
    assert visible_to(world["rep_b"], Record.objects.all()).count() == 1


def test_scope_query_count_is_constant(world, django_assert_num_queries):
    lead = world["lead"]
    lead = type(lead).objects.get(pk=lead.pk)
    # permissions (1 user perms + 1 group perms) + teams led (1) + the list itself (1)
    with django_assert_num_queries(4):
        list(visible_to(lead, Record.objects.all()))
    with django_assert_num_queries(1):
        list(visible_to(lead, Record.objects.all()))
