# SPDX-License-Identifier: Apache-2.0
# Shared by the shipped hooks (sanitize, patch, firstboot); sourced, not run.
# POSIX sh. Installed as /usr/lib/ec2-imaged/hooks/lib.sh next to the scripts that source it.
# shellcheck shell=sh

# The root filesystem the scripts act on: / in production; tests always set EC2_IMAGED_ROOT to
# a throwaway tree (and run inside a chroot or a private mount namespace).
ROOT=${EC2_IMAGED_ROOT:-/}
CONFIG=${EC2_IMAGED_CONFIG:-/etc/ec2-imaged/ec2-imaged.conf}
PROG=${PROG:-ec2-imaged-hook}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
        log "$*"
        exit 1
}

# Settle ROOT to an absolute, resolved path ("/" stays "/") and R to the prefix of every path.
set_root() {
        [ -d "$ROOT" ] || die "root $ROOT is not a directory"
        ROOT=$(cd "$ROOT" && pwd -P) || die "cannot resolve root $ROOT"
        if [ "$ROOT" = / ]; then R=; else R=$ROOT; fi
}

# True when PATH (already prefixed with R) stays inside the root once its directories are
# resolved: with a root other than /, an absolute symlink such as /var/run -> /run would
# otherwise lead to the machine's own files.
inside_root() {
        [ -z "$R" ] && return 0
        _d=$(realpath -m -- "$(dirname -- "$1")") || return 1
        case "$_d/" in "$R"/*) return 0 ;; esac
        log "skipping $1: its directory resolves to $_d, outside $R"
        return 1
}

# The files that make up the configuration: CONFIG, then CONFIG's drop-ins in lexical order
# (/etc/ec2-imaged/conf.d/*.conf for the default file, PATH.d/*.conf for any other), as the
# agent reads them.
config_files() {
        [ -f "$CONFIG" ] && printf '%s\n' "$CONFIG"
        if [ "$CONFIG" = /etc/ec2-imaged/ec2-imaged.conf ]; then
                _dd=/etc/ec2-imaged/conf.d
        else
                _dd=$CONFIG.d
        fi
        for _f in "$_dd"/*.conf; do
                [ -f "$_f" ] && printf '%s\n' "$_f"
        done
        return 0
}

# conf_get SECTION KEY DEFAULT: the last value of KEY in [SECTION] over every config file.
# The agent itself validates the files (`ec2-imaged check`, `ec2-imaged sanitize`); this reader
# only needs the plain `key = value` lines the agent accepts.
conf_get() {
        _v=$(config_files | while IFS= read -r _f; do cat -- "$_f"; echo; done | awk -v s="$1" -v k="$2" '
                /^[ \t]*[#;]/ { next }
                /^[ \t]*\[/ { sec = $0; gsub(/^[ \t]*\[|\][ \t]*$/, "", sec); next }
                sec == s {
                        i = index($0, "="); if (i == 0) next
                        key = substr($0, 1, i - 1); gsub(/^[ \t]+|[ \t]+$/, "", key)
                        if (key != k) next
                        val = substr($0, i + 1); gsub(/^[ \t]+|[ \t]+$/, "", val)
                        found = 1; last = val
                }
                END { if (found) printf "%s", last; else exit 1 }') && {
                printf '%s' "$_v"
                return 0
        }
        printf '%s' "$3"
}

# in_list WORD LIST: true when WORD is one of the space-separated words of LIST.
in_list() {
        case " $2 " in *" $1 "*) return 0 ;; esac
        return 1
}
