/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's two small wire protocols. Progress: a worker (`ec2-imaged run --json` started by
 * the daemon) sends one datagram per phase change on the SOCK_SEQPACKET socket whose number is in
 * $EC2_IMAGED_PROGRESS_FD. Control: `ec2-imaged trigger` asks the daemon for a run over a Unix
 * socket that only root may use, and with --wait receives the worker's exit status and output.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "core/state.h"

#define CONTROL_SOCKET_DEFAULT "/run/ec2-imaged/control.sock"
#define PROGRESS_FD_ENV        "EC2_IMAGED_PROGRESS_FD"
#define PROGRESS_MSG_MAX       512
#define CONTROL_MSG_MAX        256
#define CONTROL_OUTPUT_MAX     (256u * 1024u) /* a worker's stdout (its JSON result) */

struct progress {
        enum run_phase phase;
        char run_id[64];
        char image_id[64];
        char mode[16];
        unsigned n_mounts;
};

/* Worker side: the fd named by $EC2_IMAGED_PROGRESS_FD, or -1 (also when it is not a socket). */
int progress_fd_from_env(void);
/* Send the run's phase; never blocks and never raises SIGPIPE (a gone daemon is not our problem).
 */
void progress_send(int fd, const struct run_state *run);
/* Daemon side: -EBADMSG for anything but a well-formed message. */
int progress_parse(const char *msg, size_t len, struct progress *ret);

enum control_request {
        CONTROL_TRIGGER,      /* start a run; the answer comes once it started */
        CONTROL_TRIGGER_WAIT, /* start a run; the answer comes when it ended */
};

/*
 * Replies, one message each: "started", "busy <why>", "refused <why>"; after "started" a waiting
 * client then gets "exit <status>" and the worker's output in messages until EOF.
 */

/* Bind a listening SOCK_SEQPACKET socket at path (mode 0600; a stale socket is replaced). */
int control_listen(const char *path);
/* 0 when the peer of a connected socket is root, -EPERM otherwise. */
int control_check_peer(int fd);
int control_parse_request(const char *msg, size_t len, enum control_request *ret);
/* Send one reply message without blocking: -EAGAIN when the client does not read. */
int control_reply(int fd, const char *msg, size_t len);

/*
 * The daemon's side on its sd-event loop: listen at path (control_listen()), refuse non-root
 * peers, read each connection's request without blocking (at most 16 connections wait for theirs)
 * and hand it to on_request with the connection's fd, which the callee then owns: it answers
 * with control_reply() and closes it, now or when the run ends. Freeing closes the connections
 * still waiting, the socket, and removes the socket file.
 */
struct control_server;
typedef void (*control_request_fn)(enum control_request req, int fd, void *userdata);
int control_server_new(sd_event *e, const char *path, control_request_fn on_request, void *userdata,
                       struct control_server **ret);
struct control_server *control_server_free(struct control_server *s);

/*
 * Client: ask the daemon at path for a run. Returns 0 with *ret_status the worker's exit status
 * (wait) or 0 (started), or a negative errno: -EBUSY a run is under way (*ret_message says
 * which), -ECONNREFUSED/-ENOENT no daemon, -EPERM refused.
 */
int control_trigger(const char *path, bool wait, int *ret_status, char **ret_output,
                    char **ret_message);
