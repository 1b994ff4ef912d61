"""Regions: data, cached selectors, children endpoints, RegionChoiceField, template tags (R5.1.1, R5.6.1)."""

import csv
import os
import shutil

import pytest
from django import forms
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from crm.core.forms import RegionChoiceField, RegionField, RegionSelectWidget
from crm.core.regions import selectors
from crm.core.regions.fields import RegionForeignKey
from crm.core.regions.loader import DATA_FILE, ensure_loaded, load_regions
from crm.core.regions.models import Region

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cold_cache():
    cache.clear()
    yield
    cache.clear()


class AddressDemoForm(forms.Form):
    region = RegionChoiceField(label="Region")


class SegmentDemoForm(forms.Form):
    region = RegionChoiceField(label="Region", required=False, require_leaf=False)


# Data ---------------------------------------------------------------------------------------


def test_bundled_file_and_table_agree():
    """R5.1.1: the migration loaded every row of data/regions.csv."""
    with DATA_FILE.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert Region.objects.count() == len(rows) > 3000
    assert all(len(r["code"]) == 6 and r["code"].isdigit() and r["name_zh"] and r["name_en"] for r in rows)


def test_province_level_units_include_hong_kong_macao_taiwan():
    """R5.1.1: 34 province-level units (HK, Macao, Taiwan as the data has them), no pseudo rows."""
    codes = set(Region.objects.filter(level=Region.Level.PROVINCE).values_list("code", flat=True))
    assert len(codes) == 34
    assert {"110000", "330000", "710000", "810000", "820000"} <= codes
    assert not Region.objects.filter(code__in=["990000", "999900", "820010", "500200"]).exists()
    assert not Region.objects.filter(level=Region.Level.PROVINCE, parent__isnull=False).exists()


def test_every_parent_exists_one_level_up():
    """R5.1.1: a district's parent is a city, a city's parent a province."""
    levels = dict(Region.objects.values_list("code", "level"))
    for code, parent_id, level in Region.objects.exclude(parent=None).values_list(
        "code", "parent_id", "level"
    ):
        assert parent_id in levels, code
        assert levels[parent_id] == level - 1, code
    assert not Region.objects.filter(level__gt=1, parent__isnull=True).exists()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("310115", ["上海市", "上海市", "浦东新区"]),
        ("330106", ["浙江省", "杭州市", "西湖区"]),
        ("110105", ["北京市", "北京市", "朝阳区"]),
        ("500229", ["重庆市", "重庆市", "城口县"]),  # a county of 重庆, merged under the one city
        ("810107", ["香港特别行政区", "香港特别行政区", "湾仔区"]),
        ("429004", ["湖北省", "仙桃市"]),  # county-level city under the province: a leaf city
        ("441900", ["广东省", "东莞市"]),  # prefecture without districts
    ],
)
def test_paths(code, expected):
    """R5.1.1: municipalities are selectable province -> city -> district; direct cities are leaves."""
    region = selectors.get_region(code)
    assert [r.name_zh for r in region.path] == expected
    assert region.is_leaf


def test_non_leaf_regions():
    assert not selectors.get_region("330100").is_leaf
    assert not selectors.get_region("310100").is_leaf
    assert not selectors.is_leaf("999999")


@pytest.mark.parametrize(
    ("code", "name_en"),
    [
        ("330000", "Zhejiang"),
        ("330100", "Hangzhou"),
        ("330106", "Xihu District"),
        ("150000", "Inner Mongolia"),
        ("450000", "Guangxi"),
        ("540000", "Tibet (Xizang)"),
        ("640000", "Ningxia"),
        ("650000", "Xinjiang"),
        ("810000", "Hong Kong"),
        ("820000", "Macao"),
        ("610000", "Shaanxi"),
        ("140000", "Shanxi"),
        ("610100", "Xi'an"),
        ("500000", "Chongqing"),
        ("140400", "Changzhi"),
        ("222400", "Yanbian Korean Autonomous Prefecture"),
        ("330182", "Jiande City"),
        ("810107", "Wan Chai District"),
    ],
)
def test_english_names(code, name_en):
    """R5.6.1: English names are pinyin with translated suffixes and hand-written special cases."""
    assert selectors.get_region(code).name_en == name_en


def test_name_and_full_name_follow_the_active_language():
    """R5.6.1"""
    xihu = selectors.get_region("330106")
    with translation.override("zh-hans"):
        assert xihu.name == "西湖区"
        assert xihu.full_name == "浙江省 杭州市 西湖区"
        assert selectors.get_region("310115").full_name == "上海市 浦东新区"
    with translation.override("en"):
        assert xihu.name == "Xihu District"
        assert str(xihu) == "Xihu District"
        assert xihu.full_name == "Xihu District, Hangzhou, Zhejiang"
        assert selectors.get_region("310115").full_name == "Pudong New Area, Shanghai"


def test_load_regions_is_idempotent_and_repairs_changes():
    """R5.1.1: reloading creates nothing new; an edited name is restored from the file."""
    Region.objects.filter(pk="330106").update(name_en="Wrong")
    result = load_regions(Region)
    assert (result.created, result.updated, result.obsolete) == (0, 1, 0)
    assert Region.objects.get(pk="330106").name_en == "Xihu District"
    again = load_regions(Region)
    assert (again.created, again.updated) == (0, 0)
    assert again.unchanged == Region.objects.count()


def test_load_regions_command_creates_missing_rows_and_clears_the_cache(capsys):
    assert selectors.get_region("330106") is not None  # cached now
    Region.objects.filter(pk="330106").update(name_zh="旧名")
    call_command("load_regions")
    assert "0 created, 1 updated" in capsys.readouterr().out
    assert selectors.get_region("330106").name_zh == "西湖区"  # invalidated, reloaded

    Region.objects.filter(pk="330106").delete()
    call_command("load_regions")
    assert "1 created" in capsys.readouterr().out
    assert Region.objects.filter(pk="330106", parent_id="330100").exists()


# Selectors ----------------------------------------------------------------------------------


def test_selectors_are_cached(django_assert_num_queries, django_assert_max_num_queries):
    """R6.2.4 efficiency: after warm-up, reading regions and rendering a full name costs no query."""
    with django_assert_max_num_queries(8):
        assert len(selectors.provinces()) == 34
        assert [r.code for r in selectors.children("330100")][:2] == ["330102", "330105"]
        selectors.get_region("330106").full_name  # noqa: B018
        selectors.has_children("330106")
    with django_assert_num_queries(0):
        assert len(selectors.provinces()) == 34
        assert len(selectors.children("330100")) == 13
        region = selectors.get_region("330106")
        assert region.full_name_for("zh-hans") == "浙江省 杭州市 西湖区"
        assert region.is_leaf
        assert selectors.region_path("330106")[0].code == "330000"


def test_invalidate_forces_a_reload(django_assert_num_queries):
    selectors.provinces()
    selectors.invalidate()
    with django_assert_num_queries(1):
        selectors.provinces()


@pytest.mark.parametrize("bad", ["abc", "1234567", "", None, "33010", "33010x"])
def test_bad_codes_never_query(bad, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert selectors.get_region(bad) is None
        if bad:
            assert selectors.children(bad) == []


def test_unknown_code_is_none():
    assert selectors.get_region("999999") is None
    assert selectors.children("999999") == []
    assert selectors.region_path("999999") == []


# Endpoints ----------------------------------------------------------------------------------


def test_children_html_requires_login(client):
    """R7.2.4: anonymous users are sent to the login page."""
    response = client.get(reverse("regions:children"), {"parent": "330000"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_children_html_lists_options(client_for, rep):
    """R5.1.1: htmx chaining gets <option>s of a province's cities, in the user's language."""
    response = client_for(rep).get(reverse("regions:children"), {"parent": "330000"})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<option value="">' in html
    assert '<option value="330100">杭州市</option>' in html
    assert "330106" not in html  # children only, not grandchildren
    assert html.count("<option") == 1 + 11

    rep.language = "en"
    rep.save(update_fields=["language"])
    html = client_for(rep).get(reverse("regions:children"), {"parent": "330100"}).content.decode()
    assert '<option value="">Choose a district</option>' in html
    assert '<option value="330106">Xihu District</option>' in html


def test_children_html_empty_parent_gives_placeholder_only(client_for, rep):
    response = client_for(rep).get(reverse("regions:children"), {"parent": ""})
    assert response.status_code == 200
    assert response.content.decode().count("<option") == 1


@pytest.mark.parametrize("bad", ["abc", "999999", "1234567"])
def test_children_html_bad_code_is_404(client_for, rep, bad):
    assert client_for(rep).get(reverse("regions:children"), {"parent": bad}).status_code == 404


def test_children_html_does_not_query_regions_once_warm(client_for, rep):
    """R6.2.4: after warm-up the endpoint only runs the session/user queries, none on regions."""
    client = client_for(rep)
    client.get(reverse("regions:children"), {"parent": "330000"})
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("regions:children"), {"parent": "330000"}).status_code == 200
    assert not [q for q in ctx.captured_queries if "regions_region" in q["sql"]]


def test_children_json_requires_authentication(client):
    """R7.2.4: API clients get a JSON 401/403, not a login redirect."""
    response = client.get(reverse("regions:api-children"), {"parent": "330000"})
    assert response.status_code in (401, 403)
    assert "detail" in response.json()


def test_children_json(client_for, rep):
    """R5.5.3: API clients read the region tree as JSON."""
    client = client_for(rep)
    data = client.get(reverse("regions:api-children"), {"parent": "330100"}).json()
    assert data["parent"] == "330100"
    xihu = next(r for r in data["results"] if r["code"] == "330106")
    assert xihu == {
        "code": "330106",
        "name": "西湖区",
        "name_zh": "西湖区",
        "name_en": "Xihu District",
        "level": 3,
        "has_children": False,
    }
    top = client.get(reverse("regions:api-children")).json()
    assert top["parent"] is None
    assert len(top["results"]) == 34
    assert all(r["has_children"] for r in top["results"])


def test_children_json_bad_and_unknown_codes(client_for, rep):
    client = client_for(rep)
    response = client.get(reverse("regions:api-children"), {"parent": "abc"})
    assert response.status_code == 400
    assert "parent" in response.json()["errors"]
    response = client.get(reverse("regions:api-children"), {"parent": "999999"})
    assert response.status_code == 404
    assert response.json()["detail"]


def test_children_endpoints_reject_post(client_for, rep):
    client = client_for(rep)
    assert client.post(reverse("regions:children"), {"parent": "330000"}).status_code == 405
    assert client.post(reverse("regions:api-children"), {"parent": "330000"}).status_code == 405


# Form field ---------------------------------------------------------------------------------


def _data(province="", city="", district=""):
    return {"region_0": province, "region_1": city, "region_2": district}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (("330000", "330100", "330106"), "330106"),
        (("310000", "310100", "310115"), "310115"),
        (("420000", "429004", ""), "429004"),  # county-level city under the province: no district
        (("440000", "441900", ""), "441900"),  # city without districts
    ],
)
def test_region_field_valid(data, expected):
    """R5.1.1: the most specific region chosen is returned."""
    form = AddressDemoForm(data=_data(*data))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["region"] == Region.objects.get(pk=expected)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (("330000", "320100", ""), "Choose a city in the selected province."),  # 南京 is not in 浙江
        (("330000", "", ""), "Choose a city in the selected province."),
        (("330000", "", "330106"), "Choose a city in the selected province."),
        (("330000", "330100", ""), "Choose a district in the selected city."),
        (("330000", "330100", "330211"), "Choose a district in the selected city."),  # 宁波 镇海区
        (("330000", "330100", "999999"), "Choose a district in the selected city."),
        (("999999", "", ""), "Choose a valid province."),
        (("330100", "330106", ""), "Choose a valid province."),  # a city given as province
        (("", "", ""), "This field is required."),
    ],
)
def test_region_field_invalid(data, message):
    """R5.1.1: inconsistent or incomplete choices are rejected with a translated message."""
    with translation.override("en"):
        form = AddressDemoForm(data=_data(*data))
        assert not form.is_valid()
        assert form.errors["region"] == [message]


def test_region_field_partial_choice_when_leaf_not_required():
    assert SegmentDemoForm(data=_data()).is_valid()
    form = SegmentDemoForm(data=_data("330000"))
    assert form.is_valid()
    assert form.cleaned_data["region"].code == "330000"
    form = SegmentDemoForm(data=_data("330000", "330100"))
    assert form.is_valid()
    assert form.cleaned_data["region"].code == "330100"
    assert not SegmentDemoForm(data=_data("330000", "320100")).is_valid()


def test_widget_renders_saved_value_without_javascript():
    """R4.2: the three selects show the saved region and its siblings (no JavaScript needed to read)."""
    with translation.override("zh-hans"):
        html = str(AddressDemoForm(initial={"region": selectors.get_region("330106")})["region"])
    assert html.count("<select") == 3
    assert '<option value="330000" selected>浙江省</option>' in html
    assert '<option value="330100" selected>杭州市</option>' in html
    assert '<option value="330106" selected>西湖区</option>' in html
    assert '<option value="330200">宁波市</option>' in html  # sibling cities to change to
    assert '<option value="330108">滨江区</option>' in html
    assert 'name="region_0"' in html
    assert 'name="region_2"' in html
    assert f'hx-get="{reverse("regions:children")}"' in html
    assert 'hx-target="#id_region_1"' in html
    assert 'hx-target="#id_region_2"' in html
    assert 'data-region-reset="#id_region_2"' in html
    assert "required" in html.split("</select>")[0]  # province is required
    assert "js/regions.js" in str(AddressDemoForm().media)


def test_widget_renders_submitted_values_after_an_error():
    form = AddressDemoForm(data=_data("310000", "310100", ""))
    assert not form.is_valid()
    html = str(form["region"])
    assert '<option value="310100" selected>' in html
    assert '<option value="310115">' in html  # 浦东新区 offered
    empty = str(AddressDemoForm()["region"])
    assert empty.count("<option") == 1 + 34 + 1 + 1  # provinces + two empty selects


def test_widget_decompresses_codes_and_regions():
    widget = RegionSelectWidget()
    assert widget.decompress("310115") == ["310000", "310100", "310115"]
    assert widget.decompress(selectors.get_region("429004")) == ["420000", "429004", None]
    assert widget.decompress(None) == [None, None, None]
    assert RegionField is RegionChoiceField


def test_region_field_has_changed():
    field = RegionChoiceField()
    assert not field.has_changed("330106", ["330000", "330100", "330106"])
    assert field.has_changed("330106", ["330000", "330100", "330108"])
    assert field.has_changed(None, ["330000", "", ""])


def test_region_foreign_key_uses_the_chained_field():
    field = RegionForeignKey(verbose_name="ship to", null=True, blank=True, require_leaf=False)
    field.set_attributes_from_name("ship_region")
    form_field = field.formfield()
    assert isinstance(form_field, RegionChoiceField)
    assert not form_field.required
    assert not form_field.require_leaf
    assert form_field.label == "Ship to"
    _name, path, _args, kwargs = field.deconstruct()
    assert path == "crm.core.regions.fields.RegionForeignKey"
    assert kwargs["require_leaf"] is False
    assert kwargs["to"] == "regions.region"


# Template tags ------------------------------------------------------------------------------


def test_region_template_tags():
    """R5.6.1"""
    template = Template(
        "{% load regions %}{{ r|region_name }}|{{ r|region_full_name }}|{% region_full_name '310115' %}|"
        "{{ bad|region_name }}"
    )
    region = selectors.get_region("330106")
    with translation.override("zh-hans"):
        assert (
            template.render(Context({"r": region, "bad": "x"}))
            == "西湖区|浙江省 杭州市 西湖区|上海市 浦东新区|"
        )
    with translation.override("en"):
        assert (
            template.render(Context({"r": "330106", "bad": None}))
            == "Xihu District|Xihu District, Hangzhou, Zhejiang|Pudong New Area, Shanghai|"
        )


# Browser ------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


def _demo_view(request):
    from django.http import HttpResponse
    from django.template import engines

    template = engines["django"].from_string(
        '{% extends "base.html" %}{% block content %}<form method="post">{{ form }}</form>{% endblock %}'
        "{% block extra_js %}{{ form.media }}{% endblock %}"
    )
    return HttpResponse(template.render({"form": AddressDemoForm()}, request))


def _urlpatterns():
    from django.urls import include, path

    return [path("regions-demo/", _demo_view), path("", include("crm.urls"))]


urlpatterns = _urlpatterns()


@pytest.mark.browser
@pytest.mark.urls(__name__)
@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian chromium not installed")
@pytest.mark.django_db(transaction=True)
def test_chained_selects_in_a_browser(live_server, rep, browser):
    """R5.6.3: choosing a province loads its cities via htmx, a city its districts; CSP stays clean."""
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.conf import settings
    from django.test import Client

    ensure_loaded()  # transactional tests may have flushed the table
    client = Client()
    client.force_login(rep)
    session_id = client.cookies[settings.SESSION_COOKIE_NAME].value
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_id, "url": live_server.url}])
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(live_server.url + "/regions-demo/")
    page.select_option("#id_region_0", "330000")
    page.wait_for_selector('#id_region_1 option[value="330100"]', state="attached")
    page.select_option("#id_region_1", "330100")
    page.wait_for_selector('#id_region_2 option[value="330106"]', state="attached")
    page.select_option("#id_region_2", "330106")
    assert page.eval_on_selector("#id_region_2", "e => e.value") == "330106"
    page.select_option("#id_region_0", "310000")
    page.wait_for_selector('#id_region_1 option[value="310100"]', state="attached")
    assert page.eval_on_selector("#id_region_2", "e => e.options.length") == 1  # district reset
    root = "document.documentElement"
    overflow = page.evaluate(f"{root}.scrollWidth - {root}.clientWidth")
    assert overflow <= 0  # fits a 390px phone
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def test_admin_lists_and_searches_regions(client_for, admin_user, rep):
    """R7.2.4: administrators browse regions (no add/delete); other users cannot."""
    url = reverse("admin:regions_region_changelist")
    response = client_for(admin_user).get(url, {"q": "西湖"})
    assert response.status_code == 200
    assert "330106" in response.content.decode()
    assert client_for(admin_user).get(reverse("admin:regions_region_add")).status_code == 403
    assert client_for(rep).get(url).status_code == 302


def test_memoized_keeps_regions_read_within_the_block_only(django_assert_num_queries):
    """Imports check thousands of addresses: within ``memoized()`` a region read once is not asked
    of the shared cache again, even if the cache lost it; outside, the cache (or a query) answers."""
    ensure_loaded()
    cache.clear()
    with selectors.memoized():
        first = selectors.get_region("330106")
        assert selectors.is_leaf("330106")
        cache.clear()  # a small shared cache that evicted the entries
        with django_assert_num_queries(0):
            assert selectors.get_region("330106") is first
            assert selectors.is_leaf("330106")
            with selectors.memoized():  # nested blocks share the memory
                assert selectors.get_region("330106") is first
    cache.clear()
    with django_assert_num_queries(1):
        assert selectors.get_region("330106") == first


def test_memoized_reads_every_region_with_one_query(django_assert_num_queries):
    ensure_loaded()
    cache.clear()
    with selectors.memoized():
        with django_assert_num_queries(1):
            paths = [selectors.region_path(code) for code in ("330106", "110101", "440305", "330100")]
            assert selectors.get_region("999999") is None  # well-formed, unknown: no query either
        assert [len(path) for path in paths] == [3, 3, 3, 2]
        assert paths[0][0].code == "330000"
