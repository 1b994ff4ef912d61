"""``manage.py rotate_field_keys``: re-encrypt sensitive fields under the current key (R7.1.1).

Rotation runs online: put the new key first in FIELD_ENCRYPTION_KEYS and keep the old ones, restart
the app, run this command, then drop the old keys. Rows stay readable throughout because every listed
key decrypts. Rows are processed in batches of ``--batch-size`` by primary key; each value is read as
raw ciphertext and written back with a compare-and-swap ``UPDATE ... WHERE pk = .. AND col = <old>``,
so a concurrent edit is never overwritten and no signal, ``save()`` or ``auto_now`` timestamp fires.

``--reindex`` recomputes every BlindIndexField (after a BLIND_INDEX_KEY change, or after
``bulk_update()``/``update()`` wrote encrypted fields without their indexes).
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction
from django.db.models import ExpressionWrapper, F, Q, Value

from crm.core import crypto
from crm.core.fields import BlindIndexField, encrypted_fields_by_model, fields_by_model, index_value

RAW_PREFIX = "_raw_"


def _raw(field) -> ExpressionWrapper:
    """The stored ciphertext of an encrypted column, without decrypting it on the way out."""
    return ExpressionWrapper(F(field.attname), output_field=models.TextField())


def rotate_model(model, fields, *, ring: crypto.KeyRing, batch_size: int = 1000, dry_run: bool = False):
    """Re-encrypt every value of ``fields`` not under the current key. Returns (rows, values, errors)."""
    current = f"v{ring.current_version}$"
    aliases = {f"{RAW_PREFIX}{f.attname}": _raw(f) for f in fields}
    stale = reduce(or_, (Q(**{f"{a}__gt": ""}) & ~Q(**{f"{a}__startswith": current}) for a in aliases))
    base = model._base_manager.annotate(**aliases).filter(stale).order_by("pk").values_list("pk", *aliases)
    rows = values = errors = 0
    last_pk = None
    while True:
        batch_qs = base if last_pk is None else base.filter(pk__gt=last_pk)
        batch = list(batch_qs[:batch_size])
        if not batch:
            break
        last_pk = batch[-1][0]
        with transaction.atomic():
            for pk, *tokens in batch:
                changed = 0
                for field, alias, token in zip(fields, aliases, tokens, strict=True):
                    if not token or token.startswith(current):
                        continue
                    try:
                        plain = crypto.decrypt(token, context=field.crypto_context, ring=ring)
                    except crypto.DecryptionError:
                        errors += 1
                        continue
                    changed += 1
                    if dry_run:
                        continue
                    new_token = crypto.encrypt(plain, context=field.crypto_context, ring=ring)
                    model._base_manager.alias(**{alias: aliases[alias]}).filter(
                        pk=pk, **{alias: token}
                    ).update(**{field.attname: Value(new_token, output_field=models.TextField())})
                values += changed
                rows += bool(changed)
    return rows, values, errors


def blind_index_fields_by_model():
    return fields_by_model(BlindIndexField)


def reindex_model(model, fields, *, batch_size: int = 1000, dry_run: bool = False):
    """Recompute the blind indexes of ``model``. Returns (rows changed, values changed)."""
    sources = sorted({f.source for f in fields})
    names = [f.attname for f in fields]
    base = model._base_manager.order_by("pk")
    rows = values = 0
    last_pk = None
    while True:
        batch_qs = base if last_pk is None else base.filter(pk__gt=last_pk)
        batch = list(batch_qs.values("pk", *sources, *names)[:batch_size])
        if not batch:
            break
        last_pk = batch[-1]["pk"]
        with transaction.atomic():
            for row in batch:
                updates = {}
                for field in fields:
                    wanted = index_value(field.source_field.kind, row[field.source] or "", last4=field.last4)
                    if row[field.attname] != wanted:
                        updates[field.attname] = wanted
                if updates:
                    rows += 1
                    values += len(updates)
                    if not dry_run:
                        model._base_manager.filter(pk=row["pk"]).update(**updates)
    return rows, values


class Command(BaseCommand):
    help = "Re-encrypt sensitive fields under the current key; with --reindex, recompute blind indexes."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; write nothing.")
        parser.add_argument("--reindex", action="store_true", help="Also recompute every blind index.")
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args, dry_run, reindex, batch_size, **options):
        ring = crypto.keyring()
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(f"Current key version: {ring.current_version}; known: {sorted(ring.keys)}")
        total_errors = 0
        for model, fields in encrypted_fields_by_model().items():
            rows, values, errors = rotate_model(
                model, fields, ring=ring, batch_size=batch_size, dry_run=dry_run
            )
            total_errors += errors
            line = f"{model._meta.label}: {verb} {values} values in {rows} rows"
            if errors:
                line += f"; {errors} values could not be decrypted with any known key"
            self.stdout.write(line)
        if reindex:
            verb = "would update" if dry_run else "updated"
            for model, fields in blind_index_fields_by_model().items():
                rows, values = reindex_model(model, fields, batch_size=batch_size, dry_run=dry_run)
                self.stdout.write(f"{model._meta.label}: {verb} {values} blind index values in {rows} rows")
        if total_errors:
            raise CommandError(
                f"{total_errors} values could not be decrypted: "
                "add their key version to FIELD_ENCRYPTION_KEYS."
            )
