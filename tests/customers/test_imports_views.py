"""Customer import pages: upload, map, preview, run, templates; permissions and ownership (R5.1.3, R7.1.1)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from crm.accounts import roles
from crm.core.jobs.models import Job
from customers.models import Customer, ImportTemplate
from customers.services import imports
from tests.customers.files.generate import write_xlsx

FILES = Path(__file__).resolve().parent / "files"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def importer(make_user, team):
    return make_user(roles.SALES_MANAGER, username="importer", team=team, language="en")


def upload_file(client, name, **data):
    with (FILES / name).open("rb") as handle:
        return client.post(reverse("customers:import-start"), {"file": handle, "policy": "skip", **data})


def token_from(response):
    return response.url.rstrip("/").split("/")[-2]


def session_for(user, name="good.xlsx"):
    return imports.import_session_create(
        actor=user, uploaded=SimpleUploadedFile(name, (FILES / name).read_bytes())
    )


def test_full_flow_upload_map_preview_run(client_for, importer):
    """R5.1.3: upload -> auto-mapped Chinese headers -> preview of the rows -> import -> job page."""
    client = client_for(importer)
    response = client.get(reverse("customers:import-start"))
    assert response.status_code == 200
    assert "Import customers" in response.text
    response = upload_file(client, "good.xlsx")
    assert response.status_code == 302
    token = token_from(response)
    assert response.url == reverse("customers:import-map", args=[token])
    response = client.get(response.url)
    assert response.status_code == 200
    html = response.text
    assert "姓名" in html
    assert '<option value="name" selected>' in html
    assert '<option value="phone" selected>' in html
    session = imports.import_session_get(user=importer, token=token)
    data = {f"col_{i}": field for i, field in enumerate(session.mapping)}
    response = client.post(reverse("customers:import-map", args=[token]), {**data, "policy": "update"})
    assert response.status_code == 302
    assert response.url == reverse("customers:import-preview", args=[token])
    response = client.get(response.url)
    assert response.status_code == 200
    assert "Valid rows are imported; rows with errors are skipped and listed below." in response.text
    assert "张三" in response.text
    assert "No errors found." in response.text
    assert not Customer.objects.exists()  # the preview wrote nothing
    response = client.post(reverse("customers:import-run", args=[token]))
    job = Job.objects.get(kind="customers_import")
    assert response.status_code == 302
    assert response.url == job.get_absolute_url()
    assert job.status == Job.Status.SUCCEEDED
    assert job.message.startswith("Created 3,")
    assert Customer.objects.filter(owner=importer).count() == 3
    # The upload is gone: the token no longer works.
    assert client.get(reverse("customers:import-preview", args=[token])).status_code == 404


def test_hostile_upload_shows_the_message(client_for, importer):
    """R5.1.3 bad input: the refusal is shown on the form, not a 500."""
    client = client_for(importer)
    for name, text in (
        ("password.xlsx", "This file is password-protected: remove the password and upload it again."),
        ("not_excel.xlsx", "This file is not an Excel .xlsx or .csv file."),
        ("wide.xlsx", "more than 200 columns"),
        ("empty.xlsx", "The file is empty"),
    ):
        response = upload_file(client, name)
        assert response.status_code == 200, name
        assert text in response.text, name


def test_preview_lists_bad_rows_and_offers_the_report(client_for, importer):
    """R5.1.3: errors with row numbers and reasons in the UI, and as a downloadable .xlsx."""
    client = client_for(importer)
    token = token_from(upload_file(client, "bad_rows.xlsx"))
    response = client.get(reverse("customers:import-preview", args=[token]))
    assert response.status_code == 200
    assert "Row 3" in response.text
    assert "Row 9" in response.text
    assert "Impossible birthday" in response.text
    response = client.get(reverse("customers:import-errors", args=[token]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == [3, 4, 5, 6, 7, 8, 9]


def test_mapping_without_a_name_column_is_refused(client_for, importer):
    """R5.1.3: the name must be mapped."""
    client = client_for(importer)
    token = token_from(upload_file(client, "good.xlsx"))
    session = imports.import_session_get(user=importer, token=token)
    data = {f"col_{i}": ("" if f == "name" else f) for i, f in enumerate(session.mapping)}
    response = client.post(reverse("customers:import-map", args=[token]), {**data, "policy": "skip"})
    assert response.status_code == 200
    assert "Choose the column that holds the customer&#x27;s name." in response.text


def test_save_template_then_reuse_and_delete(client_for, importer, tmp_path):
    """R5.1.3: save a mapping as a named template, pick it at the next upload, delete it."""
    client = client_for(importer)
    path = write_xlsx(tmp_path / "own.xlsx", ["客户", "联系方式"], [["甲", "13800138000"]])
    with path.open("rb") as handle:
        response = client.post(reverse("customers:import-start"), {"file": handle, "policy": "skip"})
    token = token_from(response)
    response = client.post(
        reverse("customers:import-map", args=[token]),
        {"col_0": "name", "col_1": "phone", "policy": "skip", "save_as": "我的模板"},
    )
    assert response.status_code == 302
    template = ImportTemplate.objects.get(name="我的模板")
    assert template.mapping == {"客户": "name", "联系方式": "phone"}
    with path.open("rb") as handle:
        response = client.post(
            reverse("customers:import-start"), {"file": handle, "policy": "skip", "template": template.pk}
        )
    session = imports.import_session_get(user=importer, token=token_from(response))
    assert session.mapping == ["name", "phone"]
    response = client.get(reverse("customers:import-template-list"))
    assert response.status_code == 200
    assert "我的模板" in response.text
    response = client.post(reverse("customers:import-template-delete", args=[template.pk]))
    assert response.status_code == 302
    assert not ImportTemplate.objects.exists()


def test_another_users_template_cannot_be_deleted(client_for, importer, make_user):
    """R7.1.1: deleting someone else's template answers 404."""
    other = make_user(roles.SALES_MANAGER, username="other")
    template = imports.import_template_save(actor=other, name="theirs", headers=["a"], mapping=["name"])
    response = client_for(importer).post(reverse("customers:import-template-delete", args=[template.pk]))
    assert response.status_code == 404
    assert ImportTemplate.objects.filter(pk=template.pk).exists()


def test_another_users_import_token_answers_404(client_for, importer, make_user):
    """R7.1.1: an upload belongs to its uploader; other importers get 404 on every step."""
    session = session_for(importer)
    other = make_user(roles.SALES_MANAGER, username="other")
    client = client_for(other)
    for name in ("import-map", "import-preview", "import-errors"):
        assert client.get(reverse(f"customers:{name}", args=[session.token])).status_code == 404, name
    assert client.post(reverse("customers:import-run", args=[session.token])).status_code == 404
    assert client.get(reverse("customers:import-map", args=["x" * 32])).status_code == 404
    assert not Customer.objects.exists()


@pytest.mark.parametrize("role", [roles.SALES_REP, roles.ANALYST, roles.MARKETING, roles.SERVICE_AGENT])
def test_roles_without_import_permission_get_403(client_for, make_user, role, importer):
    """R7.1.1: reps, analysts and others without customers.import_customer are refused."""
    session = session_for(importer)
    client = client_for(make_user(role, username="nope"))
    urls = [
        reverse("customers:import-start"),
        reverse("customers:import-template-list"),
        reverse("customers:import-map", args=[session.token]),
        reverse("customers:import-preview", args=[session.token]),
        reverse("customers:import-example", args=["xlsx"]),
    ]
    for url in urls:
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("customers:import-run", args=[session.token])).status_code == 403


@pytest.mark.parametrize("role", [roles.SALES_MANAGER, roles.ADMINISTRATOR])
def test_roles_with_import_permission_see_the_pages(client_for, make_user, role):
    """R7.1.1: managers and administrators may import."""
    client = client_for(make_user(role, username="yes", language="en"))
    assert client.get(reverse("customers:import-start")).status_code == 200
    assert client.get(reverse("customers:import-template-list")).status_code == 200


def test_anonymous_is_sent_to_login(client, importer):
    """R7.1.1: every import URL needs a signed-in user."""
    session = session_for(importer)
    for url in (
        reverse("customers:import-start"),
        reverse("customers:import-template-list"),
        reverse("customers:import-map", args=[session.token]),
        reverse("customers:import-preview", args=[session.token]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("accounts:login") in response.url
    response = client.post(reverse("customers:import-run", args=[session.token]))
    assert response.status_code == 302
    assert reverse("accounts:login") in response.url


def test_example_files_download(client_for, importer):
    """R5.1.3 docs: the example files the manual links to."""
    client = client_for(importer)
    response = client.get(reverse("customers:import-example", args=["xlsx"]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:2] == b"PK"
    response = client.get(reverse("customers:import-example", args=["csv"]))
    assert response.status_code == 200
    assert client.get(reverse("customers:import-example", args=["exe"])).status_code == 404


def test_large_import_runs_as_job(
    client_for, importer, settings, tmp_path, django_capture_on_commit_callbacks
):
    """R5.1.3: beyond the inline threshold (set to 2 rows) the run goes through the job queue
    (eager in tests) and ends on the job page with progress 100 % and the error report."""
    settings.CUSTOMER_IMPORT_INLINE_ROWS = 2
    rows = [[f"客户{i}", f"1380000{i:04d}"] for i in range(4)] + [["坏", "123"]]
    path = write_xlsx(tmp_path / "big.xlsx", ["姓名", "手机"], rows)
    client = client_for(importer)
    with path.open("rb") as handle:
        token = token_from(client.post(reverse("customers:import-start"), {"file": handle, "policy": "skip"}))
    response = client.get(reverse("customers:import-preview", args=[token]))
    assert "runs in the background" in response.text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("customers:import-run", args=[token]), follow=True)
    job = Job.objects.get(kind="customers_import")
    assert job.status == Job.Status.SUCCEEDED
    assert (job.progress, job.processed, job.total) == (100, 5, 5)
    assert job.message == "Created 4, updated 0, unchanged 0, skipped 0, errors 1."
    assert job.result_file
    assert response.status_code == 200
    download = client.get(reverse("jobs:job-download", args=[job.pk]))
    rows = list(
        load_workbook(io.BytesIO(b"".join(download.streaming_content))).active.iter_rows(values_only=True)
    )
    assert rows[1][:3] == (6, "手机", "123")


def test_import_pages_render_at_phone_width_markup(client_for, importer):
    """R5.6.2: the tables of the import pages use the table-cards pattern (stacked at 390 px)."""
    client = client_for(importer)
    token = token_from(upload_file(client, "bad_rows.xlsx"))
    for name in ("import-map", "import-preview"):
        html = client.get(reverse(f"customers:{name}", args=[token])).text
        assert "table-cards" in html
        assert 'style="' not in html


def test_template_list_query_count_is_constant(client_for, importer, make_user, django_assert_num_queries):
    """R5.1.3: the template list costs the same number of queries for 1 and 10 templates."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(importer)
    owners = [make_user(roles.SALES_MANAGER, username=f"owner{i}") for i in range(10)]
    imports.import_template_save(actor=owners[0], name="t0", headers=["a"], mapping=["name"])
    client.get(reverse("customers:import-template-list"))  # warm the session and permission caches
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("customers:import-template-list"))
    for i, owner in enumerate(owners[1:], start=1):
        imports.import_template_save(actor=owner, name=f"t{i}", headers=["a"], mapping=["name"])
    with django_assert_num_queries(len(one.captured_queries)):
        response = client.get(reverse("customers:import-template-list"))
    assert response.text.count("<tr>") == 11
