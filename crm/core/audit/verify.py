"""Verification of the audit chain and its signed checkpoints (R7.1.2, R7.1.4, R7.2.2).

The walk reads entries in sequence order by keyset batches (``seq > last ORDER BY seq LIMIT n``):
constant memory and an index range scan on every backend (MySQL's driver would otherwise load a
whole result set into memory), so it handles millions of rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from . import signing
from .models import (
    GENESIS_HASH,
    AuditCheckpoint,
    AuditEntry,
    AuditHead,
    checkpoint_message,
    compute_hash,
    hash_payload_from_values,
)

ROW_FIELDS = (*AuditEntry.HASHED_FIELDS, "entry_hash")

PROBLEM_TEXTS = {
    "gap": _("gap after seq %(seq)s: the next entry is seq %(next)s (entries deleted)"),
    "altered": _("seq %(seq)s: hash mismatch (entry altered)"),
    "link": _("seq %(seq)s: prev_hash does not link to seq %(prev)s (entry inserted or replaced)"),
    "checkpoint_key_id": _("checkpoint at seq %(seq)s: key ID does not match its public key"),
    "checkpoint_public_key": _("checkpoint at seq %(seq)s: public key is not a valid Ed25519 key"),
    "checkpoint_signature": _("checkpoint at seq %(seq)s: bad signature"),
    "checkpoint_untrusted": _("checkpoint at seq %(seq)s: signed by an untrusted key %(key_id)s"),
    "checkpoint_hash": _("checkpoint at seq %(seq)s: signed hash does not match the entry"),
    "checkpoint_orphan": _(
        "checkpoint at seq %(seq)s: the entry is missing (gap after seq %(last)s, entries deleted)"
    ),
    "head_behind": _("seq %(seq)s: not recorded in the ledger head at seq %(head)s (entry inserted)"),
    "head_ahead": _(
        "gap after seq %(seq)s: the ledger head is at seq %(head)s (entries after seq %(seq)s deleted)"
    ),
    "head_hash": _("seq %(seq)s: hash differs from the one recorded in the ledger head"),
}
WARNING_TEXTS = {
    "no_trusted_keys": _(
        "No trusted signing key is configured: checkpoint signatures were checked, but not who made them."
    ),
    "no_head": _("The ledger head row is missing."),
}


@dataclass
class VerifyResult:
    entries: int = 0
    checkpoints: int = 0
    last_seq: int = 0
    problem_kind: str = ""
    problem_params: dict = field(default_factory=dict)
    warning_kinds: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problem_kind

    @property
    def problem_seq(self) -> int | None:
        return self.problem_params.get("seq")

    @property
    def problem(self) -> str:
        """The first problem found, in the active language ('' when the chain is intact)."""
        if not self.problem_kind:
            return ""
        return str(PROBLEM_TEXTS[self.problem_kind]) % self.problem_params

    @property
    def warnings(self) -> list[str]:
        return [str(WARNING_TEXTS[k]) for k in self.warning_kinds]

    def fail(self, kind: str, **params) -> VerifyResult:
        self.problem_kind = kind
        self.problem_params = params
        return self

    def summary(self) -> str:
        counts = _("%(entries)s entries, %(checkpoints)s checkpoints") % {
            "entries": self.entries,
            "checkpoints": self.checkpoints,
        }
        if self.ok:
            return _("%(counts)s, chain intact") % {"counts": counts}
        return _("%(counts)s verified before the problem: %(problem)s") % {
            "counts": counts,
            "problem": self.problem,
        }


def check_checkpoint(cp: AuditCheckpoint, entry_hash: str, trusted: set[str]) -> tuple[str, dict] | None:
    """The problem with one checkpoint, as (kind, params), or None if it is sound."""
    params = {"seq": cp.upto_seq, "key_id": cp.key_id[:16]}
    try:
        public_key = signing.load_public_pem(cp.public_key)
    except (ValueError, TypeError):
        return "checkpoint_public_key", params
    if signing.fingerprint(public_key) != cp.key_id:
        return "checkpoint_key_id", params
    if not signing.verify(public_key, cp.signature, checkpoint_message(cp.upto_seq, cp.entry_hash)):
        return "checkpoint_signature", params
    if trusted and cp.key_id not in trusted:
        return "checkpoint_untrusted", params
    if cp.entry_hash != entry_hash:
        return "checkpoint_hash", params
    return None


def walk(
    result: VerifyResult,
    *,
    after_seq: int = 0,
    prev_hash: str = GENESIS_HASH,
    upto_seq: int | None = None,
    trusted: set[str] | None = None,
    batch_size: int = 2000,
) -> VerifyResult:
    """Check entries after ``after_seq`` (whose hash is ``prev_hash``) and their checkpoints.

    Stops at the first problem. ``trusted=None`` skips checkpoints.
    """
    prev_seq = after_seq
    while True:
        qs = AuditEntry.objects.filter(seq__gt=prev_seq)
        if upto_seq is not None:
            qs = qs.filter(seq__lte=upto_seq)
        rows = list(qs.order_by("seq").values_list(*ROW_FIELDS)[:batch_size])
        if not rows:
            break
        checkpoints = defaultdict(list)
        if trusted is not None:
            for cp in AuditCheckpoint.objects.filter(
                upto_seq__gt=prev_seq, upto_seq__lte=rows[-1][0]
            ).order_by("upto_seq", "pk"):
                checkpoints[cp.upto_seq].append(cp)
        for row in rows:
            values = dict(zip(ROW_FIELDS, row, strict=True))
            seq = values["seq"]
            if seq != prev_seq + 1:
                return result.fail("gap", seq=prev_seq, next=seq)
            if compute_hash(hash_payload_from_values(values)) != values["entry_hash"]:
                return result.fail("altered", seq=seq)
            if values["prev_hash"] != prev_hash:
                return result.fail("link", seq=seq, prev=prev_seq)
            for cp in checkpoints.get(seq, ()):
                problem = check_checkpoint(cp, values["entry_hash"], trusted)
                if problem:
                    return result.fail(problem[0], **problem[1])
                result.checkpoints += 1
            result.entries += 1
            prev_seq, prev_hash = seq, values["entry_hash"]
        result.last_seq = prev_seq
    result.last_seq = prev_seq
    return result


def verify_chain(*, batch_size: int = 2000, trusted_key_ids: set[str] | None = None) -> VerifyResult:
    """Verify the whole ledger: every hash, every link, every checkpoint, and the head.

    Reports the first problem in sequence order (see ``VerifyResult.problem``).
    """
    trusted = signing.trusted_key_ids() if trusted_key_ids is None else set(trusted_key_ids)
    result = VerifyResult()
    if not trusted:
        result.warning_kinds.append("no_trusted_keys")
    walk(result, trusted=trusted, batch_size=batch_size)
    if not result.ok:
        return result
    last_seq = result.last_seq
    orphan = AuditCheckpoint.objects.filter(upto_seq__gt=last_seq).order_by("upto_seq").first()
    if orphan is not None:
        return result.fail("checkpoint_orphan", seq=orphan.upto_seq, last=last_seq)
    head = AuditHead.objects.filter(pk=1).first()
    if head is None:
        if last_seq:
            result.warning_kinds.append("no_head")
        return result
    if head.last_seq < last_seq:
        return result.fail("head_behind", seq=head.last_seq + 1, head=head.last_seq)
    if head.last_seq > last_seq:
        # Entries committed after the walk passed are fine; a head pointing at nothing is not.
        if not AuditEntry.objects.filter(seq=head.last_seq).exists():
            return result.fail("head_ahead", seq=last_seq, head=head.last_seq)
        return result
    last_hash = AuditEntry.objects.filter(seq=last_seq).values_list("entry_hash", flat=True).first()
    if last_seq and head.last_hash != last_hash:
        return result.fail("head_hash", seq=last_seq)
    return result
