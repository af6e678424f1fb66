#!/usr/bin/env bash
# Entrypoint of the offline postgres test image. It follows the environment
# contract of the official `postgres` image's entrypoint so tests written for
# `postgres:16` run unchanged:
#
#   POSTGRES_PASSWORD          superuser password (required on first start
#                              unless POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER              superuser name (default: postgres)
#   POSTGRES_DB                database created on first start (default: POSTGRES_USER)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   POSTGRES_INITDB_WALDIR     initdb --waldir
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for TCP clients (default: scram-sha-256)
#   PGDATA                     data directory (default: /var/lib/postgresql/data)
#   <VAR>_FILE                 read POSTGRES_PASSWORD/USER/DB/INITDB_ARGS from a file
#
# /docker-entrypoint-initdb.d/*.sh, *.sql, *.sql.gz (and *.sql.xz when xz is
# installed) run once, when PGDATA is initialised. Extra container arguments go
# to postgres (`docker run image -c shared_buffers=256MB`).
set -Eeo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

# Reads VAR from VAR or VAR_FILE (Docker secrets), never both.
file_env() {
    local var="$1" file_var="${1}_FILE" default="${2:-}"
    if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
        printf >&2 'error: both %s and %s are set (but are exclusive)\n' "$var" "$file_var"
        exit 1
    fi
    local value="$default"
    if [[ -n "${!var:-}" ]]; then
        value="${!var}"
    elif [[ -n "${!file_var:-}" ]]; then
        value="$(<"${!file_var}")"
    fi
    export "$var"="$value"
    unset "$file_var"
}

setup_env() {
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
    export POSTGRES_HOST_AUTH_METHOD
    DATABASE_ALREADY_EXISTS=
    if [[ -s "$PGDATA/PG_VERSION" ]]; then
        DATABASE_ALREADY_EXISTS=true
    fi
}

# Directories postgres must own; run as root these are created and chowned,
# run as any other user they must already be writable.
create_db_directories() {
    local user_id
    user_id="$(id -u)"
    mkdir -p "$PGDATA"
    # initdb and postgres refuse group/world-accessible data directories.
    chmod 00700 "$PGDATA" || :
    mkdir -p /var/run/postgresql || :
    chmod 03775 /var/run/postgresql || :
    if [[ -n "${POSTGRES_INITDB_WALDIR:-}" ]]; then
        mkdir -p "$POSTGRES_INITDB_WALDIR"
        [[ "$user_id" == 0 ]] && find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres: '{}' +
        chmod 700 "$POSTGRES_INITDB_WALDIR"
    fi
    if [[ "$user_id" == 0 ]]; then
        find "$PGDATA" \! -user postgres -exec chown postgres: '{}' +
        find /var/run/postgresql \! -user postgres -exec chown postgres: '{}' +
    fi
}

verify_minimum_env() {
    if [[ -z "$POSTGRES_PASSWORD" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]]; then
        cat >&2 <<-'EOE'
		Error: Database is uninitialized and superuser password is not specified.
		       You must specify POSTGRES_PASSWORD to a non-empty value for the
		       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

		       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
		       connections without a password. This is *not* recommended.

		       See PostgreSQL documentation about "trust":
		       https://www.postgresql.org/docs/current/auth-trust.html
		EOE
        exit 1
    fi
    if [[ "$POSTGRES_HOST_AUTH_METHOD" == trust ]]; then
        cat >&2 <<-'EOWARN'
		********************************************************************************
		WARNING: POSTGRES_HOST_AUTH_METHOD has been set to "trust". This will allow
		         anyone with access to the Postgres port to access your database without
		         a password, even if POSTGRES_PASSWORD is set.
		********************************************************************************
		EOWARN
    fi
}

init_database_dir() {
    local args=(--username="$POSTGRES_USER")
    if [[ -n "${POSTGRES_INITDB_WALDIR:-}" ]]; then
        args+=(--waldir="$POSTGRES_INITDB_WALDIR")
    fi
    # eval, like the official image, so quoting inside POSTGRES_INITDB_ARGS
    # (e.g. --locale="de_DE.UTF-8") is honoured. The password goes through a
    # pipe so it never appears in a command line or a file; the process
    # substitution has to be part of the initdb command itself, or bash closes
    # it before initdb reads it.
    if [[ -n "$POSTGRES_PASSWORD" ]]; then
        eval 'initdb "${args[@]}" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
    else
        eval 'initdb "${args[@]}" '"$POSTGRES_INITDB_ARGS"
    fi
}

# Socket connections stay trusted (the init phase and `docker exec psql` need
# no password, as in the official image); TCP clients use the chosen method.
setup_hba_conf() {
    {
        printf '# Written by docker-entrypoint.sh on first start.\n'
        printf 'local all all trust\n'
        if [[ "$POSTGRES_HOST_AUTH_METHOD" == trust ]]; then
            printf '# warning: trust is enabled for all connections\n'
        fi
        printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
    } >"$PGDATA/pg_hba.conf"
}

# The init scripts talk to a server that listens on the Unix socket only, so
# nothing outside the container can connect before initialisation finished.
temp_server_start() {
    if [[ "${1:-}" == postgres ]]; then
        shift
    fi
    set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
    PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

temp_server_stop() {
    PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
}

# Runs SQL from stdin or psql arguments against POSTGRES_DB as POSTGRES_USER;
# init scripts that are sourced can call it too, as with the official image.
docker_process_sql() {
    local runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [[ -n "$POSTGRES_DB" ]]; then
        runner+=(--dbname "$POSTGRES_DB")
    fi
    PGHOST='' PGHOSTADDR='' "${runner[@]}" "$@"
}

# POSTGRES_DB is blanked for these two calls because the database may not
# exist yet; they connect to the maintenance database instead.
setup_db() {
    local db="$POSTGRES_DB" exists
    exists="$(POSTGRES_DB='' docker_process_sql --dbname postgres --set db="$db" --tuples-only <<-'EOSQL'
		SELECT 1 FROM pg_database WHERE datname = :'db';
	EOSQL
    )"
    if [[ -z "${exists//[[:space:]]/}" ]]; then
        POSTGRES_DB='' docker_process_sql --dbname postgres --set db="$db" <<-'EOSQL'
			CREATE DATABASE :"db";
		EOSQL
        printf '\n'
    fi
}

process_init_files() {
    local f
    printf '\n'
    for f; do
        case "$f" in
            *.sh)
                # Executable scripts run in their own process; others are
                # sourced so they can use this script's functions and variables.
                if [[ -x "$f" ]]; then
                    printf '%s: running %s\n' "$0" "$f"
                    "$f"
                else
                    printf '%s: sourcing %s\n' "$0" "$f"
                    # shellcheck disable=SC1090
                    . "$f"
                fi
                ;;
            *.sql) printf '%s: running %s\n' "$0" "$f"; docker_process_sql -f "$f"; printf '\n' ;;
            *.sql.gz) printf '%s: running %s\n' "$0" "$f"; gunzip -c "$f" | docker_process_sql; printf '\n' ;;
            *.sql.xz)
                command -v xzcat >/dev/null || { printf >&2 '%s: cannot run %s: xz is not installed\n' "$0" "$f"; exit 1; }
                printf '%s: running %s\n' "$0" "$f"; xzcat "$f" | docker_process_sql; printf '\n'
                ;;
            *) printf '%s: ignoring %s\n' "$0" "$f" ;;
        esac
        printf '\n'
    done
}

# Options that only print something must not trigger initialisation.
want_help() {
    local arg
    for arg; do
        case "$arg" in
            -'?' | --help | --describe-config | -V | --version) return 0 ;;
        esac
    done
    return 1
}

main() {
    # `docker run image -c foo=bar` means `postgres -c foo=bar`.
    if [[ "${1:-}" == -* ]]; then
        set -- postgres "$@"
    fi

    if [[ "${1:-}" == postgres ]] && ! want_help "$@"; then
        setup_env
        create_db_directories
        if [[ "$(id -u)" == 0 ]]; then
            # Re-run this script as postgres; HOME matters for psql and
            # libpq's ~/.pgpass lookups during init.
            HOME=/var/lib/postgresql exec setpriv --reuid postgres --regid postgres --init-groups "${BASH_SOURCE[0]}" "$@"
        fi

        if [[ -z "$DATABASE_ALREADY_EXISTS" ]]; then
            verify_minimum_env
            # Fail before initdb if the init scripts cannot be read (e.g. a
            # bind mount with the wrong permissions).
            ls /docker-entrypoint-initdb.d/ >/dev/null
            init_database_dir
            setup_hba_conf
            # So psql in the init scripts can also use TCP with the password.
            export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
            temp_server_start "$@"
            setup_db
            shopt -s nullglob
            process_init_files /docker-entrypoint-initdb.d/*
            shopt -u nullglob
            temp_server_stop
            unset PGPASSWORD
            printf '\nPostgreSQL init process complete; ready for start up.\n\n'
        else
            printf '\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n\n'
        fi
    fi

    exec "$@"
}

main "$@"
