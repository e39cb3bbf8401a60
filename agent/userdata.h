/*
 * The ec2-imaged directive in an instance's user-data: a comment line that every user-data format
 * cloud-init knows leaves alone (shell scripts, #cloud-config YAML, text parts of MIME multipart):
 *
 *   #ec2-imaged: run=first-boot mode=reboot
 *
 * Keys: run (first-boot: image the instance once, on its first boot with this instance id) and
 * mode (no-reboot or reboot; default: [run] mode). Several directive lines are merged in order.
 * Gzip-compressed user-data and base64-encoded MIME parts are not looked into.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define USERDATA_MAX            (64u * 1024u) /* EC2 allows 16 KiB; IMDS serves it decoded */
#define USERDATA_PREFIX         "#ec2-imaged:"
#define USERDATA_DIRECTIVES_MAX 16
#define USERDATA_LINE_MAX       1024

struct userdata_directive {
        bool found;       /* at least one directive line */
        bool first_boot;  /* run=first-boot */
        const char *mode; /* "no-reboot", "reboot" (static), or NULL for the configured mode */
        unsigned line;    /* the (last) directive line */
};

/*
 * Parse user-data of len bytes (not NUL-terminated). 0 with *ret filled (found may be false);
 * -EFBIG over USERDATA_MAX, -EINVAL for a bad directive (then *ret_line and *ret_message, a
 * static string, say which and why). Bytes outside directive lines are never interpreted.
 */
int userdata_parse(const char *data, size_t len, struct userdata_directive *ret, unsigned *ret_line,
                   const char **ret_message);
