import pytest


@pytest.mark.django_db
def test_roles_exist_with_users(make_user):
    user = make_user("Sales rep")
    assert user.role_names == ["Sales rep"]
    assert not user.has_perm("accounts.view_sensitive_data")
