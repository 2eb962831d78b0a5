/*
 * paddock-agent: the guest side of Paddock's VM channel.
 *
 * Runs inside the sandbox VM, talks to the host over one byte stream (a virtio-serial port in
 * the VM; a unix socket or an inherited fd when tested on the host) and:
 *   - runs commands (exec) with streamed, flow-controlled stdout/stderr/stdin, timeouts, kill;
 *   - reads, writes, stats and lists files;
 *   - forwards every TCP connection accepted on 127.0.0.1:3128 to the host as a tunnel stream
 *     (the host's egress proxy decides what may leave).
 * It is a single-threaded poll() loop so that a TCG guest starts it in milliseconds.
 * Wire format: src/guest/PROTOCOL.md.
 *
 * SECURITY: everything a command does is untrusted. The agent must survive it: every child runs
 * in its own session/process group and, in the VM, its own cgroup under /sys/fs/cgroup/paddock
 * (memory, pids and CPU limited together; the whole cgroup is killed on timeout), inherits no
 * agent fd (O_CLOEXEC everywhere), and the agent stays in the root cgroup with an OOM score
 * adjustment of -1000.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/close_range.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

#define PROTO_VERSION 1
#define MAX_PAYLOAD (256 * 1024)
#define WINDOW (1024 * 1024)      /* initial credit, each direction of each stream */
#define GRANT_BATCH (64 * 1024)   /* grant credit back in batches of at least this */
#define READ_CHUNK (64 * 1024)
#define OUT_HIGH (1024 * 1024)    /* stop reading sources while this much waits for the host */
#define EXIT_GRACE_MS 1000        /* see "background processes" in PROTOCOL.md */
#define KILL_GRACE_MS 250         /* after a kill, EXIT goes out by then even if dying is slow */
#define REOPEN_MS 100
#define MAX_STREAMS 4096
#define DEFAULT_PORT_PATH "/dev/virtio-ports/paddock.0"

enum {
  F_HELLO = 1, F_REQ = 2, F_DATA = 3, F_EOF = 4, F_CREDIT = 5, F_EXIT = 6,
  F_RESP = 7, F_ERR = 8, F_TUNNEL_OPEN = 9, F_CLOSE = 10,
};
enum { CH_IN = 0, CH_OUT = 1, CH_ERR = 2 };
enum { K_EXEC, K_BLOB, K_WRITE, K_TUNNEL };
enum { MODE_DEVICE, MODE_UNIX, MODE_FD };

typedef struct stream {
  struct stream *next;
  uint32_t id;
  int kind;
  bool dead;                 /* freed at the end of the loop iteration */
  uint64_t send_credit;      /* DATA bytes we may still send to the host */
  /* host -> guest data (exec stdin, tunnel) */
  buf_t inq;
  size_t grant_pending;      /* bytes consumed from inq not yet granted back */
  bool host_eof;             /* host sent EOF on channel 0 */
  /* exec */
  pid_t pid;
  int out_fd, err_fd, in_fd;
  bool stdin_dead;
  bool exited, timed_out;
  int status;
  int64_t start_ms, deadline_ms, exit_ms;
  int64_t killed_ms;         /* when the agent SIGKILLed the command (timeout, CLOSE), or 0 */
  uint64_t cg_seq;           /* leaf cgroup CG_ROOT/x<seq>, 0 when cgroups are off */
  int64_t cg_deadline_ms;    /* the timeout also bounds what the command leaves running */
  /* blob (read/list): source fd or in-memory body */
  int src_fd;
  buf_t mem;
  uint64_t total;
  /* write */
  int dst_fd;
  /* tunnel */
  int sock;
  bool sock_rd_eof, sock_wr_shut;
} stream_t;

static int chan_mode = MODE_DEVICE;
static const char *chan_path = DEFAULT_PORT_PATH;
static int chan_fd = -1;
static bool synced;
static buf_t chan_in, chan_out;
static int64_t reopen_at = 0;
static int sig_fd = -1, listen_fd = -1;
static int listen_port = 3128;
static stream_t *streams;
static int nstreams;
static uint32_t next_guest_id = 2;
static sigset_t orig_mask;
static char uname_str[256];

/* ---------- small helpers ---------- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("paddock-agent: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static uint32_t get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static const struct { int num; const char *name; } SIGNALS[] = {
  {SIGHUP, "SIGHUP"}, {SIGINT, "SIGINT"}, {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
  {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"}, {SIGFPE, "SIGFPE"},
  {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
  {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"}, {SIGCHLD, "SIGCHLD"},
  {SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"}, {SIGTSTP, "SIGTSTP"}, {SIGTTIN, "SIGTTIN"},
  {SIGTTOU, "SIGTTOU"}, {SIGURG, "SIGURG"}, {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
  {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"}, {SIGIO, "SIGIO"},
  {SIGPWR, "SIGPWR"}, {SIGSYS, "SIGSYS"},
};

static const char *signal_name(int sig) {
  for (size_t i = 0; i < sizeof SIGNALS / sizeof SIGNALS[0]; i++)
    if (SIGNALS[i].num == sig) return SIGNALS[i].name;
  return NULL;
}

static int signal_parse(const char *s) {
  if (!s) return SIGTERM;
  char full[32];
  if (strncmp(s, "SIG", 3) != 0) snprintf(full, sizeof full, "SIG%s", s);
  else snprintf(full, sizeof full, "%s", s);
  for (size_t i = 0; i < sizeof SIGNALS / sizeof SIGNALS[0]; i++)
    if (strcmp(SIGNALS[i].name, full) == 0) return SIGNALS[i].num;
  return -1;
}

static const struct { int num; const char *name; } ERRNOS[] = {
  {ENOENT, "ENOENT"}, {EACCES, "EACCES"}, {EPERM, "EPERM"}, {EISDIR, "EISDIR"},
  {ENOTDIR, "ENOTDIR"}, {EEXIST, "EEXIST"}, {EROFS, "EROFS"}, {ENOSPC, "ENOSPC"},
  {EDQUOT, "EDQUOT"}, {EIO, "EIO"}, {ELOOP, "ELOOP"}, {ENAMETOOLONG, "ENAMETOOLONG"},
  {EMFILE, "EMFILE"}, {ENFILE, "ENFILE"}, {EAGAIN, "EAGAIN"}, {ENOMEM, "ENOMEM"},
  {EINVAL, "EINVAL"}, {EFBIG, "EFBIG"}, {ETXTBSY, "ETXTBSY"}, {EBUSY, "EBUSY"},
  {ESRCH, "ESRCH"}, {ENOTEMPTY, "ENOTEMPTY"}, {EXDEV, "EXDEV"},
};

static const char *errno_name(int e) {
  for (size_t i = 0; i < sizeof ERRNOS / sizeof ERRNOS[0]; i++)
    if (ERRNOS[i].num == e) return ERRNOS[i].name;
  return "EIO";
}

/* ---------- resource limits (cgroup v2) ----------
 *
 * In the VM (device mode, root) every command runs in its own leaf cgroup CG_ROOT/x<seq>. The
 * CG_ROOT group as a whole gets memory.max = RAM minus a reserve, pids.max and its own CPU share,
 * so that a memory hog, a fork bomb or a busy loop can exhaust only the commands' share: the
 * agent (in the root cgroup, oom_score_adj -1000) keeps memory, pids and CPU to answer the host.
 * On timeout or kill the whole leaf is killed with cgroup.kill, which also reaches processes
 * that left the process group (setsid, double fork). Without cgroup2 (or on the host, in the
 * --unix/--fd test modes) the agent falls back to process groups. */

#define CG_MOUNT "/sys/fs/cgroup"
#define CG_ROOT CG_MOUNT "/paddock"
#define CG_PIDS_MAX 1024
#define CG_RESERVE_MIN (96ull << 20) /* kept for the agent and the kernel... */
#define CG_RESERVE_PCT 15            /* ...or this share of RAM, whichever is larger */
#define CG_RETRY_MS 10000            /* backstop for removing leaves; SIGCHLD does it normally */

typedef struct {
  uint64_t seq;
  int64_t deadline_ms; /* kill what is left at this time (0: never) */
  bool killed;
} cg_leaf_t;

static int cg_mode = -1;     /* --cgroups / --no-cgroups; -1: on in device mode */
static bool cg_on;           /* set up and in use */
static uint64_t cg_mem_max, cg_next_seq = 1;
static cg_leaf_t *cg_leaves; /* leaves of finished commands, waiting to be empty */
static size_t cg_nleaves, cg_cap;
static int64_t cg_retry_at;

static int write_str(const char *path, const char *v) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, v, strlen(v));
  int e = errno;
  close(fd);
  if (n < 0) { errno = e; return -1; }
  return 0;
}

static void cg_path(char *out, size_t n, uint64_t seq, const char *file) {
  snprintf(out, n, CG_ROOT "/x%llu/%s", (unsigned long long)seq, file ? file : "");
}

/* Reads `key N` from a flat-keyed cgroup file (memory.events); -1 if absent. */
static long long cg_read_key(uint64_t seq, const char *file, const char *key) {
  char p[128];
  cg_path(p, sizeof p, seq, file);
  FILE *f = fopen(p, "re");
  if (!f) return -1;
  char k[64];
  long long v, found = -1;
  while (fscanf(f, "%63s %lld", k, &v) == 2)
    if (strcmp(k, key) == 0) { found = v; break; }
  fclose(f);
  return found;
}

/* SIGKILLs every process in leaf seq: cgroup.kill (Linux 5.14+), else each pid it lists. */
static void cg_kill(uint64_t seq) {
  char p[128];
  cg_path(p, sizeof p, seq, "cgroup.kill");
  if (write_str(p, "1") == 0) return;
  /* Older kernels: a racing fork can escape one pass; cg_sweep() repeats it while not empty. */
  cg_path(p, sizeof p, seq, "cgroup.procs");
  FILE *f = fopen(p, "re");
  if (!f) return;
  int pid;
  while (fscanf(f, "%d", &pid) == 1)
    if (pid > 1) kill(pid, SIGKILL);
  fclose(f);
}

static bool cg_rmdir(uint64_t seq) {
  char p[128];
  cg_path(p, sizeof p, seq, NULL);
  return rmdir(p) == 0 || errno == ENOENT;
}

/* Forgets a finished command's leaf: removed now if empty, else when its last process is gone. */
static void cg_release(uint64_t seq, int64_t deadline_ms) {
  if (cg_rmdir(seq)) return;
  if (cg_nleaves == cg_cap) {
    cg_cap = cg_cap ? cg_cap * 2 : 16;
    cg_leaves = realloc(cg_leaves, cg_cap * sizeof *cg_leaves);
    if (!cg_leaves) abort();
  }
  cg_leaves[cg_nleaves++] = (cg_leaf_t){.seq = seq, .deadline_ms = deadline_ms};
  if (!cg_retry_at) cg_retry_at = now_ms() + CG_RETRY_MS;
}

/* Kills leftovers whose command's timeout has passed and removes empty leaves. */
static void cg_sweep(int64_t now) {
  size_t j = 0;
  for (size_t i = 0; i < cg_nleaves; i++) {
    cg_leaf_t *l = &cg_leaves[i];
    if (l->deadline_ms && now >= l->deadline_ms && !l->killed) {
      cg_kill(l->seq);
      l->killed = true;
    }
    if (cg_rmdir(l->seq)) continue;
    if (l->killed && errno == EBUSY) cg_kill(l->seq); /* no-op once cgroup.kill has run */
    cg_leaves[j++] = *l;
  }
  cg_nleaves = j;
  cg_retry_at = cg_nleaves ? now + CG_RETRY_MS : 0;
}

/* When the main loop must wake up for the leaves (or -1). */
static int64_t cg_next_wake(void) {
  int64_t t = cg_retry_at ? cg_retry_at : -1;
  for (size_t i = 0; i < cg_nleaves; i++)
    if (cg_leaves[i].deadline_ms && !cg_leaves[i].killed && (t < 0 || cg_leaves[i].deadline_ms < t))
      t = cg_leaves[i].deadline_ms;
  return t;
}

static bool cg_enable(const char *group, const char *ctl) {
  char p[128], v[32];
  snprintf(p, sizeof p, "%s/cgroup.subtree_control", group);
  snprintf(v, sizeof v, "+%s", ctl);
  if (write_str(p, v) == 0) return true;
  logmsg("cannot enable the %s controller in %s: %s", ctl, group, strerror(errno));
  return false;
}

static bool cg_setup(void) {
  struct statfs sf;
  if (statfs(CG_MOUNT, &sf) != 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
    if (mount("cgroup2", CG_MOUNT, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
      logmsg("cannot mount cgroup2 at " CG_MOUNT ": %s; commands run without resource limits", strerror(errno));
      return false;
    }
    if (statfs(CG_MOUNT, &sf) != 0 || sf.f_type != CGROUP2_SUPER_MAGIC) return false;
  }
  /* We must be in the root cgroup: everything in CG_ROOT shares the limits. */
  char self[64] = {0};
  int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) { (void)!read(fd, self, sizeof self - 1); close(fd); }
  if (strcmp(self, "0::/\n") != 0) {
    logmsg("not in the root cgroup (%s); commands run without resource limits", self);
    return false;
  }
  if (!cg_enable(CG_MOUNT, "memory") || !cg_enable(CG_MOUNT, "pids")) return false;
  /* cpu: the commands together weigh as much as one process of the root cgroup, so a fork bomb's
   * thousand runnable processes cannot starve the agent. Optional. */
  bool cpu = cg_enable(CG_MOUNT, "cpu");
  if (mkdir(CG_ROOT, 0755) != 0 && errno != EEXIST) {
    logmsg("cannot create " CG_ROOT ": %s", strerror(errno));
    return false;
  }
  /* Leaves of a previous agent (it crashed and paddock-init restarted it): their commands have
   * no host any more, as after a channel loss. Kill them and pick new names. */
  DIR *d = opendir(CG_ROOT);
  if (d) {
    struct dirent *de;
    while ((de = readdir(d))) {
      if (de->d_name[0] != 'x') continue;
      uint64_t seq = strtoull(de->d_name + 1, NULL, 10);
      if (!seq) continue;
      if (seq >= cg_next_seq) cg_next_seq = seq + 1;
      cg_kill(seq);
      cg_release(seq, 0);
    }
    closedir(d);
  }
  if (!cg_enable(CG_ROOT, "memory") || !cg_enable(CG_ROOT, "pids")) return false;
  if (cpu) cg_enable(CG_ROOT, "cpu");

  struct sysinfo si;
  if (sysinfo(&si) != 0) return false;
  uint64_t total = (uint64_t)si.totalram * si.mem_unit;
  uint64_t reserve = total / 100 * CG_RESERVE_PCT;
  if (reserve < CG_RESERVE_MIN) reserve = CG_RESERVE_MIN;
  if (reserve > total / 2) reserve = total / 2; /* a tiny VM: split it */
  cg_mem_max = (total - reserve) & ~4095ull;
  char v[32];
  snprintf(v, sizeof v, "%llu", (unsigned long long)cg_mem_max);
  if (write_str(CG_ROOT "/memory.max", v) != 0) {
    logmsg("cannot set " CG_ROOT "/memory.max: %s", strerror(errno));
    return false;
  }
  if (write_str(CG_ROOT "/memory.swap.max", "0") != 0 && errno != ENOENT)
    logmsg("cannot set memory.swap.max: %s", strerror(errno));
  snprintf(v, sizeof v, "%d", CG_PIDS_MAX);
  if (write_str(CG_ROOT "/pids.max", v) != 0) {
    logmsg("cannot set " CG_ROOT "/pids.max: %s", strerror(errno));
    return false;
  }
  return true;
}

/* ---------- channel output ---------- */

static void send_frame2(uint8_t type, uint32_t id, const void *p1, size_t n1, const void *p2, size_t n2) {
  if (chan_fd < 0) return;
  /* Before the host has said HELLO, only our own HELLO goes out (anything else would be lost
   * or misread by a host that is not there yet). */
  if (!synced && type != F_HELLO) return;
  uint8_t hdr[9];
  put_be32(hdr, (uint32_t)(5 + n1 + n2));
  hdr[4] = type;
  put_be32(hdr + 5, id);
  buf_append(&chan_out, hdr, 9);
  buf_append(&chan_out, p1, n1);
  buf_append(&chan_out, p2, n2);
}

static void send_frame(uint8_t type, uint32_t id, const void *p, size_t n) { send_frame2(type, id, p, n, NULL, 0); }

static void send_json(uint8_t type, uint32_t id, buf_t *json) {
  send_frame(type, id, buf_head(json), buf_avail(json));
  buf_free(json);
}

static void send_data(uint32_t id, uint8_t ch, const void *p, size_t n) { send_frame2(F_DATA, id, &ch, 1, p, n); }
static void send_eof(uint32_t id, uint8_t ch) { send_frame(F_EOF, id, &ch, 1); }
static void send_credit(uint32_t id, uint32_t n) {
  uint8_t b[4];
  put_be32(b, n);
  send_frame(F_CREDIT, id, b, 4);
}

static void send_err(uint32_t id, const char *code, const char *message) {
  buf_t j = {0};
  buf_append_str(&j, "{\"code\":");
  json_write_str(&j, code, strlen(code));
  buf_append_str(&j, ",\"message\":");
  json_write_str(&j, message, strlen(message));
  buf_append_str(&j, "}");
  send_json(F_ERR, id, &j);
}

/* Sends ERR for errno e while doing `verb` on path, as a sentence a person can read. */
static void send_errno(uint32_t id, int e, const char *verb, const char *path) {
  char msg[4096 + 256];
  switch (e) {
    case ENOENT: snprintf(msg, sizeof msg, "%s does not exist in the sandbox.", path); break;
    case EACCES:
    case EPERM: snprintf(msg, sizeof msg, "Permission denied: cannot %s %s.", verb, path); break;
    case EISDIR: snprintf(msg, sizeof msg, "%s is a folder, not a file.", path); break;
    case ENOTDIR: snprintf(msg, sizeof msg, "%s is not a folder (or a part of the path is not).", path); break;
    case EROFS: snprintf(msg, sizeof msg, "Cannot %s %s: it is on a read-only folder.", verb, path); break;
    case ENOSPC:
    case EDQUOT: snprintf(msg, sizeof msg, "Cannot %s %s: the sandbox disk is full.", verb, path); break;
    default: snprintf(msg, sizeof msg, "Cannot %s %s: %s.", verb, path, strerror(e));
  }
  send_err(id, errno_name(e), msg);
}

/* ---------- streams ---------- */

static stream_t *find_stream(uint32_t id) {
  for (stream_t *s = streams; s; s = s->next)
    if (s->id == id && !s->dead) return s;
  return NULL;
}

static stream_t *new_stream(uint32_t id, int kind) {
  stream_t *s = calloc(1, sizeof *s);
  if (!s) abort();
  s->id = id;
  s->kind = kind;
  s->send_credit = WINDOW;
  s->out_fd = s->err_fd = s->in_fd = s->src_fd = s->dst_fd = s->sock = -1;
  s->next = streams;
  streams = s;
  nstreams++;
  return s;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Marks a stream finished and releases its fds now; the struct is freed by sweep(). */
static void kill_stream(stream_t *s) {
  if (s->dead) return;
  s->dead = true;
  if (s->cg_seq) {
    cg_release(s->cg_seq, s->cg_deadline_ms);
    s->cg_seq = 0;
  }
  close_fd(&s->out_fd);
  close_fd(&s->err_fd);
  close_fd(&s->in_fd);
  close_fd(&s->src_fd);
  close_fd(&s->dst_fd);
  close_fd(&s->sock);
  buf_free(&s->inq);
  buf_free(&s->mem);
}

static void sweep(void) {
  stream_t **pp = &streams;
  while (*pp) {
    stream_t *s = *pp;
    if (s->dead) {
      *pp = s->next;
      free(s);
      nstreams--;
    } else {
      pp = &s->next;
    }
  }
}

/* Grants back host->guest credit for bytes this stream has consumed. */
static void maybe_grant(stream_t *s, bool force) {
  if (s->grant_pending == 0) return;
  if (force || s->grant_pending >= GRANT_BATCH || buf_avail(&s->inq) == 0) {
    send_credit(s->id, (uint32_t)s->grant_pending);
    s->grant_pending = 0;
  }
}

/* ---------- hello ---------- */

static void send_hello(const char *nonce) {
  buf_t j = {0};
  buf_printf(&j, "{\"version\":%d,\"agent\":\"paddock-agent\",\"pid\":%d,\"uname\":", PROTO_VERSION, (int)getpid());
  json_write_str(&j, uname_str, strlen(uname_str));
  buf_printf(&j, ",\"listenPort\":%d", listen_fd >= 0 ? listen_port : 0);
  if (cg_on)
    buf_printf(&j, ",\"limits\":{\"cgroup\":\"" CG_ROOT "\",\"memoryMaxBytes\":%llu,\"pidsMax\":%d}",
               (unsigned long long)cg_mem_max, CG_PIDS_MAX);
  else
    buf_append_str(&j, ",\"limits\":null");
  if (nonce) {
    buf_append_str(&j, ",\"nonce\":");
    json_write_str(&j, nonce, strlen(nonce));
  }
  buf_append_str(&j, "}");
  send_json(F_HELLO, 0, &j);
}

/* ---------- exec ---------- */

static const char *DEFAULT_ENV[] = {
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  "HOME=/root",
  "LANG=C.UTF-8",
  "HTTP_PROXY=http://127.0.0.1:%d",
  "HTTPS_PROXY=http://127.0.0.1:%d",
  "http_proxy=http://127.0.0.1:%d",
  "https_proxy=http://127.0.0.1:%d",
  "NO_PROXY=localhost,127.0.0.1",
  "no_proxy=localhost,127.0.0.1",
};

static void env_set(char ***envp, size_t *n, char *entry) {
  size_t klen = strcspn(entry, "=");
  for (size_t i = 0; i < *n; i++) {
    if (strncmp((*envp)[i], entry, klen) == 0 && (*envp)[i][klen] == '=') {
      free((*envp)[i]);
      (*envp)[i] = entry;
      return;
    }
  }
  *envp = realloc(*envp, (*n + 2) * sizeof(char *));
  if (!*envp) abort();
  (*envp)[(*n)++] = entry;
  (*envp)[*n] = NULL;
}

static void free_strv(char **v) {
  if (!v) return;
  for (size_t i = 0; v[i]; i++) free(v[i]);
  free(v);
}

static void op_exec(uint32_t id, const jval_t *req) {
  const jval_t *jargv = json_get(req, "argv");
  const char *shell = json_get_str(req, "shell");
  const char *cwd = json_get_str(req, "cwd");
  const jval_t *jenv = json_get(req, "env");
  const jval_t *jstdin = json_get(req, "stdin");
  const jval_t *jtimeout = json_get(req, "timeoutMs");
  bool want_stdin = jstdin && jstdin->t == J_BOOL && jstdin->b;
  if (!cwd) cwd = "/";

  char **argv = NULL;
  if (jargv && jargv->t == J_ARR && !shell) {
    if (jargv->count == 0) { send_err(id, "EINVAL", "The command is empty."); return; }
    argv = calloc(jargv->count + 1, sizeof(char *));
    if (!argv) abort();
    for (size_t i = 0; i < jargv->count; i++) {
      const jval_t *a = &jargv->items[i];
      if (a->t != J_STR || strlen(a->s) != a->slen) {
        free_strv(argv);
        send_err(id, "EINVAL", "Every argument of the command must be a string without NUL bytes.");
        return;
      }
      argv[i] = strdup(a->s);
    }
  } else if (shell && !jargv) {
    argv = calloc(4, sizeof(char *));
    if (!argv) abort();
    argv[0] = strdup("/bin/sh");
    argv[1] = strdup("-c");
    argv[2] = strdup(shell);
  } else {
    send_err(id, "EINVAL", "An exec request needs exactly one of argv or shell.");
    return;
  }

  char **envp = calloc(1, sizeof(char *));
  size_t nenv = 0;
  if (!envp) abort();
  for (size_t i = 0; i < sizeof DEFAULT_ENV / sizeof DEFAULT_ENV[0]; i++) {
    char *e;
    if (asprintf(&e, DEFAULT_ENV[i], listen_port) < 0) abort();
    env_set(&envp, &nenv, e);
  }
  if (jenv && jenv->t == J_OBJ) {
    for (size_t i = 0; i < jenv->count; i++) {
      const jval_t *v = &jenv->items[i];
      const char *k = jenv->keys[i];
      if (v->t != J_STR || strlen(v->s) != v->slen || !*k || strchr(k, '=')) continue;
      char *e;
      if (asprintf(&e, "%s=%s", k, v->s) < 0) abort();
      env_set(&envp, &nenv, e);
    }
  }

  int outp[2] = {-1, -1}, errp[2] = {-1, -1}, inp[2] = {-1, -1};
  int ok = pipe2(outp, O_CLOEXEC) == 0 && pipe2(errp, O_CLOEXEC) == 0;
  if (ok) {
    if (want_stdin) ok = pipe2(inp, O_CLOEXEC) == 0;
    else ok = (inp[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;
  }
  /* The command's own cgroup, created before the fork; the child moves itself in before exec,
   * so nothing it runs is ever outside it. */
  uint64_t seq = 0;
  int procs_fd = -1;
  if (ok && cg_on) {
    seq = cg_next_seq++;
    char p[128];
    cg_path(p, sizeof p, seq, NULL);
    ok = mkdir(p, 0755) == 0;
    if (ok) {
      /* An OOM kill takes the whole command, not one random process of it. */
      cg_path(p, sizeof p, seq, "memory.oom.group");
      (void)write_str(p, "1");
      cg_path(p, sizeof p, seq, "cgroup.procs");
      procs_fd = open(p, O_WRONLY | O_CLOEXEC);
      ok = procs_fd >= 0;
      if (!ok) { int e = errno; cg_rmdir(seq); errno = e; }
    }
    if (!ok) seq = 0;
  }
  pid_t pid = -1;
  int fork_errno = 0;
  if (ok) {
    pid = fork();
    if (pid < 0) fork_errno = errno;
  } else {
    fork_errno = errno;
  }
  if (pid == 0) {
    /* child */
    sigprocmask(SIG_SETMASK, &orig_mask, NULL);
    signal(SIGPIPE, SIG_DFL);
    setsid();
    dup2(inp[0], 0);
    dup2(outp[1], 1);
    dup2(errp[1], 2);
    if (procs_fd >= 0 && write(procs_fd, "0", 1) != 1) {
      /* SECURITY: never run a command outside the limits. */
      dprintf(2, "paddock-agent: cannot put the command under the sandbox's limits: %s\n", strerror(errno));
      _exit(126);
    }
    int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (oom >= 0) { (void)!write(oom, "0", 1); close(oom); }
    if (chdir(cwd) < 0) {
      dprintf(2, "paddock-agent: cannot use %s as the working folder: %s\n", cwd, strerror(errno));
      _exit(126);
    }
    extern char **environ;
    environ = envp;
    execvp(argv[0], argv);
    int e = errno;
    if (e == ENOENT) dprintf(2, "paddock-agent: %s: command not found\n", argv[0]);
    else dprintf(2, "paddock-agent: %s: %s\n", argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  free_strv(argv);
  free_strv(envp);
  close_fd(&outp[1]);
  close_fd(&errp[1]);
  close_fd(&inp[0]);
  close_fd(&procs_fd);
  if (pid < 0) {
    if (seq) cg_rmdir(seq);
    close_fd(&outp[0]);
    close_fd(&errp[0]);
    close_fd(&inp[1]);
    char msg[256];
    snprintf(msg, sizeof msg, "The sandbox could not start the command: %s.", strerror(fork_errno));
    send_err(id, errno_name(fork_errno), msg);
    return;
  }
  stream_t *s = new_stream(id, K_EXEC);
  s->pid = pid;
  s->out_fd = outp[0];
  s->err_fd = errp[0];
  s->in_fd = inp[1];
  s->stdin_dead = !want_stdin;
  set_nonblock(s->out_fd);
  set_nonblock(s->err_fd);
  if (s->in_fd >= 0) set_nonblock(s->in_fd);
  s->start_ms = now_ms();
  if (jtimeout && jtimeout->t == J_NUM && jtimeout->n > 0) s->deadline_ms = s->start_ms + (int64_t)jtimeout->n;
  s->cg_seq = seq;
  s->cg_deadline_ms = s->deadline_ms;
}

/* SIGKILLs the command and everything it started (its cgroup, else its process group). */
static void exec_kill_all(stream_t *s) {
  if (s->cg_seq) cg_kill(s->cg_seq);
  kill(-s->pid, SIGKILL);
  if (!s->exited) {
    kill(s->pid, SIGKILL);
    if (!s->killed_ms) s->killed_ms = now_ms();
  }
}

static void exec_send_exit(stream_t *s) {
  int code = 0;
  const char *sig = NULL;
  if (!s->exited) {
    /* Killed, still dying (under TCG a thousand processes take seconds to exit): it can no
     * longer run any code of its own, so report it now; it is reaped later. */
    code = 128 + SIGKILL;
    sig = "SIGKILL";
    s->exit_ms = now_ms();
  } else if (WIFEXITED(s->status)) code = WEXITSTATUS(s->status);
  else if (WIFSIGNALED(s->status)) {
    code = 128 + WTERMSIG(s->status);
    sig = signal_name(WTERMSIG(s->status));
  }
  if (s->timed_out) code = 124;
  /* The leaf is new for each command, so any OOM kill counted there hit this command. */
  bool oom = s->cg_seq && cg_read_key(s->cg_seq, "memory.events", "oom_kill") > 0;
  buf_t j = {0};
  buf_printf(&j, "{\"exitCode\":%d,\"signal\":", code);
  if (sig) json_write_str(&j, sig, strlen(sig));
  else buf_append_str(&j, "null");
  buf_printf(&j, ",\"timedOut\":%s,\"oomKilled\":%s,\"durationMs\":%lld}", s->timed_out ? "true" : "false",
             oom ? "true" : "false", (long long)(s->exit_ms - s->start_ms));
  send_json(F_EXIT, s->id, &j);
  kill_stream(s);
}

/* Reads one chunk of a child's stdout/stderr into a DATA frame (within credit). */
static void exec_pump(stream_t *s, int *fd, uint8_t ch) {
  if (*fd < 0 || s->send_credit == 0) return;
  static uint8_t tmp[READ_CHUNK];
  size_t want = s->send_credit < READ_CHUNK ? (size_t)s->send_credit : READ_CHUNK;
  ssize_t n = read(*fd, tmp, want);
  if (n > 0) {
    send_data(s->id, ch, tmp, (size_t)n);
    s->send_credit -= (uint64_t)n;
  } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
    close_fd(fd);
    send_eof(s->id, ch);
  }
}

static void exec_flush_stdin(stream_t *s) {
  while (s->in_fd >= 0 && buf_avail(&s->inq) > 0) {
    ssize_t n = write(s->in_fd, buf_head(&s->inq), buf_avail(&s->inq));
    if (n > 0) {
      buf_consume(&s->inq, (size_t)n);
      s->grant_pending += (size_t)n;
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      break;
    } else {
      /* EPIPE: the command closed its stdin. Drop what is queued; later data is discarded. */
      s->grant_pending += buf_avail(&s->inq);
      buf_clear(&s->inq);
      close_fd(&s->in_fd);
      s->stdin_dead = true;
    }
  }
  if (s->in_fd >= 0 && s->host_eof && buf_avail(&s->inq) == 0) close_fd(&s->in_fd);
  maybe_grant(s, false);
}

static void op_kill(uint32_t id, const jval_t *req) {
  const jval_t *t = json_get(req, "target");
  const jval_t *jsig = json_get(req, "signal");
  int sig = SIGTERM;
  if (jsig && jsig->t == J_STR) sig = signal_parse(jsig->s);
  else if (jsig && jsig->t == J_NUM) sig = (int)jsig->n;
  if (sig <= 0 || sig >= 65) { send_err(id, "EINVAL", "Unknown signal."); return; }
  stream_t *s = (t && t->t == J_NUM) ? find_stream((uint32_t)t->n) : NULL;
  if (!s || s->kind != K_EXEC || s->exited) {
    send_err(id, "ESRCH", "That command is no longer running.");
    return;
  }
  kill(-s->pid, sig);
  kill(s->pid, sig);
  send_frame(F_RESP, id, "{}", 2);
}

/* ---------- files ---------- */

static void stat_json(buf_t *j, const char *path, const struct stat *st) {
  const char *type = S_ISREG(st->st_mode) ? "file" : S_ISDIR(st->st_mode) ? "dir" : S_ISLNK(st->st_mode) ? "symlink" : "other";
  buf_append_str(j, "{\"path\":");
  json_write_str(j, path, strlen(path));
  buf_printf(j, ",\"type\":\"%s\",\"size\":%lld,\"mode\":%u,\"mtimeMs\":%lld}", type, (long long)st->st_size,
             (unsigned)(st->st_mode & 07777),
             (long long)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000);
}

static void op_stat(uint32_t id, const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0) { send_errno(id, errno, "look at", path); return; }
  buf_t j = {0};
  stat_json(&j, path, &st);
  send_json(F_RESP, id, &j);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void op_list(uint32_t id, const char *path) {
  DIR *d = opendir(path);
  if (!d) { send_errno(id, errno, "list", path); return; }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      names = realloc(names, cap * sizeof(char *));
      if (!names) abort();
    }
    names[n++] = strdup(de->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof(char *), cmp_names);
  stream_t *s = new_stream(id, K_BLOB);
  buf_append_str(&s->mem, "[");
  size_t plen = strlen(path);
  bool slash = plen > 0 && path[plen - 1] == '/';
  bool first = true;
  for (size_t i = 0; i < n; i++) {
    char *full;
    if (asprintf(&full, "%s%s%s", path, slash ? "" : "/", names[i]) < 0) abort();
    struct stat st;
    if (lstat(full, &st) == 0) {
      if (!first) buf_append_str(&s->mem, ",");
      first = false;
      stat_json(&s->mem, full, &st);
    }
    free(full);
    free(names[i]);
  }
  free(names);
  buf_append_str(&s->mem, "]");
}

static void op_read(uint32_t id, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) { send_errno(id, errno, "read", path); return; }
  struct stat st;
  if (fstat(fd, &st) < 0) { send_errno(id, errno, "read", path); close(fd); return; }
  if (S_ISDIR(st.st_mode)) { send_errno(id, EISDIR, "read", path); close(fd); return; }
  if (!S_ISREG(st.st_mode)) {
    char msg[4200];
    snprintf(msg, sizeof msg, "%s is not a regular file, so it cannot be read as one.", path);
    send_err(id, "EINVAL", msg);
    close(fd);
    return;
  }
  stream_t *s = new_stream(id, K_BLOB);
  s->src_fd = fd;
}

/* Sends the next chunk of a read/list body; returns true if it made progress. */
static bool blob_pump(stream_t *s) {
  if (s->send_credit == 0) return false;
  static uint8_t tmp[READ_CHUNK];
  size_t want = s->send_credit < READ_CHUNK ? (size_t)s->send_credit : READ_CHUNK;
  ssize_t n;
  if (s->src_fd >= 0) {
    n = read(s->src_fd, tmp, want);
    if (n < 0 && errno == EINTR) return true;
    if (n < 0) { send_errno(s->id, errno, "read", "the file"); kill_stream(s); return true; }
  } else {
    n = (ssize_t)(buf_avail(&s->mem) < want ? buf_avail(&s->mem) : want);
    memcpy(tmp, buf_head(&s->mem), (size_t)n);
    buf_consume(&s->mem, (size_t)n);
  }
  if (n > 0) {
    send_data(s->id, CH_OUT, tmp, (size_t)n);
    s->send_credit -= (uint64_t)n;
    s->total += (uint64_t)n;
    return true;
  }
  send_eof(s->id, CH_OUT);
  buf_t j = {0};
  buf_printf(&j, "{\"size\":%llu}", (unsigned long long)s->total);
  send_json(F_RESP, s->id, &j);
  kill_stream(s);
  return true;
}

static void op_write(uint32_t id, const char *path, const jval_t *req) {
  const jval_t *jm = json_get(req, "mode");
  mode_t mode = (jm && jm->t == J_NUM) ? (mode_t)jm->n & 07777 : 0644;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, mode);
  if (fd < 0) { send_errno(id, errno, "write", path); return; }
  if (jm && jm->t == J_NUM && fchmod(fd, mode) < 0) { send_errno(id, errno, "set the mode of", path); close(fd); return; }
  stream_t *s = new_stream(id, K_WRITE);
  s->dst_fd = fd;
  s->mem.data = (uint8_t *)strdup(path); /* remember the path for error messages */
  s->mem.cap = strlen(path) + 1;
}

static void write_data(stream_t *s, const uint8_t *p, size_t n) {
  const char *path = (const char *)s->mem.data;
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(s->dst_fd, p + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) { send_errno(s->id, errno, "write", path); kill_stream(s); return; }
    done += (size_t)w;
  }
  s->total += n;
  send_credit(s->id, (uint32_t)n);
}

static void write_finish(stream_t *s) {
  const char *path = (const char *)s->mem.data;
  if (close(s->dst_fd) < 0) {
    s->dst_fd = -1;
    send_errno(s->id, errno, "write", path);
  } else {
    s->dst_fd = -1;
    buf_t j = {0};
    buf_printf(&j, "{\"size\":%llu}", (unsigned long long)s->total);
    send_json(F_RESP, s->id, &j);
  }
  kill_stream(s);
}

/* ---------- tunnels ---------- */

static void setup_listener(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { logmsg("proxy forwarder socket: %s", strerror(errno)); return; }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0) {
    logmsg("proxy forwarder cannot listen on 127.0.0.1:%d: %s", listen_port, strerror(errno));
    close(fd);
    return;
  }
  listen_fd = fd;
}

static uint32_t alloc_guest_id(void) {
  for (;;) {
    uint32_t id = next_guest_id;
    next_guest_id += 2;
    if (next_guest_id >= 0x80000000u) next_guest_id = 2;
    if (!find_stream(id)) return id;
  }
}

static void accept_tunnels(void) {
  for (;;) {
    int c = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;
    if (!synced || nstreams >= MAX_STREAMS) { close(c); continue; }
    stream_t *s = new_stream(alloc_guest_id(), K_TUNNEL);
    s->sock = c;
    buf_t j = {0};
    buf_printf(&j, "{\"port\":%d}", listen_port);
    send_json(F_TUNNEL_OPEN, s->id, &j);
  }
}

static void tunnel_maybe_close(stream_t *s) {
  if (s->sock_rd_eof && s->sock_wr_shut) {
    send_frame(F_CLOSE, s->id, NULL, 0);
    kill_stream(s);
  }
}

static void tunnel_read(stream_t *s) {
  if (s->sock < 0 || s->sock_rd_eof || s->send_credit == 0) return;
  static uint8_t tmp[READ_CHUNK];
  size_t want = s->send_credit < READ_CHUNK ? (size_t)s->send_credit : READ_CHUNK;
  ssize_t n = read(s->sock, tmp, want);
  if (n > 0) {
    send_data(s->id, CH_IN, tmp, (size_t)n);
    s->send_credit -= (uint64_t)n;
  } else if (n == 0) {
    s->sock_rd_eof = true;
    send_eof(s->id, CH_IN);
    tunnel_maybe_close(s);
  } else if (errno != EAGAIN && errno != EINTR) {
    send_frame(F_CLOSE, s->id, NULL, 0);
    kill_stream(s);
  }
}

static void tunnel_flush(stream_t *s) {
  while (s->sock >= 0 && buf_avail(&s->inq) > 0) {
    ssize_t n = send(s->sock, buf_head(&s->inq), buf_avail(&s->inq), MSG_NOSIGNAL);
    if (n > 0) {
      buf_consume(&s->inq, (size_t)n);
      s->grant_pending += (size_t)n;
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      break;
    } else {
      send_frame(F_CLOSE, s->id, NULL, 0);
      kill_stream(s);
      return;
    }
  }
  if (s->host_eof && !s->sock_wr_shut && buf_avail(&s->inq) == 0) {
    shutdown(s->sock, SHUT_WR);
    s->sock_wr_shut = true;
  }
  maybe_grant(s, false);
  tunnel_maybe_close(s);
}

/* ---------- requests from the host ---------- */

static void handle_req(uint32_t id, const uint8_t *p, size_t n) {
  if (id == 0 || (id & 1) == 0) { send_err(id, "EPROTO", "Host requests must use odd stream ids."); return; }
  if (find_stream(id)) { send_err(id, "EPROTO", "That stream id is already in use."); return; }
  if (nstreams >= MAX_STREAMS) { send_err(id, "EAGAIN", "Too many operations are running in the sandbox."); return; }
  jval_t *req = json_parse((const char *)p, n);
  const char *op = req ? json_get_str(req, "op") : NULL;
  const char *path = req ? json_get_str(req, "path") : NULL;
  if (!op) {
    send_err(id, "EPROTO", "The request is not valid JSON with an op.");
  } else if (strcmp(op, "ping") == 0) {
    send_frame(F_RESP, id, "{}", 2);
  } else if (strcmp(op, "exec") == 0) {
    op_exec(id, req);
  } else if (strcmp(op, "kill") == 0) {
    op_kill(id, req);
  } else if (strcmp(op, "read") == 0 || strcmp(op, "write") == 0 || strcmp(op, "stat") == 0 || strcmp(op, "list") == 0) {
    if (!path || !*path) send_err(id, "EINVAL", "The request needs a path.");
    else if (op[0] == 'r') op_read(id, path);
    else if (op[0] == 'w') op_write(id, path, req);
    else if (op[1] == 't') op_stat(id, path);
    else op_list(id, path);
  } else {
    char msg[128];
    snprintf(msg, sizeof msg, "Unknown operation %.40s.", op);
    send_err(id, "ENOSYS", msg);
  }
  json_free(req);
}

static void handle_hello(const uint8_t *p, size_t n) {
  jval_t *h = json_parse((const char *)p, n);
  const char *nonce = h ? json_get_str(h, "nonce") : NULL;
  char safe[129] = {0};
  if (nonce) snprintf(safe, sizeof safe, "%s", nonce);
  send_hello(nonce ? safe : NULL);
  json_free(h);
}

static void handle_frame(uint8_t type, uint32_t id, const uint8_t *p, size_t n) {
  if (type == F_HELLO) { handle_hello(p, n); return; }
  if (type == F_REQ) { handle_req(id, p, n); return; }
  stream_t *s = find_stream(id);
  if (!s) return; /* late frames for a finished stream */
  switch (type) {
    case F_CREDIT:
      if (n >= 4) s->send_credit += get_be32(p);
      break;
    case F_DATA: {
      if (n < 1) break;
      const uint8_t *d = p + 1;
      size_t dn = n - 1;
      if (s->kind == K_WRITE) { write_data(s, d, dn); break; }
      if (s->kind == K_EXEC && (s->stdin_dead || s->host_eof)) {
        s->grant_pending += dn; /* discard, but keep the host's writer moving */
        maybe_grant(s, true);
        break;
      }
      if (s->kind != K_EXEC && s->kind != K_TUNNEL) break;
      if (buf_avail(&s->inq) + dn > 2 * WINDOW) { /* host ignored our credit */
        send_err(s->id, "EPROTO", "The host sent more data than it was allowed to.");
        if (s->kind == K_EXEC) { exec_kill_all(s); s->stdin_dead = true; buf_clear(&s->inq); close_fd(&s->in_fd); }
        else kill_stream(s);
        break;
      }
      buf_append(&s->inq, d, dn);
      if (s->kind == K_EXEC) exec_flush_stdin(s);
      else tunnel_flush(s);
      break;
    }
    case F_EOF:
      if (s->kind == K_WRITE) write_finish(s);
      else if (s->kind == K_EXEC) { s->host_eof = true; exec_flush_stdin(s); }
      else if (s->kind == K_TUNNEL) { s->host_eof = true; tunnel_flush(s); }
      break;
    case F_CLOSE:
      if (s->kind == K_EXEC) {
        if (!s->exited) exec_kill_all(s);
      } else {
        kill_stream(s); /* write: leaves a partial file; tunnel: closes the socket */
      }
      break;
    default:
      break;
  }
}

/* ---------- channel ---------- */

static void reset_all_streams(void) {
  for (stream_t *s = streams; s; s = s->next) {
    if (s->kind == K_EXEC && !s->exited) exec_kill_all(s);
    kill_stream(s);
  }
}

static void chan_lost(const char *why) {
  reset_all_streams();
  close_fd(&chan_fd);
  buf_clear(&chan_in);
  buf_clear(&chan_out);
  synced = false;
  if (chan_mode != MODE_DEVICE) {
    logmsg("host channel closed (%s); exiting", why);
    /* Reap what we just killed (briefly) so no zombie outlives us. */
    for (int i = 0; i < 100; i++) {
      pid_t r = waitpid(-1, NULL, WNOHANG);
      if (r < 0) break;
      if (r == 0) { struct timespec ts = {0, 10 * 1000000}; nanosleep(&ts, NULL); }
    }
    exit(0);
  }
  reopen_at = now_ms() + REOPEN_MS;
}

/* There is no udev in the guest: when /dev/virtio-ports/NAME is missing, find the port whose
 * sysfs name is NAME and open /dev/vportNpM, creating the node from its dev numbers if needed. */
static int open_port_by_name(const char *path) {
  const char *prefix = "/dev/virtio-ports/";
  if (strncmp(path, prefix, strlen(prefix)) != 0) return -1;
  const char *want = path + strlen(prefix);
  DIR *d = opendir("/sys/class/virtio-ports");
  if (!d) return -1;
  int fd = -1;
  struct dirent *de;
  while (fd < 0 && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char p[512], name[256] = {0}, dev[64] = {0};
    snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", de->d_name);
    int nf = open(p, O_RDONLY | O_CLOEXEC);
    if (nf < 0) continue;
    ssize_t n = read(nf, name, sizeof name - 1);
    close(nf);
    if (n <= 0) continue;
    name[strcspn(name, "\n")] = 0;
    if (strcmp(name, want) != 0) continue;
    snprintf(p, sizeof p, "/dev/%s", de->d_name);
    fd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == ENOENT) {
      char dp[512];
      unsigned maj, min;
      snprintf(dp, sizeof dp, "/sys/class/virtio-ports/%s/dev", de->d_name);
      int df = open(dp, O_RDONLY | O_CLOEXEC);
      if (df < 0) continue;
      n = read(df, dev, sizeof dev - 1);
      close(df);
      if (n > 0 && sscanf(dev, "%u:%u", &maj, &min) == 2 && mknod(p, S_IFCHR | 0600, makedev(maj, min)) == 0)
        fd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    }
  }
  closedir(d);
  return fd;
}

static void chan_open(void) {
  if (chan_mode == MODE_DEVICE) {
    chan_fd = open(chan_path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (chan_fd < 0 && errno == ENOENT) chan_fd = open_port_by_name(chan_path);
    if (chan_fd < 0) {
      static bool said;
      if (!said) logmsg("waiting for %s: %s", chan_path, strerror(errno));
      said = true;
      reopen_at = now_ms() + REOPEN_MS;
      return;
    }
  } else if (chan_mode == MODE_UNIX) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (fd < 0 || strlen(chan_path) >= sizeof a.sun_path) { logmsg("bad unix socket path"); exit(1); }
    strcpy(a.sun_path, chan_path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
      logmsg("cannot connect to %s: %s", chan_path, strerror(errno));
      exit(1);
    }
    set_nonblock(fd);
    chan_fd = fd;
  } else {
    fcntl(chan_fd, F_SETFD, FD_CLOEXEC);
    set_nonblock(chan_fd);
  }
  reopen_at = 0;
  synced = false;
  buf_clear(&chan_in);
  buf_clear(&chan_out);
  send_hello(NULL);
}

/* Before the host's HELLO, bytes may be the tail of something sent while we were not
 * listening: skip to the first well-formed host HELLO (id 0, small JSON object). */
static void chan_sync(void) {
  const uint8_t *b = buf_head(&chan_in);
  size_t n = buf_avail(&chan_in);
  size_t i = 0;
  for (; i + 9 <= n; i++) {
    uint32_t L = get_be32(b + i);
    if (L < 7 || L > 5 + 1024 || b[i + 4] != F_HELLO || get_be32(b + i + 5) != 0) continue;
    if (i + 4 + L > n) break; /* candidate incomplete: wait for more bytes */
    if (b[i + 9] != '{' || b[i + 4 + L - 1] != '}') continue;
    synced = true;
    handle_hello(b + i + 9, L - 5);
    buf_consume(&chan_in, i + 4 + L);
    return;
  }
  buf_consume(&chan_in, i);
}

static void chan_process(void) {
  for (;;) {
    if (!synced) {
      chan_sync();
      if (!synced) return;
      continue;
    }
    size_t n = buf_avail(&chan_in);
    if (n < 9) return;
    const uint8_t *b = buf_head(&chan_in);
    uint32_t L = get_be32(b);
    if (L < 5 || L > 5 + MAX_PAYLOAD) {
      logmsg("bad frame length %u; waiting for a new HELLO", L);
      buf_clear(&chan_in);
      reset_all_streams();
      synced = false;
      return;
    }
    if (n < 4 + (size_t)L) return;
    handle_frame(b[4], get_be32(b + 5), b + 9, L - 5);
    if (chan_fd < 0) return;
    buf_consume(&chan_in, 4 + (size_t)L);
  }
}

static void chan_read(void) {
  for (int rounds = 0; rounds < 16 && chan_fd >= 0; rounds++) {
    buf_reserve(&chan_in, READ_CHUNK);
    ssize_t n = read(chan_fd, chan_in.data + chan_in.len, chan_in.cap - chan_in.len);
    if (n > 0) {
      chan_in.len += (size_t)n;
      chan_process();
    } else if (n == 0) {
      chan_lost("end of file");
      return;
    } else {
      if (errno == EAGAIN || errno == EINTR) return;
      chan_lost(strerror(errno));
      return;
    }
  }
}

static void chan_flush(void) {
  while (chan_fd >= 0 && buf_avail(&chan_out) > 0) {
    ssize_t n = write(chan_fd, buf_head(&chan_out), buf_avail(&chan_out));
    if (n > 0) { buf_consume(&chan_out, (size_t)n); continue; }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    chan_lost(n == 0 ? "write returned 0" : strerror(errno));
    return;
  }
}

/* ---------- children ---------- */

static void reap_children(void) {
  struct signalfd_siginfo si;
  while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {}
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    for (stream_t *s = streams; s; s = s->next) {
      if (s->kind == K_EXEC && s->pid == pid && !s->exited && !s->dead) {
        s->exited = true;
        s->status = st;
        s->exit_ms = now_ms();
        break;
      }
    }
  }
  if (cg_nleaves) cg_sweep(now_ms());
}

/* ---------- main loop ---------- */

enum { W_CHAN, W_SIG, W_LISTEN, W_OUT, W_ERR, W_IN, W_SOCK };

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--unix") == 0 && i + 1 < argc) { chan_mode = MODE_UNIX; chan_path = argv[++i]; }
    else if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc) { chan_mode = MODE_FD; chan_fd = atoi(argv[++i]); }
    else if (strcmp(argv[i], "--listen-port") == 0 && i + 1 < argc) listen_port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--cgroups") == 0) cg_mode = 1;
    else if (strcmp(argv[i], "--no-cgroups") == 0) cg_mode = 0;
    else if (strcmp(argv[i], "--help") == 0) {
      printf("usage: paddock-agent [PORT_DEVICE | --unix PATH | --fd N] [--listen-port N] [--cgroups | --no-cgroups]\n"
             "  Resource limits (cgroup v2 under " CG_ROOT ") are on by default only with a port device,\n"
             "  i.e. in the VM; --unix/--fd (tests on the host) never touch cgroups unless --cgroups.\n");
      return 0;
    } else if (argv[i][0] != '-') chan_path = argv[i];
    else { fprintf(stderr, "paddock-agent: unknown option %s\n", argv[i]); return 2; }
  }

  /* SECURITY: nothing we inherited may leak into commands. */
  if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
    for (int fd = 3; fd < 1024; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);

  /* Keep fds 0-2 occupied so no pipe or socket of ours lands on them. */
  for (;;) {
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0) break;
    if (fd > 2) { close(fd); break; }
  }
  setvbuf(stderr, NULL, _IOLBF, 0);

  struct utsname u;
  if (uname(&u) == 0) snprintf(uname_str, sizeof uname_str, "%s %s %s", u.sysname, u.release, u.machine);

  /* SECURITY: ask the OOM killer to take a runaway command rather than us; adopt orphans so
   * zombies of double-forked commands are reaped here. */
  int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (oom >= 0) { (void)!write(oom, "-1000", 5); close(oom); }
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  signal(SIGPIPE, SIG_IGN);

  /* SECURITY: limits only where the agent owns the machine (the VM), never on a host it is
   * tested on. */
  if (cg_mode < 0) cg_mode = chan_mode == MODE_DEVICE && getuid() == 0;
  if (cg_mode) {
    cg_on = cg_setup();
    if (cg_on)
      logmsg("commands are limited to %llu MiB and %d processes (" CG_ROOT ")",
             (unsigned long long)(cg_mem_max >> 20), CG_PIDS_MAX);
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, &orig_mask);
  sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sig_fd < 0) { logmsg("signalfd: %s", strerror(errno)); return 1; }

  setup_listener();
  chan_open();

  struct pollfd *pfds = NULL;
  stream_t **pstream = NULL;
  int *pwhat = NULL;
  size_t pcap = 0;

  for (;;) {
    int64_t now = now_ms();
    int timeout = -1;

    if (chan_fd < 0 && chan_mode == MODE_DEVICE && now >= reopen_at) chan_open();
    if (chan_fd < 0) timeout = REOPEN_MS;

    bool busy = false;
    for (stream_t *s = streams; s; s = s->next) {
      if (s->dead) continue;
      if (s->kind == K_EXEC) {
        if (!s->exited && s->deadline_ms && now >= s->deadline_ms) {
          s->timed_out = true;
          s->deadline_ms = 0;
          exec_kill_all(s);
        }
        bool kill_over = s->killed_ms && now - s->killed_ms >= KILL_GRACE_MS;
        if ((s->out_fd >= 0 || s->err_fd >= 0) &&
            ((s->exited && s->send_credit > 0 && now - s->exit_ms >= EXIT_GRACE_MS) || kill_over)) {
          /* Background processes still hold the pipes (or killed ones are slow to die): stop
           * waiting for them. */
          if (s->out_fd >= 0) { close_fd(&s->out_fd); send_eof(s->id, CH_OUT); }
          if (s->err_fd >= 0) { close_fd(&s->err_fd); send_eof(s->id, CH_ERR); }
        }
        if ((s->exited || kill_over) && s->out_fd < 0 && s->err_fd < 0) { exec_send_exit(s); continue; }
        int64_t next = -1;
        if (!s->exited && s->deadline_ms) next = s->deadline_ms;
        /* With no credit the grace waits for the host; its CREDIT frame wakes us anyway. */
        if (s->exited && s->send_credit > 0) next = s->exit_ms + EXIT_GRACE_MS;
        if (s->killed_ms && (next < 0 || s->killed_ms + KILL_GRACE_MS < next)) next = s->killed_ms + KILL_GRACE_MS;
        if (next >= 0) {
          int64_t d = next - now;
          if (d < 0) d = 0;
          if (timeout < 0 || d < timeout) timeout = (int)d;
        }
      } else if (s->kind == K_BLOB && buf_avail(&chan_out) < OUT_HIGH) {
        if (blob_pump(s)) busy = true;
      }
    }
    if (cg_nleaves) {
      int64_t t = cg_next_wake();
      if (t >= 0 && now >= t) { cg_sweep(now); t = cg_next_wake(); }
      if (t >= 0) {
        int64_t d = t - now;
        if (d < 0) d = 0;
        if (timeout < 0 || d < timeout) timeout = (int)d;
      }
    }
    if (busy) timeout = 0;
    sweep();

    size_t np = 0;
#define ADD(fd_, ev_, s_, w_)                                                        \
  do {                                                                               \
    if (np == pcap) {                                                                \
      pcap = pcap ? pcap * 2 : 64;                                                   \
      pfds = realloc(pfds, pcap * sizeof *pfds);                                     \
      pstream = realloc(pstream, pcap * sizeof *pstream);                            \
      pwhat = realloc(pwhat, pcap * sizeof *pwhat);                                  \
      if (!pfds || !pstream || !pwhat) abort();                                      \
    }                                                                                \
    pfds[np] = (struct pollfd){.fd = (fd_), .events = (short)(ev_)};                 \
    pstream[np] = (s_);                                                              \
    pwhat[np] = (w_);                                                                \
    np++;                                                                            \
  } while (0)

    if (chan_fd >= 0) ADD(chan_fd, POLLIN | (buf_avail(&chan_out) ? POLLOUT : 0), NULL, W_CHAN);
    ADD(sig_fd, POLLIN, NULL, W_SIG);
    if (listen_fd >= 0) ADD(listen_fd, POLLIN, NULL, W_LISTEN);
    bool room = buf_avail(&chan_out) < OUT_HIGH && chan_fd >= 0;
    for (stream_t *s = streams; s; s = s->next) {
      if (s->kind == K_EXEC) {
        if (room && s->send_credit > 0) {
          if (s->out_fd >= 0) ADD(s->out_fd, POLLIN, s, W_OUT);
          if (s->err_fd >= 0) ADD(s->err_fd, POLLIN, s, W_ERR);
        }
        if (s->in_fd >= 0 && buf_avail(&s->inq) > 0) ADD(s->in_fd, POLLOUT, s, W_IN);
      } else if (s->kind == K_TUNNEL && s->sock >= 0) {
        short ev = 0;
        if (room && s->send_credit > 0 && !s->sock_rd_eof) ev |= POLLIN;
        if (buf_avail(&s->inq) > 0) ev |= POLLOUT;
        if (ev) ADD(s->sock, ev, s, W_SOCK);
      }
    }
#undef ADD

    int r = poll(pfds, np, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      logmsg("poll: %s", strerror(errno));
      return 1;
    }
    for (size_t i = 0; i < np; i++) {
      short re = pfds[i].revents;
      if (!re) continue;
      stream_t *s = pstream[i];
      if (s && s->dead) continue;
      switch (pwhat[i]) {
        case W_CHAN:
          if (pfds[i].fd != chan_fd) break;
          if (re & POLLOUT) chan_flush();
          if (chan_fd >= 0 && (re & (POLLIN | POLLHUP | POLLERR))) chan_read();
          /* A hang-up with nothing left to read is the host going away. */
          if (chan_fd >= 0 && (re & (POLLHUP | POLLERR)) && !(re & POLLIN)) chan_lost("hang-up");
          break;
        case W_SIG: reap_children(); break;
        case W_LISTEN: accept_tunnels(); break;
        case W_OUT: exec_pump(s, &s->out_fd, CH_OUT); break;
        case W_ERR: exec_pump(s, &s->err_fd, CH_ERR); break;
        case W_IN: exec_flush_stdin(s); break;
        case W_SOCK:
          if (re & POLLOUT) tunnel_flush(s);
          if (!s->dead && (re & (POLLIN | POLLHUP | POLLERR))) tunnel_read(s);
          break;
      }
    }
    chan_flush();
    sweep();
  }
}
