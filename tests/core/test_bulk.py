"""``crm.core.bulk.insert_instances``: the imports' multi-row INSERT of model instances writes what
``bulk_create`` writes (encrypted fields, blind indexes, auto timestamps, foreign keys) and sets the
new keys in order."""

from unittest import mock

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import connection, transaction
from django.db.models import F, QuerySet

from crm.core.bulk import DictInserter, insert_instances, insert_rows, update_instances
from crm.core.fields import index_value
from tests.factories import UserFactory
from tests.testapp.models import Record

pytestmark = pytest.mark.django_db

INDEX_COLUMNS = "name, phone_index, phone_last4_index, email_index, owner_id, team_id"


def raw_rows(pks):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {INDEX_COLUMNS}, phone, created_at FROM testapp_record "
            f"WHERE id IN ({', '.join(['%s'] * len(pks))}) ORDER BY id",
            list(pks),
        )
        return cursor.fetchall()


def records(owner, count=5):
    return [
        Record(
            name=f"客户{i}", phone=f"1381234{i:04d}", email=f"c{i}@example.com", note="文三路", owner=owner
        )
        for i in range(count)
    ]


def test_sets_keys_in_order_and_marks_saved():
    owner = UserFactory()
    objs = records(owner)
    assert insert_instances(Record, objs, batch_size=2) is objs
    pks = [obj.pk for obj in objs]
    assert None not in pks
    assert pks == sorted(pks)
    assert all(not obj._state.adding and obj._state.db == "default" for obj in objs)
    assert list(Record.objects.filter(pk__in=pks).order_by("pk").values_list("name", flat=True)) == [
        obj.name for obj in objs
    ]


def test_writes_what_bulk_create_writes():
    owner = UserFactory()
    ours, theirs = records(owner), records(owner)
    insert_instances(Record, ours)
    Record.objects.bulk_create(theirs)
    ours_raw, theirs_raw = raw_rows([o.pk for o in ours]), raw_rows([o.pk for o in theirs])
    for mine, django_row in zip(ours_raw, theirs_raw, strict=True):
        assert mine[1:7] == django_row[1:7]  # name, blind indexes, foreign keys
        assert mine[7].startswith("v1$")  # encrypted,
        assert "1381234" not in mine[7]  # not plaintext
        assert mine[8] is not None  # auto_now_add
    first = Record.objects.get(pk=ours[0].pk)
    assert (first.phone, first.email, first.note) == ("13812340000", "c0@example.com", "文三路")
    assert ours_raw[0][2] == index_value("phone", "13812340000")


def test_empty_list_writes_nothing():
    with mock.patch.object(connection, "cursor") as cursor:
        assert insert_instances(Record, []) == []
    cursor.assert_not_called()


def test_expression_value_is_refused_and_nothing_is_written():
    objs = records(UserFactory(), count=2)
    objs[1].name = F("note")
    with pytest.raises(ValueError, match="expression"), transaction.atomic():
        insert_instances(Record, objs)
    assert not Record.objects.exists()


def test_unsaved_related_object_is_refused():
    from crm.accounts.models import User

    record = Record(name="x", phone="13812345678", owner=User(username="not-saved"))
    with pytest.raises(ValueError, match="unsaved related object"):
        insert_instances(Record, [record])
    assert not Record.objects.exists()


def test_falls_back_to_bulk_create_where_keys_cannot_be_returned(monkeypatch):
    # MySQL (not MariaDB): a data descriptor on the class wins over a cached value on the instance
    monkeypatch.setattr(
        type(connection.features), "can_return_rows_from_bulk_insert", property(lambda self: False)
    )
    objs = records(UserFactory(), count=2)
    with mock.patch.object(QuerySet, "bulk_create", autospec=True, return_value=objs) as bulk_create:
        insert_instances(Record, objs)
    bulk_create.assert_called_once()


def test_update_instances_saves_only_the_named_fields():
    owner, other_owner = UserFactory(), UserFactory()
    objs = insert_instances(Record, records(owner, count=3))
    untouched = Record.objects.get(pk=objs[2].pk)
    for obj in objs[:2]:
        obj.name = obj.name + "改"
        obj.note = "人民路"  # encrypted on the way in
        obj.owner = other_owner
        obj.email = "changed@example.com"  # not named: stays as stored
    update_instances(Record, objs[:2], ["name", "note", "owner"])
    for obj in objs[:2]:
        stored = Record.objects.get(pk=obj.pk)
        assert (stored.name, stored.note, stored.owner_id) == (obj.name, "人民路", other_owner.pk)
        assert stored.email == f"c{objs.index(obj)}@example.com"
    with connection.cursor() as cursor:
        cursor.execute("SELECT note FROM testapp_record WHERE id = %s", [objs[0].pk])
        assert cursor.fetchone()[0].startswith("v1$")
    third = Record.objects.get(pk=objs[2].pk)
    assert (third.name, third.note, third.owner_id) == (untouched.name, untouched.note, owner.pk)


def test_update_instances_of_nothing_runs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        update_instances(Record, [], ["name"])


def test_update_instances_refuses_an_unknown_field():
    objs = insert_instances(Record, records(UserFactory(), count=1))
    with pytest.raises(FieldDoesNotExist):
        update_instances(Record, objs, ["no_such_field"])


def test_update_instances_sets_auto_now_fields_as_save_does():
    objs = insert_instances(Record, records(UserFactory(), count=1))
    stored_before = Record.objects.get(pk=objs[0].pk).updated_at
    objs[0].name = "改名"
    update_instances(Record, objs, ["name", "updated_at"])
    stored = Record.objects.get(pk=objs[0].pk)
    assert stored.name == "改名"
    assert stored.updated_at > stored_before


def test_insert_rows_writes_the_given_values_in_statements_of_batch_size(django_assert_num_queries):
    from crm.core.regions.models import Region

    rows = [(f"99000{i}", f"测试区 {i}", f"Test {i}", 1, i) for i in range(5)]
    with django_assert_num_queries(3):  # 2 + 2 + 1
        insert_rows(Region, ["code", "name_zh", "name_en", "level", "sort_order"], rows, batch_size=2)
    assert (
        list(
            Region.objects.filter(code__startswith="99000").values_list(
                "code", "name_zh", "name_en", "level", "sort_order"
            )
        )
        == rows
    )


def test_insert_rows_of_nothing_runs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        insert_rows(Record, ["name"], [])


def test_equal_times_and_amounts_are_converted_once_per_insert():
    """The memo of repeated values gives the values the field's own conversion gives."""
    import datetime
    from decimal import Decimal

    from django.db import models

    from crm.core.bulk import _converter

    class Row:
        pass

    stamp = models.DateTimeField()
    stamp.set_attributes_from_name("at")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    amount.set_attributes_from_name("amount")
    convert_time, convert_amount = _converter(stamp, connection), _converter(amount, connection)
    utc = datetime.datetime(2026, 11, 25, 4, 0, tzinfo=datetime.UTC)
    shanghai = utc.astimezone(datetime.timezone(datetime.timedelta(hours=8)))
    for value in (utc, shanghai, utc, None):
        row = Row()
        row.at = value
        assert convert_time(row) == stamp.get_db_prep_save(value, connection)
    for value in (Decimal("1.5"), Decimal("1.50"), Decimal("2"), None):
        row = Row()
        row.amount = value
        assert convert_amount(row) == amount.get_db_prep_save(value, connection)
    row = Row()
    row.amount = Decimal("sNaN")
    with pytest.raises(Exception):  # noqa: B017, PT011 -- refused by the field, not by the memo
        convert_amount(row)


def test_dict_inserter_writes_what_bulk_create_writes_and_returns_the_keys():
    """Plain value dicts: encrypted and blind-indexed like saved instances, defaults filled."""
    from django.utils import timezone

    owner = UserFactory()
    now = timezone.now()
    rows = [
        {
            "name": f"客户{i}",
            "phone": f"1381234{i:04d}",
            "email": f"c{i}@example.com",
            "note": "文三路",
            "owner_id": owner.pk,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(5)
    ]
    ids = DictInserter(Record).insert(rows, returning=True)
    assert len(ids) == 5
    assert ids == sorted(ids)
    theirs = records(owner)
    Record.objects.bulk_create(theirs)
    for mine, django_row in zip(raw_rows(ids), raw_rows([o.pk for o in theirs]), strict=True):
        assert mine[1:7] == django_row[1:7]  # name, blind indexes, foreign keys
        assert mine[7].startswith("v1$")
    first = Record.objects.get(pk=ids[0])
    assert (first.phone, first.email, first.note) == ("13812340000", "c0@example.com", "文三路")
    assert DictInserter(Record).insert([]) == []


def test_dict_inserter_with_keys_writes_the_rows_own_ids():
    from django.utils import timezone

    owner = UserFactory()
    now = timezone.now()
    row = {"id": 987_654, "name": "指定", "owner_id": owner.pk, "created_at": now, "updated_at": now}
    assert DictInserter(Record, with_pk=True).insert([row]) == []
    assert Record.objects.get(pk=987_654).name == "指定"
