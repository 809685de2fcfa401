#!/usr/bin/env bash
# Writes the secret files deploy/compose.yaml reads, with fresh random values, into
# deploy/secrets/ (or the folder given). Existing files are kept, so running it again changes
# nothing; delete a file to rotate that secret. Nothing is printed but the folder's name.
set -euo pipefail
dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/secrets"}
umask 077
mkdir -p "$dir"
printf '*\n' >"$dir/.gitignore"

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
write_once() { [ -s "$dir/$1" ] || printf '%s\n' "$2" >"$dir/$1"; }

write_once postgres-password "$(random_hex 24)"
write_once jwt-secret "$(random_hex 32)"
write_once s3-access-key "athanor$(random_hex 6)"
write_once s3-secret-key "$(random_hex 24)"
write_once compute-key "$(random_hex 32)"
# Derived files: rewritten from the values above so they always agree.
rm -f "$dir/database-url" "$dir/s3-credentials"
printf 'postgres://athanor:%s@postgres:5432/athanor\n' "$(cat "$dir/postgres-password")" >"$dir/database-url"
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "$(cat "$dir/s3-access-key")" "$(cat "$dir/s3-secret-key")" >"$dir/s3-credentials"
# The containers run as uid 10001 (Athanor), 999 (PostgreSQL) and root (MinIO): compose mounts
# these files as they are, so they must be readable by those users. Keep the folder itself 0700.
chmod 0700 "$dir"
chmod 0444 "$dir"/postgres-password "$dir"/jwt-secret "$dir"/s3-access-key "$dir"/s3-secret-key \
  "$dir"/compute-key "$dir"/database-url "$dir"/s3-credentials
echo "$dir"
