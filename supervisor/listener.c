/* SPDX-License-Identifier: MIT */
/* listener.c - the listening socket: TCP on loopback, a Unix socket in a
 * fresh 0700 directory or at the caller's path (or abstract name), and the
 * checks on who connects.
 *
 * The socket is made with plain syscalls and handed to libuv only once it
 * listens, so every error of sb_server_new is reported with nothing left
 * behind: no handle to close, no directory to remove. */
#include "sb_internal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SB__SOCK_NAME "sock" /* the socket's name in its directory */

static bool is_loopback(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)ss;
    return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
  }
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)ss;
    if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
      return true;
    return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && sin6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

/* Host literals only: a name would need a resolver and could resolve to
 * something that is not loopback. */
static int parse_host(const char *host, uint16_t port, struct sockaddr_storage *ss,
                      socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;
  if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    *len = sizeof *sin;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    *len = sizeof *sin6;
    return 0;
  }
  return -EINVAL;
}

static int listen_tcp(sb_server *server, const sb_server_options *opts, int *fdp) {
  struct sockaddr_storage ss;
  socklen_t len;
  char text[INET6_ADDRSTRLEN];
  const char *host = opts->host != NULL ? opts->host : SB__DEFAULT_HOST;
  int fd, on = 1, r;

  r = parse_host(host, opts->port, &ss, &len);
  if (r < 0)
    return r;
  if (!is_loopback(&ss) && !opts->allow_remote)
    return -EADDRNOTAVAIL;

  fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  *fdp = fd;
  /* A fixed port can be bound again at once after a restart. */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
    return -errno;
  if (bind(fd, (struct sockaddr *)&ss, len) != 0)
    return -errno;
  if (listen(fd, SB__LISTEN_BACKLOG) != 0)
    return -errno;
  len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return -errno;

  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)&ss;
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    server->port = ntohs(sin->sin_port);
  } else {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)&ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
    server->port = ntohs(sin6->sin6_port);
  }
  server->address = sb__strdup(text);
  return server->address != NULL ? 0 : -ENOMEM;
}

/* ---- socket directories: ours kept locked, the dead ones tidied ----------
 *
 * A server removes its socket directory when it closes; a supervisor killed
 * with SIGKILL cannot, and leaves it. So each server creates a lock file in
 * its directory and holds an flock on it for as long as it lives (the
 * kernel drops it when the process dies), before the socket is bound; and a
 * new server removes, in the parent it uses, every directory of ours that
 * holds the socket and a lock file nobody holds: proof that its supervisor
 * is dead. A directory without a socket proves nothing (its supervisor may
 * be between mkdtemp and bind), one without a lock file is not ours to
 * judge (an older version's), and one that holds anything else cannot be
 * removed: all three are left alone. Nothing connects to a socket to find
 * out, so no living server ever sees a stray peer. */

#define SB__SOCK_DIR_PREFIX "socketbridge-"
#define SB__SOCK_DIR_TEMPLATE SB__SOCK_DIR_PREFIX "XXXXXX"
#define SB__LOCK_NAME "lock" /* the lock file's name in the directory */

/* Removes parent's entry `name` when it is the socket directory of a dead
 * server. */
static void tidy_one(int pfd, const char *name) {
  struct stat st;
  int dfd =
      openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  int lfd = -1;

  if (dfd < 0)
    return;
  /* The lock is ours until lfd is closed: nobody else tidies meanwhile. */
  if (fstat(dfd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 07777) == 0700 &&
      fstatat(dfd, SB__SOCK_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISSOCK(st.st_mode) &&
      (lfd = openat(dfd, SB__LOCK_NAME,
                    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) >= 0 &&
      flock(lfd, LOCK_EX | LOCK_NB) == 0 && unlinkat(dfd, SB__SOCK_NAME, 0) == 0 &&
      unlinkat(dfd, SB__LOCK_NAME, 0) == 0)
    unlinkat(pfd, name, AT_REMOVEDIR);
  if (lfd >= 0)
    close(lfd);
  close(dfd);
}

/* Tidies the socket directories of dead servers in parent (best effort:
 * what cannot be read or removed stays). */
static void tidy_dead_sock_dirs(const char *parent) {
  DIR *d = opendir(parent);
  struct dirent *e;

  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL)
    if (strlen(e->d_name) == sizeof SB__SOCK_DIR_TEMPLATE - 1 &&
        strncmp(e->d_name, SB__SOCK_DIR_PREFIX, sizeof SB__SOCK_DIR_PREFIX - 1) == 0)
      tidy_one(dirfd(d), e->d_name);
  closedir(d);
}

/* dir's lock file, created and locked: its fd, or a negative errno. */
static int lock_sock_dir(const char *dir) {
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd, r = 0;

  if (dfd < 0)
    return -errno;
  fd = openat(dfd, SB__LOCK_NAME, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0600);
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0)
    r = -errno;
  close(dfd);
  if (r < 0 && fd >= 0)
    close(fd);
  return r < 0 ? r : fd;
}

/* A directory for the socket: under $TMPDIR when that is absolute and short
 * enough for sun_path, else under /tmp. mkdtemp makes it 0700, so no other
 * user can even reach the socket. Locked before anything is in it (above);
 * the dead servers' directories there are tidied first. */
static int make_sock_dir(sb_server *server, char **dir) {
  const char *tmp = getenv("TMPDIR");
  size_t room = sizeof(((struct sockaddr_un *)0)->sun_path);
  char *d;

  if (tmp == NULL || tmp[0] != '/' ||
      strlen(tmp) + sizeof "/socketbridge-XXXXXX/" SB__SOCK_NAME > room)
    tmp = "/tmp";
  tidy_dead_sock_dirs(tmp);
  d = sb__strdupf("%s%s" SB__SOCK_DIR_TEMPLATE, tmp,
                  tmp[strlen(tmp) - 1] == '/' ? "" : "/");
  if (d == NULL)
    return -ENOMEM;
  if (mkdtemp(d) == NULL) {
    int r = -errno;
    free(d);
    return r;
  }
  *dir = d; /* from here remove_socket removes it, whatever fails */
  server->sock_dir_lock = lock_sock_dir(d);
  return server->sock_dir_lock < 0 ? server->sock_dir_lock : 0;
}

static int listen_unix(sb_server *server, int *fdp) {
  struct sockaddr_un sun;
  int fd, r;

  r = make_sock_dir(server, &server->sock_dir);
  if (r < 0)
    return r;
  server->address = sb__strdupf("%s/%s", server->sock_dir, SB__SOCK_NAME);
  if (server->address == NULL)
    return -ENOMEM;
  if (strlen(server->address) >= sizeof sun.sun_path)
    return -ENAMETOOLONG;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, server->address, strlen(server->address) + 1);

  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  *fdp = fd;
  if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0)
    return -errno;
  if (chmod(server->address, 0600) != 0)
    return -errno;
  if (listen(fd, SB__LISTEN_BACKLOG) != 0)
    return -errno;
  return 0;
}

/* socket_path: a socket file there that nobody listens on (connect says
 * ECONNREFUSED) is what a supervisor killed before its cleanup left, and is
 * removed; a live socket or anything that is not a socket is an error. The
 * probe is non-blocking: a full backlog (EAGAIN) means a live listener. */
static int clear_stale_socket(const struct sockaddr_un *sun, uint32_t len) {
  struct stat st;
  int fd, r;

  if (lstat(sun->sun_path, &st) != 0)
    return errno == ENOENT ? 0 : -errno;
  if (!S_ISSOCK(st.st_mode))
    return -EEXIST;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  r = connect(fd, (const struct sockaddr *)sun, (socklen_t)len) == 0 ? 0 : errno;
  close(fd);
  if (r == 0 || r == EAGAIN || r == EINPROGRESS)
    return -EADDRINUSE;
  if (r != ECONNREFUSED)
    return -r;
  return unlink(sun->sun_path) == 0 || errno == ENOENT ? 0 : -errno;
}

/* A Unix socket at the caller's path, or abstract ("@name"). */
static int listen_unix_at(sb_server *server, const sb_server_options *opts, int *fdp) {
  struct sockaddr_un sun;
  uint32_t len;
  bool abstract = opts->socket_path[0] == '@';
  struct stat st;
  int fd, r;

  if (!abstract && opts->socket_path[0] != '/')
    return -EINVAL;
  r = sb_unix_address(opts->socket_path, &sun, &len);
  if (r < 0)
    return r;
  server->address = sb__strdup(opts->socket_path);
  if (server->address == NULL)
    return -ENOMEM;
  if (!abstract && (r = clear_stale_socket(&sun, len)) < 0)
    return r;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  *fdp = fd;
  if (bind(fd, (struct sockaddr *)&sun, (socklen_t)len) != 0)
    return -errno;
  if (!abstract) {
    /* Ours to remove from here on, as long as it is this file. */
    if (stat(server->address, &st) != 0)
      return -errno;
    server->own_sock_file = true;
    server->sock_dev = st.st_dev;
    server->sock_ino = st.st_ino;
    if (chmod(server->address, opts->socket_mode != 0 ? opts->socket_mode : 0600) != 0)
      return -errno;
  }
  if (listen(fd, SB__LISTEN_BACKLOG) != 0)
    return -errno;
  return 0;
}

static void remove_socket(sb_server *server) {
  char lock[PATH_MAX];
  struct stat st;

  if (server->own_sock_file) {
    /* Not a socket someone else bound there since. */
    if (stat(server->address, &st) == 0 && st.st_dev == server->sock_dev &&
        st.st_ino == server->sock_ino)
      unlink(server->address);
    server->own_sock_file = false;
  }
  if (server->sock_dir == NULL)
    return;
  if (server->address != NULL)
    unlink(server->address);
  if (snprintf(lock, sizeof lock, "%s/%s", server->sock_dir, SB__LOCK_NAME) <
      (int)sizeof lock)
    unlink(lock);
  rmdir(server->sock_dir);
  if (server->sock_dir_lock >= 0)
    close(server->sock_dir_lock);
  server->sock_dir_lock = -1;
}

/* The last of the listener's handles closed: the fd is ours to close. */
static bool listener_handle_closed(uv_handle_t *handle) {
  sb_server *server = handle->data;
  if (--server->listener_handles > 0)
    return false;
  close(server->listen_fd);
  server->listen_fd = -1;
  remove_socket(server);
  return true;
}

static void on_failed_listener_closed(uv_handle_t *handle) {
  sb_server *server = handle->data;
  if (listener_handle_closed(handle))
    sb__server_free(server);
}

int sb__listener_start(sb_server *server, const sb_server_options *opts) {
  int fd = -1, r;

  if (server->transport == SB_TRANSPORT_TCP)
    r = listen_tcp(server, opts, &fd);
  else if (opts->socket_path != NULL)
    r = listen_unix_at(server, opts, &fd);
  else
    r = listen_unix(server, &fd);
  if (r >= 0)
    r = sb__accept_start(server, fd);
  if (r >= 0)
    return 0;

  if (server->listener_handles == 0) {
    if (fd >= 0)
      close(fd);
    remove_socket(server);
  } else {
    /* Not expected on Linux once the fd is a listening socket, but handles
     * that were initialised must be closed, and the server must outlive
     * their close callbacks, the last of which frees it. */
    server->free_on_close = true;
    sb__accept_stop(server, on_failed_listener_closed);
  }
  return r;
}

static void on_listener_closed(uv_handle_t *handle) {
  sb_server *server = handle->data;
  if (listener_handle_closed(handle))
    sb__server_maybe_finish(server);
}

void sb__listener_close(sb_server *server) {
  if (server->listener_handles == 0)
    return;
  /* Remove the path now, so nothing new connects while the handles close. */
  remove_socket(server);
  free(server->sock_dir);
  server->sock_dir = NULL;
  sb__accept_stop(server, on_listener_closed);
}

static bool peer_uid_ok(sb_conn *conn, char *msg, size_t msgsz) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  uv_os_fd_t fd;

  if (uv_fileno(&conn->io.handle, &fd) != 0 ||
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    snprintf(msg, msgsz, "cannot tell the peer's uid");
    return false;
  }
  if (cred.uid != geteuid()) {
    snprintf(msg, msgsz, "peer uid %u is not the supervisor's", (unsigned)cred.uid);
    return false;
  }
  return true;
}

bool sb__listener_peer_allowed(sb_server *server, sb_conn *conn, char *msg,
                               size_t msgsz) {
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;
  char text[INET6_ADDRSTRLEN] = "?";

  if (server->transport == SB_TRANSPORT_UNIX)
    return peer_uid_ok(conn, msg, msgsz);
  if (!server->have_allow)
    return true;
  if (uv_tcp_getpeername(&conn->io.tcp, (struct sockaddr *)&ss, &len) != 0) {
    snprintf(msg, msgsz, "cannot tell the peer's address");
    return false;
  }
  if (sb_allowlist_match(&server->allow, &ss))
    return true;
  if (ss.ss_family == AF_INET)
    inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&ss)->sin_addr, text, sizeof text);
  else if (ss.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr, text,
              sizeof text);
  snprintf(msg, msgsz, "peer address %s is not in the allowlist", text);
  return false;
}
