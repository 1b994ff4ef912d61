#!/usr/bin/env bash
# Restore a backup made by backup.sh into the database and MEDIA_ROOT configured for this project.
#
#   deploy/backup/restore.sh --yes crm-db-<stamp>.sql.gz [crm-media-<stamp>.tar.gz]
#
# Stop the application first (systemctl stop crm-web crm-worker crm-beat, or the IIS site) and make
# sure .env holds the SAME FIELD_ENCRYPTION_KEYS and BLIND_INDEX_KEY as when the backup was made.
# MySQL/MariaDB: the dump recreates the tables of the configured database (which must exist; the
# dump's database name is ignored). SQLite: the database file is replaced. Then `migrate` brings an
# older backup up to the current code.
set -euo pipefail

if [[ ${1:-} != --yes ]]; then
    echo "usage: $0 --yes DB_BACKUP [MEDIA_BACKUP]   (overwrites the current data)" >&2
    exit 2
fi
DB_FILE=$(realpath "$2")
MEDIA_FILE=${3:+$(realpath "$3")}
APP_DIR=$(cd "$(dirname "$0")/../.." && pwd)
PY="${PYTHON:-$APP_DIR/.venv/bin/python}"
cd "$APP_DIR"

SUMS=$(dirname "$DB_FILE")/$(basename "$DB_FILE" | sed -E 's/^crm-db-([0-9-]+)\..*/crm-\1.SHA256SUMS/')
if [[ -f $SUMS ]]; then
    (cd "$(dirname "$DB_FILE")" && sha256sum --check --ignore-missing "$(basename "$SUMS")")
fi

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
        CNF=$(mktemp)
        trap 'rm -f "$CNF"' EXIT
        chmod 600 "$CNF"
        printf '[client]\nuser=%s\npassword=%s\nhost=%s\nport=%s\n' \
            "$DBUSER" "$PASSWORD" "${HOST:-127.0.0.1}" "${PORT:-3306}" > "$CNF"
        CLIENT=$(command -v mariadb || command -v mysql)
        # Drop the dump's CREATE DATABASE / USE lines so it loads into the configured database.
        gunzip -c "$DB_FILE" | sed -E '/^(CREATE DATABASE|USE) /d' \
            | "$CLIENT" --defaults-extra-file="$CNF" --default-character-set=utf8mb4 "$NAME"
        ;;
    *sqlite3*)
        rm -f "$NAME-wal" "$NAME-shm"
        gunzip -c "$DB_FILE" > "$NAME.restore"
        mv "$NAME.restore" "$NAME"
        ;;
    *) echo "restore.sh: unsupported database engine $ENGINE" >&2; exit 1 ;;
esac
echo "database restored into $NAME"

if [[ -n $MEDIA_FILE ]]; then
    mkdir -p "$MEDIA_ROOT"
    tar -xzf "$MEDIA_FILE" -C "$MEDIA_ROOT"
    echo "media restored into $MEDIA_ROOT"
fi

"$PY" manage.py migrate --noinput
if "$PY" manage.py help verify_audit >/dev/null 2>&1; then
    "$PY" manage.py verify_audit || echo "WARNING: the audit ledger did not verify; investigate." >&2
fi
echo "Restore complete. Start the application again."
