"""The Django admin works for every registered model, in both languages, for Administrators (R5.6.1)."""

import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db

MODELS = sorted(admin.site._registry, key=lambda m: m._meta.label)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("model", MODELS, ids=[m._meta.label for m in MODELS])
def test_changelist_and_add_page_for_administrator(model, language, make_user, client_for):
    admin_user = make_user("Administrator", language=language)
    client = client_for(admin_user)
    opts = model._meta
    changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    assert f'lang="{language}"' in changelist.content.decode()
    model_admin = admin.site._registry[model]
    if model_admin.has_add_permission(changelist.wsgi_request):
        add = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        assert add.status_code == 200


def test_admin_refuses_non_staff(make_user, client_for):
    client = client_for(make_user("Sales manager"))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_admin_index_lists_platform_apps(admin_user, client_for):
    body = client_for(admin_user).get(reverse("admin:index")).content.decode()
    for url in (
        "/admin/accounts/user/",
        "/admin/audit/auditentry/",
        "/admin/jobs/job/",
        "/admin/regions/region/",
    ):
        assert url in body
