"""Multi-row INSERT of model instances, for the imports' batches.

``insert_instances(model, objs)`` does what ``bulk_create(objs)`` does for the plain case (no
conflict handling, no multi-table inheritance): it runs the fields' ``pre_save`` (auto_now, blind
indexes), converts every value with its field's ``get_db_prep_save`` (encryption, JSON, dates,
decimals), writes ``batch_size`` rows per statement and sets the new primary keys from ``RETURNING``.
It builds the statement itself instead of going through the ORM's SQL compiler, whose work per
value cost more than the database's own: profiled on the order import, ``bulk_create`` of 100,000
model instances spent two thirds of its time compiling. Values of the plain types (str, int, bool,
None) in fields that store them as they are skip the field's conversion.

Where the database cannot return the keys of a multi-row insert (MySQL, not MariaDB) or the model
needs something this does not do (database defaults, custom placeholders), it calls
``bulk_create``.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, models, router, transaction

#: Fields whose ``get_db_prep_save`` returns a str, int or bool value unchanged.
_PLAIN_FIELDS = (
    models.CharField,
    models.TextField,
    models.IntegerField,  # and the Big/Small/Positive variants
    models.BooleanField,
)
_PLAIN_VALUES = frozenset({str, int, bool, type(None)})
#: Fields whose database value depends only on the value (equal values, equal results).
_MEMO_FIELDS = (models.DateTimeField, models.DecimalField)
_BASE_PRE_SAVE = models.Field.pre_save


def insert_instances(model, objs: list, *, batch_size: int = 500) -> list:
    """INSERT ``objs`` (new instances of ``model``) and return them, saved: primary keys set,
    ``_state.adding`` off. Call inside a transaction when the rows belong together."""
    if not objs:
        return objs
    alias = router.db_for_write(model)
    connection = connections[alias]
    opts = model._meta
    if not _supported(model, connection):
        return model._base_manager.using(alias).bulk_create(objs, batch_size=batch_size)
    pk = opts.pk
    for obj in objs:
        if not obj._is_pk_set():
            obj.pk = pk.get_pk_value_on_save(obj)
        obj._prepare_related_fields_for_save(operation_name="bulk_create")
    with_pk = [obj for obj in objs if obj._is_pk_set()]
    without_pk = [obj for obj in objs if not obj._is_pk_set()]
    fields = [f for f in opts.concrete_fields if not f.generated]
    with transaction.atomic(using=alias, savepoint=False):
        if with_pk:
            _insert(connection, model, with_pk, fields, batch_size, returning=False)
        if without_pk:
            auto = [f for f in fields if not isinstance(f, models.AutoField)]
            _insert(connection, model, without_pk, auto, batch_size, returning=True)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias
    return objs


def _supported(model, connection) -> bool:
    opts = model._meta
    if any(parent._meta.concrete_model is not opts.concrete_model for parent in opts.all_parents):
        return False
    if any(f.has_db_default() or hasattr(f, "get_placeholder") for f in opts.concrete_fields):
        return False
    returning = opts.db_returning_fields
    return connection.features.can_return_rows_from_bulk_insert and all(
        isinstance(f, models.AutoField) for f in returning
    )


def _converter(field, connection):
    """``obj -> database value`` for one field, as the compiler's pre_save_val + prepare_value."""
    attname = field.attname
    custom_pre_save = type(field).pre_save is not _BASE_PRE_SAVE
    prep = field.get_db_prep_save
    plain = isinstance(field, _PLAIN_FIELDS) and not _is_custom(field)
    if isinstance(field, models.ForeignKey):
        target = field.target_field
        plain = isinstance(target, _PLAIN_FIELDS) and not _is_custom(target)
    plain_values = _PLAIN_VALUES
    # A batch repeats its times (created_at, updated_at: one "now") and amounts: equal values have
    # equal database values, so each is converted once per statement run (the converters are made
    # per insert). Not for the project's own fields, whose conversion may not be a pure function.
    memo: dict | None = {} if isinstance(field, _MEMO_FIELDS) and not _is_custom(field) else None

    def convert(obj):
        value = field.pre_save(obj, True) if custom_pre_save else getattr(obj, attname)
        if plain and type(value) in plain_values:
            return value
        remember = memo is not None and value is not None
        if remember:
            try:
                return memo[value]
            except KeyError:
                pass
            except TypeError:  # unhashable (a signalling NaN): the field refuses it below
                remember = False
        if hasattr(value, "resolve_expression"):
            raise ValueError(f"insert_instances cannot insert the expression {value!r} into {field}")
        converted = prep(value, connection)
        if remember:
            memo[value] = converted
        return converted

    return convert


def _is_custom(field) -> bool:
    """A field subclass of the project's (an encrypted or blind-index field, say) may convert."""
    return type(field).__module__.split(".")[0] != "django"


def _insert(connection, model, objs: list, fields: list, batch_size: int, *, returning: bool) -> None:
    converters = [_converter(f, connection) for f in fields]
    rows = [[convert(obj) for convert in converters] for obj in objs]
    returning_fields = model._meta.db_returning_fields if returning else ()
    names = [f.name for f in fields]
    returned = insert_rows(model, names, rows, batch_size=batch_size, returning=returning_fields)
    for obj, row in zip(objs, returned, strict=False):
        for field, value in zip(returning_fields, row, strict=True):
            setattr(obj, field.attname, value)


def insert_rows(
    model, fields: list[str], rows: list, *, batch_size: int = 500, returning: Sequence = ()
) -> list[tuple]:
    """INSERT ``rows``, sequences of database values (already what the backend takes: converted,
    encrypted, serialised) for the model fields named ``fields``, ``batch_size`` rows per statement.
    For a caller that builds the values itself, as the audit ledger's batch append does. With
    ``returning`` (model fields, such as the primary key), their new values, a tuple per row in the
    rows' order (on databases that return them)."""
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    opts = model._meta
    concrete = [opts.get_field(name) for name in fields]
    ops = connection.ops
    quote = ops.quote_name
    columns = ", ".join(quote(f.column) for f in concrete)
    placeholders = "(" + ", ".join(["%s"] * len(concrete)) + ")"
    size = max(1, min(batch_size, ops.bulk_batch_size(concrete, rows)))
    table = quote(opts.db_table)
    suffix, suffix_params = ops.return_insert_columns(list(returning)) if returning else ("", ())
    returned: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            values = ", ".join([placeholders] * len(chunk))
            # Table and column names come from the model; every value is a parameter.
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} {suffix}",  # noqa: S608
                [*(value for row in chunk for value in row), *suffix_params],
            )
            if returning:
                new = ops.fetch_returned_insert_rows(cursor)
                if len(new) != len(chunk):
                    raise RuntimeError(f"{opts.label}: {len(new)} keys for {len(chunk)} rows")
                returned.extend(tuple(row) for row in new)
    return returned


class DictInserter:
    """Multi-row INSERTs of plain value dicts into one model's table, without model instances.

    Building 1,000,000 model instances and running them through the ORM's SQL compiler costs about
    ten times the database's own time, so the rows are dicts of attribute names (the benchmark
    seeders, the customers import's new customers). Values still go through the model's fields where
    a field transforms them: EncryptedField encrypts (``get_db_prep_save``, the same code path as
    ``save()``), BlindIndexField computes its HMAC from its source's plaintext (``compute``, as its
    ``pre_save`` does), date/time fields are adapted by the backend; every other value is stored as
    given. Fields a row leaves out take their default. ``with_pk``: the rows carry their primary key
    as ``id``.
    """

    def __init__(self, model, *, with_pk: bool = False):
        self.model = model
        self.connection = connections[router.db_for_write(model)]
        opts = model._meta
        self.fields = [f for f in opts.concrete_fields if with_pk or not f.primary_key]
        self.converters = [self._converter(f) for f in self.fields]

    def _converter(self, f):
        from .fields import BlindIndexField, EncryptedField

        connection, ops = self.connection, self.connection.ops
        name = f.attname
        if f.primary_key:
            return lambda row: row["id"]
        default = f.get_default() if f.has_default() or f.null else ""
        if isinstance(f, BlindIndexField):
            source = f.source
            return lambda row: f.compute(row.get(source) or "")
        if isinstance(f, EncryptedField):
            return lambda row: f.get_db_prep_save(row.get(name, default), connection)
        if isinstance(f, models.DateTimeField):
            return lambda row: ops.adapt_datetimefield_value(row.get(name, default))
        if isinstance(f, models.DateField):
            return lambda row: ops.adapt_datefield_value(row.get(name, default))
        return lambda row: row.get(name, default)

    def insert(self, rows: list[dict], *, returning: bool = False) -> list:
        """Insert ``rows``; with ``returning`` give back their primary keys in the same order."""
        converters = self.converters
        values = [tuple(convert(row) for convert in converters) for row in rows]
        names = [f.name for f in self.fields]
        pk = [self.model._meta.pk] if returning else ()
        return [row[0] for row in insert_rows(self.model, names, values, batch_size=20_000, returning=pk)]


def update_instances(model, objs: list, fields: list[str]) -> None:
    """Save ``fields`` of the saved instances ``objs``: one parameterised UPDATE by primary key per
    object, run with ``executemany``. ``bulk_update`` builds one CASE expression per field instead,
    whose compilation cost more than the statements here (profiled on the order import's stock
    levels); ``save(update_fields=...)`` costs a query compilation per object. Sends no signals."""
    if not objs:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    opts = model._meta
    concrete = [opts.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in concrete)
    # Table and column names come from the model; every value is a parameter.
    sql = f"UPDATE {quote(opts.db_table)} SET {assignments} WHERE {quote(opts.pk.column)} = %s"  # noqa: S608
    params = [  # pre_save as save(update_fields=...) runs it: auto_now fields get the time
        [*(f.get_db_prep_save(f.pre_save(obj, False), connection) for f in concrete), obj.pk] for obj in objs
    ]
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        cursor.executemany(sql, params)
