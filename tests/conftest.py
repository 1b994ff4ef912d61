import pytest

from crm.accounts import roles

from .factories import DEFAULT_PASSWORD, TeamFactory, UserFactory


@pytest.fixture
def password():
    return DEFAULT_PASSWORD


@pytest.fixture
def make_user(db):
    """make_user(role="Sales rep", team=..., **fields) -> a saved user in that role."""

    def _make(role=None, **kwargs):
        return UserFactory(role=role, **kwargs)

    return _make


@pytest.fixture
def team(db):
    return TeamFactory(name="华东一组")


@pytest.fixture
def admin_user(make_user):
    return make_user(roles.ADMINISTRATOR, username="admin1")


@pytest.fixture
def rep(make_user, team):
    return make_user(roles.SALES_REP, username="rep1", team=team)


@pytest.fixture
def manager(make_user, team):
    user = make_user(roles.SALES_MANAGER, username="manager1", team=team)
    team.leader = user
    team.save(update_fields=["leader"])
    return user


@pytest.fixture
def client_for(client):
    """client_for(user) -> a test client logged in as that user (no 2FA pending)."""

    def _login(user):
        client.force_login(user)
        return client

    return _login
