# SPDX-License-Identifier: Apache-2.0
# Shared by the database hooks (mysql-hold, postgresql-checkpoint, postgresql-hold); sourced
# after lib.sh, not run. POSIX sh.
# shellcheck shell=sh

# secret_file PATH KEY: PATH holds a credential ([SECTION] KEY names it in messages): it must be
# a regular file owned by root that neither its group nor others may read or write. Anything
# else is refused before a client is started, naming the file and what is wrong with it.
secret_file() {
        [ -e "$1" ] || die "$2 $1: no such file"
        if [ -L "$1" ] || [ ! -f "$1" ]; then die "$2 $1: not a regular file"; fi
        _st=$(stat -c '%u %a' -- "$1") || die "$2 $1: cannot stat it"
        _uid=${_st% *}
        _mode=${_st#* }
        [ "$_uid" = 0 ] || die "$2 $1: owned by uid $_uid, not root"
        case "$_mode" in
        ?00 | 00 | 0) ;;
        *) die "$2 $1: mode $_mode lets its group or others at a credential; chmod 600 it" ;;
        esac
}

# A directory for the hook's pipes and the client's output, on a tmpfs (/run) where possible:
# nothing written there reaches a filesystem the agent freezes. Removed at exit.
make_workdir() {
        for _base in /run/ec2-imaged /run /dev/shm "${TMPDIR:-/tmp}"; do
                if [ ! -d "$_base" ] || [ ! -w "$_base" ]; then continue; fi
                # shellcheck disable=SC2034 # the caller's
                WORK=$(mktemp -d "$_base/$PROG.XXXXXX" 2>/dev/null) && return 0
        done
        die "cannot make a work directory"
}

# take_fds "$@": the agent's readiness descriptor (EC2_IMAGED_READY_FD) moves to fd 8 and its
# release descriptor (EC2_IMAGED_RELEASE_FD, when it passes one) to fd 9, whatever numbers they
# came with, so that the hook's own descriptors (3 to 7) never land on them. READY_FD and
# RELEASE_FD are then 8 and 9, or empty (by hand: stdout and stdin). A POSIX shell (dash) only
# names descriptors 0 to 9: one above that is moved by bash, which then runs the script again
# with the script's arguments.
take_fds() {
        READY_FD=
        RELEASE_FD=
        for _v in EC2_IMAGED_READY_FD:8 EC2_IMAGED_RELEASE_FD:9; do
                eval "_fd=\${${_v%:*}:-}"
                [ -n "$_fd" ] || continue
                case "$_fd" in *[!0-9]*) die "${_v%:*}: bad descriptor '$_fd'" ;; esac
                _to=${_v#*:}
                if [ "$_fd" -gt 9 ]; then
                        command -v bash >/dev/null || die "${_v%:*}=$_fd: above 9, and no bash to move it"
                        export "${_v%:*}=$_to"
                        # shellcheck disable=SC2016 # for bash
                        exec bash -c 'eval "exec $1>&$2 $2>&-"; shift 2; exec "$@"' \
                                ec2-imaged-fd "$_to" "$_fd" "$0" "$@"
                fi
                if [ "$_fd" != "$_to" ]; then
                        # >& is dup2(): the direction the descriptor was opened in stays
                        eval "exec $_to>&$_fd $_fd>&-"
                fi
                if [ "$_to" = 8 ]; then READY_FD=8; else RELEASE_FD=9; fi
        done
        unset EC2_IMAGED_READY_FD EC2_IMAGED_RELEASE_FD
}

# ready_line TEXT: one line on the agent's readiness descriptor, or on stdout by hand.
ready_line() {
        if [ -n "$READY_FD" ]; then
                printf '%s\n' "$1" >&8 || die "cannot write to the readiness descriptor"
        else
                printf '%s\n' "$1"
        fi
}

# start_release_watch: a background process that ends when the agent releases the holder: EOF
# on the release descriptor when the agent passes one, else on the readiness descriptor itself
# (a socket whose other end the agent closes). By hand (neither set): a line or EOF on stdin.
# Its pid is RELEASE_PID; SIGTERM also releases (the trap of the caller).
start_release_watch() {
        if [ -n "$RELEASE_FD" ]; then
                cat <&9 >/dev/null &
        elif [ -n "$READY_FD" ]; then
                cat <&8 >/dev/null &
        else
                # an asynchronous list gets /dev/null as stdin unless told otherwise: a copy
                exec 7<&0
                (IFS= read -r _l <&7 || :) &
        fi
        # shellcheck disable=SC2034 # the caller's
        RELEASE_PID=$!
}

# alive PID: the process is there and not a zombie (kill -0 succeeds on a zombie child).
alive() {
        [ -r "/proc/$1/stat" ] || return 1
        _s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
        case "${_s##*) }" in Z* | X* | "") return 1 ;; esac
        return 0
}

# wait_for_line FILE PATTERN SECONDS PID: poll FILE (a client's output) until a line matches
# PATTERN (grep -x), for at most SECONDS; fails early when process PID has gone.
# Status 0 found, 1 timed out, 2 the process ended first.
wait_for_line() {
        _n=$(($3 * 50))
        while [ "$_n" -gt 0 ]; do
                grep -qx -- "$2" "$1" 2>/dev/null && return 0
                alive "$4" || {
                        grep -qx -- "$2" "$1" 2>/dev/null && return 0
                        return 2
                }
                sleep 0.02
                _n=$((_n - 1))
        done
        return 1
}

# lines_between FILE BEGIN END: the lines of FILE strictly between the marker lines.
lines_between() {
        awk -v b="$2" -v e="$3" '$0 == e { on = 0 } on { print } $0 == b { on = 1 }' "$1"
}

# write_atomic PATH: stdin into PATH through a temporary file in its directory, flushed to disk
# (sync FILE is fsync) before the rename, so the file is either the old one or the new one.
write_atomic() {
        _dir=$(dirname -- "$1")
        mkdir -p -- "$_dir" || return 1
        _tmp=$(mktemp "$_dir/.$(basename -- "$1").XXXXXX") || return 1
        if cat >"$_tmp" && chmod 0644 "$_tmp" && sync -- "$_tmp" && mv -f -- "$_tmp" "$1"; then
                sync -- "$_dir" 2>/dev/null || :
                return 0
        fi
        rm -f -- "$_tmp"
        return 1
}

# PostgreSQL: [postgresql] clusters (HOST[:PORT] words: HOST a socket directory or a host name),
# user and passfile (libpq's password file, root-only; without one the client runs as the
# operating-system user of that name, for peer authentication on the socket).
pg_settings() {
        PG_CLUSTERS=$(conf_get postgresql clusters /run/postgresql:5432 | tr , " ")
        PG_USER=$(conf_get postgresql user postgres)
        PG_PASSFILE=$(conf_get postgresql passfile "")
        [ -n "$PG_CLUSTERS" ] || die "[postgresql] clusters: empty"
        [ -z "$PG_PASSFILE" ] || secret_file "$PG_PASSFILE" "[postgresql] passfile"
        PSQL=$(command -v psql) || {
                for _p in /usr/lib/postgresql/*/bin/psql /usr/pgsql-*/bin/psql; do
                        [ -x "$_p" ] && PSQL=$_p
                done
        }
        [ -x "${PSQL:-}" ] || die "no psql in PATH"
        unset PGPASSWORD PGPASSFILE PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGSERVICEFILE
}

# pg_quote VALUE: VALUE as a libpq connection-string value ('...', with \ and ' escaped).
pg_quote() {
        printf "'%s'" "$(printf '%s' "$1" | sed "s/[\\\\']/\\\\&/g")"
}

# pg_target WORD: PG_HOST and PG_PORT of a clusters word, and PG_NAME, a name for files.
pg_target() {
        PG_HOST=$1
        PG_PORT=5432
        case "$1" in
        *:*)
                PG_PORT=${1##*:}
                PG_HOST=${1%:*}
                ;;
        esac
        case "$PG_PORT" in "" | *[!0-9]*) die "[postgresql] clusters: bad port in '$1'" ;; esac
        [ -n "$PG_HOST" ] || die "[postgresql] clusters: no host in '$1'"
        # shellcheck disable=SC2034 # the caller's
        PG_NAME=$(printf '%s-%s' "$PG_HOST" "$PG_PORT" | tr -c 'A-Za-z0-9_.\n-' _ | sed 's/^_*//')
}

# pg_psql ARGS...: psql on the cluster of the last pg_target, quiet, unaligned, stopping at
# the first error; the readiness and release descriptors closed for it. It execs psql (or
# runuser) in the calling process: call it in the background (then $! is that process, which
# the caller's EXIT trap must be able to kill, not a subshell around it) or in a command
# substitution, never as is.
pg_psql() {
        exec 8>&- 9>&-
        _c="host=$(pg_quote "$PG_HOST") port=$PG_PORT user=$(pg_quote "$PG_USER") dbname=postgres"
        _c="$_c connect_timeout=10 application_name=$(pg_quote "$PROG")"
        if [ -n "$PG_PASSFILE" ]; then
                exec "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 "$@" "$_c passfile=$(pg_quote "$PG_PASSFILE")"
        elif [ "$(id -u)" = 0 ] && [ "$PG_USER" != root ] && id -u -- "$PG_USER" >/dev/null 2>&1; then
                cd / && exec runuser -u "$PG_USER" -- "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 "$@" "$_c"
        else
                exec "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 "$@" "$_c"
        fi
}
