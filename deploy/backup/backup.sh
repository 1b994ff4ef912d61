#!/usr/bin/env bash
# Back up the CRM: database (consistent snapshot) + uploaded files (MEDIA_ROOT).
#
#   deploy/backup/backup.sh [DEST_DIR]          default DEST_DIR: /srv/crm/backups or $BACKUP_DIR
#
# MySQL/MariaDB: mysqldump --single-transaction (no table locks, InnoDB); SQLite: online backup API.
# Writes crm-db-<stamp>.sql.gz (or .sqlite3.gz), crm-media-<stamp>.tar.gz and a SHA256SUMS file,
# and deletes backups older than KEEP_DAYS (default 14). Settings are read from the project's .env /
# environment exactly as the application reads them.
#
# The encryption keys (FIELD_ENCRYPTION_KEYS, BLIND_INDEX_KEY), SECRET_KEY and the audit signing key
# are deliberately NOT included: store them separately (password manager, offline copy). A backup
# without its keys cannot be read -- which is also what makes crypto-shredding of old backups work.
set -euo pipefail
umask 077

APP_DIR=$(cd "$(dirname "$0")/../.." && pwd)
PY="${PYTHON:-$APP_DIR/.venv/bin/python}"
DEST=${1:-${BACKUP_DIR:-/srv/crm/backups}}
KEEP_DAYS=${KEEP_DAYS:-14}
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$DEST"
cd "$APP_DIR"

# ENGINE NAME HOST PORT USER PASSWORD MEDIA_ROOT, one per line, from the real settings.
mapfile -t CFG < <("$PY" - <<'PY'
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
import django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
for value in (db["ENGINE"], db["NAME"], db.get("HOST") or "", db.get("PORT") or "", db.get("USER") or "",
              db.get("PASSWORD") or "", settings.MEDIA_ROOT):
    print(value)
PY
)
ENGINE=${CFG[0]} NAME=${CFG[1]} HOST=${CFG[2]} PORT=${CFG[3]} DBUSER=${CFG[4]} PASSWORD=${CFG[5]}
MEDIA_ROOT=${CFG[6]}

case $ENGINE in
    *mysql*)
        OUT="$DEST/crm-db-$STAMP.sql.gz"
        CNF=$(mktemp)
        trap 'rm -f "$CNF"' EXIT
        printf '[client]\nuser=%s\npassword=%s\nhost=%s\nport=%s\n' \
            "$DBUSER" "$PASSWORD" "${HOST:-127.0.0.1}" "${PORT:-3306}" > "$CNF"
        DUMP=$(command -v mariadb-dump || command -v mysqldump)
        "$DUMP" --defaults-extra-file="$CNF" --single-transaction --quick --routines --triggers \
            --events --hex-blob --default-character-set=utf8mb4 --databases "$NAME" | gzip -6 > "$OUT.part"
        mv "$OUT.part" "$OUT"
        ;;
    *sqlite3*)
        OUT="$DEST/crm-db-$STAMP.sqlite3.gz"
        "$PY" -c 'import sqlite3, sys
src = sqlite3.connect(sys.argv[1]); dst = sqlite3.connect(sys.argv[2])
src.backup(dst); dst.close(); src.close()' "$NAME" "$DEST/crm-db-$STAMP.sqlite3"
        gzip -6 "$DEST/crm-db-$STAMP.sqlite3"
        ;;
    *) echo "backup.sh: unsupported database engine $ENGINE" >&2; exit 1 ;;
esac
echo "database -> $OUT"

MEDIA_OUT="$DEST/crm-media-$STAMP.tar.gz"
if [[ -d $MEDIA_ROOT ]]; then
    tar -czf "$MEDIA_OUT" -C "$MEDIA_ROOT" .
else
    tar -czf "$MEDIA_OUT" --files-from /dev/null
fi
echo "media    -> $MEDIA_OUT"

(cd "$DEST" && sha256sum "$(basename "$OUT")" "$(basename "$MEDIA_OUT")" > "crm-$STAMP.SHA256SUMS")
find "$DEST" -maxdepth 1 -name 'crm-*' -type f -mtime +"$KEEP_DAYS" -delete

cat <<MSG
Backup complete in $DEST.
REMINDER: the keys are not in this backup. Keep a separate, safe copy of FIELD_ENCRYPTION_KEYS,
BLIND_INDEX_KEY and SECRET_KEY (from .env) and of the audit signing key; restoring needs them.
MSG
