/*
 * sandbox-helper: start a command in fresh Linux namespaces on a copy-on-write
 * view of the host, or join a sandbox that is already running.
 *
 * It is the only native code in sandbox-run. It takes a bwrap-style argument
 * list (every option has a fixed number of arguments, no parser library), does
 * every privileged step before execve(2), and then stays as pid 1 of the
 * sandbox: it reaps zombies, forwards signals and exits with the command's
 * status. It never needs root: everything below works for an unprivileged
 * user because the user namespace comes first.
 *
 * Process layout of a new sandbox:
 *
 *   supervisor (host namespaces)      waits, forwards signals, reports on --info-fd,
 *     |                                relays the command's own terminal, if any
 *     `- init, pid 1 (new namespaces)  builds the mounts, then reaps and forwards
 *          `- command, pid 2           execve(2) in a session of its own, with no
 *                                      capability, a fresh keyring, rlimits, env
 *
 * The caller's terminal never enters the sandbox: a process holding it could
 * push input into it (TIOCSTI), read the keyboard or change its settings
 * from any session (CVE-2017-5226). When stdin, stdout or stderr is a
 * terminal, the command gets a pseudo-terminal of its own, made in the
 * sandbox's devpts and passed to the supervisor, which relays keystrokes,
 * output and window size (as `docker run -it` and conmon do).
 *
 * Long-lived sandboxes are started with no command: init idles until it is
 * signalled. More processes are started in them with --join PID, which
 * setns(2)s into init's namespaces through a pidfd and forks the command
 * there. We chose join over a control channel to init because it keeps init
 * trivial and lets the caller own each process's stdio and exit status.
 *
 * Exit codes: the command's status (128+N when killed by signal N); 125 when
 * the sandbox could not be set up, 126 when the command cannot be executed,
 * 127 when it is not found. Every failure prints one line on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/sched.h>

#define EXIT_SETUP 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

/* Kernel ABI bits that older libc headers lack (values from linux/mount.h). */
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
struct helper_mount_attr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

/* Where things live while init builds the new root (all inside a private
 * tmpfs that replaces /tmp in our mount namespace only). */
#define SCRATCH "/tmp"
#define OLDROOT "/oldroot"  /* the host's root, after the first pivot */
#define NEWROOT "/newroot"  /* the sandbox's root, under construction */
#define UPPERS "/uppers"    /* tmpfs holding overlay upper and work dirs */

#define MAX_OPS 512

enum op_kind {
  OP_BIND, OP_RO_BIND, OP_OVERLAY, OP_OVERLAY_RW, OP_TMPFS, OP_MASK,
  OP_BIND_INSIDE, OP_SETENV, OP_UNSETENV, OP_CLEARENV, OP_RLIMIT, OP_KEEP_FD,
};

/* One setup step, applied in argument order (as bubblewrap's SetupOp).
 * Each kind fills the fields its option names; the rest stay zero:
 *   --bind, --ro-bind SOURCE DEST     --tmpfs DEST     --mask DEST
 *   --overlay LOWERS DEST             --overlay-rw UPPER WORK LOWERS DEST
 *   --bind-inside SOURCE DEST (SOURCE: a path of the sandbox's own view)
 *   --setenv NAME VALUE   --unsetenv NAME   --clearenv
 *   --rlimit NAME SOFT HARD           --keep-fd FD */
struct op {
  enum op_kind kind;
  const char *source;        /* bind: host path; bind-inside: sandbox path */
  const char *dest;          /* every mount: path inside the sandbox */
  const char *lowers;        /* overlays: host dirs, top:...:bottom */
  const char *upper, *work;  /* overlay-rw: host dirs (--overlay: on the private tmpfs) */
  const char *name;          /* setenv, unsetenv: variable; rlimit: limit */
  const char *value;         /* setenv */
  const char *soft, *hard;   /* rlimit: a number or "unlimited" */
  int fd;                    /* keep-fd */
};

static struct op ops[MAX_OPS];
static int n_ops;

static uid_t opt_uid;
static gid_t opt_gid;
static int opt_uid_set, opt_gid_set;
static int opt_share_net;
static const char *opt_hostname = "sandbox";
static const char *opt_chdir;
static const char *opt_tmpfs_size;   /* /tmp, /dev/shm and --tmpfs mounts */
static const char *opt_upper_size;   /* the tmpfs holding overlay uppers */
static int opt_info_fd = -1;
static const char *opt_cgroup;       /* cgroup v2 directory the sandbox's processes start in */
static int cgroup_fd = -1;
static pid_t opt_join;
static int console_sock[2] = {-1, -1}; /* the command's process sends its pty master here */
static char **opt_command;           /* NULL: idle init (long-lived sandbox) */
static struct op image_root;         /* --image-root, --image-root-rw: an overlay as the root instead of the host's; .lowers NULL: none */
static const char *opt_chroot;       /* --chroot: the command's root, a directory inside the sandbox */

/* ---------- errors ---------- */

static void restore_terminal(void);

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  char buf[1024];
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  restore_terminal();
  dprintf(2, "sandbox-run: %s\n", buf);
  _exit(EXIT_SETUP);
}

/* die_errno appends strerror(errno), like perror. */
static void die_errno(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die_errno(const char *fmt, ...) {
  int saved = errno;
  va_list ap;
  char buf[1024];
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  restore_terminal();
  dprintf(2, "sandbox-run: %s: %s\n", buf, strerror(saved));
  _exit(EXIT_SETUP);
}

/* ---------- argument parsing ---------- */

static void usage(void) {
  dprintf(1,
    "usage: sandbox-helper [OPTION...] -- [COMMAND [ARG...]]\n"
    "       sandbox-helper --join PID [OPTION...] -- COMMAND [ARG...]\n"
    "  --uid N / --gid N          ids inside (default: the caller's; 65534 for root)\n"
    "  --share-net                keep the host network (default: loopback only)\n"
    "  --hostname NAME            (default: sandbox)\n"
    "  --bind SRC DEST            read-write bind of a host path\n"
    "  --ro-bind SRC DEST         read-only bind of a host path\n"
    "  --overlay LOWERS DEST      copy-on-write overlay; LOWERS is top:...:bottom,\n"
    "                             upper and work dirs on a private tmpfs\n"
    "  --overlay-rw UPPER WORK LOWERS DEST  same, with upper and work on the host\n"
    "  --tmpfs DEST               fresh tmpfs\n"
    "  --image-root LOWERS        the root is a copy-on-write overlay of LOWERS (an image's\n"
    "                             layers), not the host's; upper on the private tmpfs\n"
    "  --image-root-rw UPPER WORK LOWERS  same, with upper and work on the host\n"
    "  --bind-inside SRC DEST     bind the sandbox's own SRC (e.g. /dev, /proc, /tmp) on DEST,\n"
    "                             once /proc is mounted (an image mounted for --chroot)\n"
    "  --chroot DIR               the command's root: DIR inside the sandbox (with --join too)\n"
    "  --mask DEST                hide DEST if it exists: an empty dir or /dev/null\n"
    "  --tmpfs-size BYTES         size of /tmp, /dev/shm and --tmpfs mounts\n"
    "  --upper-size BYTES         size of the tmpfs holding overlay upper dirs\n"
    "  --chdir DIR                working directory inside\n"
    "  --setenv NAME VALUE / --unsetenv NAME / --clearenv   (applied in order)\n"
    "  --rlimit NAME SOFT HARD    NAME: nofile fsize cpu core nproc as data stack\n"
    "  --keep-fd N                pass fd N to the command (NODE_CHANNEL_FD is kept)\n"
    "  --info-fd N                write {\"pid\":N} there once the sandbox is ready\n"
    "  --cgroup DIR               start the sandbox (or the joined command) in this cgroup v2 directory\n"
    "  --join PID                 run COMMAND inside the sandbox whose init is PID\n"
    "With no COMMAND, init idles until it receives SIGTERM.\n");
}

static long parse_number(const char *s, const char *what, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  /* Plain digits, at most LONG_MAX's 19: sizes go to the kernel as given, and
   * mount_tmpfs would cut a zero-padded one to "size=000", i.e. unlimited. */
  if (errno || end == s || *end || v < 0 || v > max || *s < '0' || *s > '9' || end - s > 19)
    die("%s: expected a number from 0 to %ld, got '%s'", what, max, s);
  return v;
}

static void add_op(struct op op) {
  if (n_ops == MAX_OPS) die("too many options (at most %d)", MAX_OPS);
  ops[n_ops++] = op;
}

/* need() checks that an option has its arguments before we read them. */
static void need(int argc, int i, int n, const char *opt) {
  if (i + n >= argc) die("%s needs %d argument%s; see --help", opt, n, n == 1 ? "" : "s");
}

static void parse_args(int argc, char **argv) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (!strcmp(o, "--")) {
      if (i + 1 < argc) opt_command = &argv[i + 1];
      return;
    } else if (!strcmp(o, "--help")) {
      usage();
      exit(0);
    } else if (!strcmp(o, "--uid")) {
      need(argc, i, 1, o); opt_uid = parse_number(argv[++i], o, 0xfffffffe); opt_uid_set = 1;
    } else if (!strcmp(o, "--gid")) {
      need(argc, i, 1, o); opt_gid = parse_number(argv[++i], o, 0xfffffffe); opt_gid_set = 1;
    } else if (!strcmp(o, "--share-net")) {
      opt_share_net = 1;
    } else if (!strcmp(o, "--hostname")) {
      need(argc, i, 1, o); opt_hostname = argv[++i];
    } else if (!strcmp(o, "--bind") || !strcmp(o, "--ro-bind")) {
      need(argc, i, 2, o);
      add_op((struct op){.kind = o[2] == 'r' ? OP_RO_BIND : OP_BIND, .source = argv[i + 1], .dest = argv[i + 2]});
      i += 2;
    } else if (!strcmp(o, "--overlay")) {
      need(argc, i, 2, o); add_op((struct op){.kind = OP_OVERLAY, .lowers = argv[i + 1], .dest = argv[i + 2]}); i += 2;
    } else if (!strcmp(o, "--overlay-rw")) {
      need(argc, i, 4, o);
      add_op((struct op){.kind = OP_OVERLAY_RW, .upper = argv[i + 1], .work = argv[i + 2], .lowers = argv[i + 3], .dest = argv[i + 4]});
      i += 4;
    } else if (!strcmp(o, "--image-root")) {
      need(argc, i, 1, o); image_root = (struct op){.kind = OP_OVERLAY, .lowers = argv[++i], .dest = "/"};
    } else if (!strcmp(o, "--image-root-rw")) {
      need(argc, i, 3, o);
      image_root = (struct op){.kind = OP_OVERLAY_RW, .upper = argv[i + 1], .work = argv[i + 2], .lowers = argv[i + 3], .dest = "/"};
      i += 3;
    } else if (!strcmp(o, "--bind-inside")) {
      need(argc, i, 2, o); add_op((struct op){.kind = OP_BIND_INSIDE, .source = argv[i + 1], .dest = argv[i + 2]}); i += 2;
    } else if (!strcmp(o, "--chroot")) {
      need(argc, i, 1, o); opt_chroot = argv[++i];
    } else if (!strcmp(o, "--tmpfs")) {
      need(argc, i, 1, o); add_op((struct op){.kind = OP_TMPFS, .dest = argv[++i]});
    } else if (!strcmp(o, "--mask")) {
      need(argc, i, 1, o); add_op((struct op){.kind = OP_MASK, .dest = argv[++i]});
    } else if (!strcmp(o, "--tmpfs-size")) {
      need(argc, i, 1, o); opt_tmpfs_size = argv[++i]; parse_number(opt_tmpfs_size, o, LONG_MAX);
    } else if (!strcmp(o, "--upper-size")) {
      need(argc, i, 1, o); opt_upper_size = argv[++i]; parse_number(opt_upper_size, o, LONG_MAX);
    } else if (!strcmp(o, "--chdir")) {
      need(argc, i, 1, o); opt_chdir = argv[++i];
    } else if (!strcmp(o, "--setenv")) {
      need(argc, i, 2, o); add_op((struct op){.kind = OP_SETENV, .name = argv[i + 1], .value = argv[i + 2]}); i += 2;
    } else if (!strcmp(o, "--unsetenv")) {
      need(argc, i, 1, o); add_op((struct op){.kind = OP_UNSETENV, .name = argv[++i]});
    } else if (!strcmp(o, "--clearenv")) {
      add_op((struct op){.kind = OP_CLEARENV});
    } else if (!strcmp(o, "--rlimit")) {
      need(argc, i, 3, o);
      add_op((struct op){.kind = OP_RLIMIT, .name = argv[i + 1], .soft = argv[i + 2], .hard = argv[i + 3]});
      i += 3;
    } else if (!strcmp(o, "--keep-fd")) {
      need(argc, i, 1, o); add_op((struct op){.kind = OP_KEEP_FD, .fd = parse_number(argv[++i], o, INT_MAX)});
    } else if (!strcmp(o, "--info-fd")) {
      need(argc, i, 1, o); opt_info_fd = parse_number(argv[++i], o, INT_MAX);
      if (fcntl(opt_info_fd, F_GETFD) < 0) die("--info-fd %d: not an open file descriptor", opt_info_fd);
    } else if (!strcmp(o, "--cgroup")) {
      need(argc, i, 1, o); opt_cgroup = argv[++i];
    } else if (!strcmp(o, "--join")) {
      need(argc, i, 1, o); opt_join = parse_number(argv[++i], o, INT_MAX);
      if (opt_join < 1) die("--join: expected a process id, got '%s'", argv[i]);
    } else {
      die("unknown option '%s'; see --help", o);
    }
  }
}

/* Paths inside the sandbox must be absolute and free of '.' and '..'
 * components, so that what the caller asked for is what gets mounted. */
static void check_sandbox_path(const char *what, const char *p) {
  if (p[0] != '/') die("%s '%s': must be an absolute path", what, p);
  /* Host paths are reached as OLDROOT "%s" in PATH_MAX buffers: a cut one
   * would name a different, shorter path. */
  if (strlen(p) + sizeof OLDROOT > PATH_MAX) die("%s '%.64s...': longer than %zu bytes", what, p, PATH_MAX - sizeof OLDROOT);
  for (const char *s = p; *s; s++) {
    if (s[0] == '/' && s[1] == '.' && (s[2] == '/' || s[2] == 0 || (s[2] == '.' && (s[3] == '/' || s[3] == 0))))
      die("%s '%s': must not contain '.' or '..' components", what, p);
  }
}

/* Overlay options are a comma/colon separated string: refuse paths that
 * would need escaping rather than escape them. */
static void check_overlay_path(const char *p) {
  check_sandbox_path("overlay path", p);
  if (strpbrk(p, ",:\\")) die("overlay path '%s': must not contain ',', ':' or '\\'", p);
}

static int rlimit_resource(const char *name);
static rlim_t rlimit_value(const char *s);

static void validate_op(struct op *op) {
  struct stat st;
  switch (op->kind) {
  case OP_BIND: case OP_RO_BIND:
    check_sandbox_path("bind source", op->source);
    check_sandbox_path("bind target", op->dest);
    if (stat(op->source, &st) < 0) die_errno("bind source '%s'", op->source);
    break;
  case OP_OVERLAY_RW:
    check_overlay_path(op->upper);
    check_overlay_path(op->work);
    if (stat(op->upper, &st) < 0 || !S_ISDIR(st.st_mode)) die("overlay upper '%s': not a directory", op->upper);
    if (stat(op->work, &st) < 0 || !S_ISDIR(st.st_mode)) die("overlay work '%s': not a directory", op->work);
    /* fallthrough */
  case OP_OVERLAY: {
    char buf[PATH_MAX];
    if (strlen(op->lowers) >= sizeof buf) die("overlay lowers too long");
    strcpy(buf, op->lowers);
    for (char *save, *l = strtok_r(buf, ":", &save); l; l = strtok_r(NULL, ":", &save)) {
      check_overlay_path(l);
      if (stat(l, &st) < 0) die_errno("overlay lower '%s'", l);
      if (!S_ISDIR(st.st_mode)) die("overlay lower '%s': not a directory", l);
    }
    check_sandbox_path("overlay target", op->dest);
    break;
  }
  case OP_TMPFS:
    check_sandbox_path("tmpfs target", op->dest);
    break;
  case OP_MASK:
    check_sandbox_path("mask target", op->dest);
    break;
  case OP_KEEP_FD:
    if (fcntl(op->fd, F_GETFD) < 0) die("--keep-fd %d: not an open file descriptor", op->fd);
    break;
  /* Checked here, not first in the command's process once the whole sandbox is built. */
  case OP_RLIMIT:
    rlimit_resource(op->name);
    rlimit_value(op->soft);
    rlimit_value(op->hard);
    break;
  case OP_SETENV: case OP_UNSETENV:
    /* setenv(3) would refuse such a name, unsetenv(3) silently ignore it. */
    if (!*op->name || strchr(op->name, '=')) die("--%s '%s': not a variable name", op->kind == OP_SETENV ? "setenv" : "unsetenv", op->name);
    break;
  case OP_BIND_INSIDE:
    check_sandbox_path("bind-inside source", op->source);
    check_sandbox_path("bind-inside target", op->dest);
    break;
  default:
    break;
  }
}

static void validate_ops(void) {
  for (int i = 0; i < n_ops; i++) validate_op(&ops[i]);
  if (image_root.lowers) validate_op(&image_root);
  if (image_root.lowers && opt_join) die("--image-root: only for a new sandbox (a joined process takes --chroot)");
  if (opt_chroot) check_sandbox_path("--chroot", opt_chroot);
  if (opt_chdir) check_sandbox_path("--chdir", opt_chdir);
  if (opt_cgroup) {
    check_sandbox_path("--cgroup", opt_cgroup);
    cgroup_fd = open(opt_cgroup, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd < 0) die_errno("--cgroup %s", opt_cgroup);
  }
  if (opt_join && !opt_command) die("--join needs a command after --");
}

/* ---------- small system helpers ---------- */

static void write_file(const char *path, const char *content) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die_errno("open %s", path);
  ssize_t n = write(fd, content, strlen(content));
  if (n != (ssize_t)strlen(content)) die_errno("write %s", path);
  close(fd);
}

static void set_mount_attr(const char *path, uint64_t attrs) {
  struct helper_mount_attr attr = {.attr_set = attrs};
  if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr) < 0)
    die_errno("make %s read-only (mount_setattr needs Linux 5.12 or later)", path);
}

/* Create DEST inside the new root, parents first (mkdir -p), resolving
 * every step inside the root. Works only where the root is writable (the
 * fresh tmpfs mounts); the host root is read-only. */
static void create_target(int root_fd, const char *dest, int want_dir) {
  struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  char parent[PATH_MAX], ppath[64];
  snprintf(parent, sizeof parent, "%s", dest);
  char *slash = strrchr(parent, '/');
  const char *name = dest + (slash - parent) + 1;
  *slash = 0;
  int pfd = syscall(SYS_openat2, root_fd, parent[0] ? parent : "/", &how, sizeof how);
  if (pfd < 0 && errno == ENOENT) {
    create_target(root_fd, parent, 1);
    pfd = syscall(SYS_openat2, root_fd, parent, &how, sizeof how);
  }
  if (pfd < 0) die_errno("mount target '%s': parent directory", dest);
  /* O_PATH fds cannot be written through; reopen the parent as a directory. */
  snprintf(ppath, sizeof ppath, OLDROOT "/proc/self/fd/%d", pfd);
  int dfd = open(ppath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) die_errno("mount target '%s': parent directory", dest);
  int r = want_dir ? mkdirat(dfd, name, 0755) : mknodat(dfd, name, S_IFREG | 0644, 0);
  if (r < 0 && errno == EROFS)
    die("mount target '%s' does not exist and the host root is read-only: create it on the host or mount under /tmp", dest);
  if (r < 0 && errno != EEXIST) die_errno("create mount target '%s'", dest);
  close(dfd);
  close(pfd);
}

/* Open DEST inside the new root without letting '..' or symlinks in it lead
 * out of the new root (RESOLVE_IN_ROOT), creating it when missing. Returns a
 * path through /proc that mount(2) can use to reach exactly that inode. */
static const char *resolve_target(int root_fd, const char *dest, int want_dir, char *out, size_t outlen) {
  struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd = syscall(SYS_openat2, root_fd, dest, &how, sizeof how);
  if (fd < 0 && errno == ENOENT) {
    create_target(root_fd, dest, want_dir);
    fd = syscall(SYS_openat2, root_fd, dest, &how, sizeof how);
  }
  if (fd < 0) die_errno("mount target '%s'", dest);
  snprintf(out, outlen, OLDROOT "/proc/self/fd/%d", fd);
  return out; /* the fd stays open until init execs or exits: it pins the target */
}

static void mount_tmpfs(const char *target, const char *mode, const char *size) {
  char data[128];
  snprintf(data, sizeof data, "mode=%s%s%s", mode, size ? ",size=" : "", size ? size : "");
  if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, data) < 0) die_errno("mount tmpfs on %s", target);
}

/* ---------- sandbox setup, in kernel order ---------- */

/* A process may map only its own ids in a user namespace it created, and
 * only after giving up setgroups(2). */
static void write_id_maps(uid_t outer_uid, gid_t outer_gid) {
  char buf[64];
  write_file("/proc/self/setgroups", "deny");
  snprintf(buf, sizeof buf, "%u %u 1\n", opt_uid, outer_uid);
  write_file("/proc/self/uid_map", buf);
  snprintf(buf, sizeof buf, "%u %u 1\n", opt_gid, outer_gid);
  write_file("/proc/self/gid_map", buf);
}

/* A new network namespace has only a loopback device, and it is down. */
static void bring_up_loopback(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die_errno("socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die_errno("get loopback flags");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die_errno("bring loopback up");
  close(s);
}

/* Build the overlay options; uppers on the private tmpfs unless given. */
static void mount_overlay(int root_fd, struct op *op, int index) {
  char upper[PATH_MAX], work[PATH_MAX], lowerdir[3 * PATH_MAX], data[4 * PATH_MAX], buf[PATH_MAX], target[64];
  struct stat st;

  if (op->kind == OP_OVERLAY) {
    snprintf(upper, sizeof upper, UPPERS "/%d", index);
    if (mkdir(upper, 0755) < 0) die_errno("mkdir %s", upper);
    snprintf(upper, sizeof upper, UPPERS "/%d/upper", index);
    snprintf(work, sizeof work, UPPERS "/%d/work", index);
    if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0) die_errno("mkdir %s", upper);
  } else {
    snprintf(upper, sizeof upper, OLDROOT "%s", op->upper);
    snprintf(work, sizeof work, OLDROOT "%s", op->work);
  }

  lowerdir[0] = 0;
  snprintf(buf, sizeof buf, "%s", op->lowers);
  for (char *save, *l = strtok_r(buf, ":", &save); l; l = strtok_r(NULL, ":", &save)) {
    if (strlen(lowerdir) + strlen(l) + sizeof(OLDROOT) + 2 > sizeof lowerdir) die("overlay lowers too long");
    strcat(lowerdir, lowerdir[0] ? ":" OLDROOT : OLDROOT);
    strcat(lowerdir, l);
  }

  /* The overlay root takes its mode from the upper root: copy the lower's
   * (PostgreSQL refuses a data directory that is not 0700). */
  snprintf(buf, sizeof buf, "%s", lowerdir);
  *strchrnul(buf, ':') = 0;
  if (stat(buf, &st) < 0) die_errno("overlay lower '%s'", buf);
  if (chmod(upper, st.st_mode & 07777) < 0) die_errno("chmod %s", upper);

  if ((size_t)snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s,userxattr", lowerdir, upper, work) >= sizeof data)
    die("overlay options too long");
  resolve_target(root_fd, op->dest, 1, target, sizeof target);
  if (mount("overlay", target, "overlay", 0, data) < 0) {
    if (errno == EPERM || errno == EINVAL)
      die_errno("mount overlay on %s (overlayfs in a user namespace needs Linux 5.11+; run 'sandbox-run doctor')", op->dest);
    die_errno("mount overlay on %s", op->dest);
  }
}

static void mount_bind(int root_fd, struct op *op) {
  char source[PATH_MAX], target[64];
  struct stat st;
  snprintf(source, sizeof source, OLDROOT "%s", op->source);
  if (stat(source, &st) < 0) die_errno("bind source '%s'", op->source);
  resolve_target(root_fd, op->dest, S_ISDIR(st.st_mode), target, sizeof target);
  if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) < 0) die_errno("bind %s on %s", op->source, op->dest);
  /* The fd behind TARGET still names what was under the new mount: look the
   * path up again to reach the mount itself. */
  if (op->kind == OP_RO_BIND)
    set_mount_attr(resolve_target(root_fd, op->dest, S_ISDIR(st.st_mode), target, sizeof target), MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
}

/* Hide a path (credentials) if the sandbox can see it at all: a directory
 * becomes an empty tmpfs, anything else /dev/null. */
static void mask_path(int root_fd, const char *dest) {
  struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  char target[64];
  struct stat st;
  int fd = syscall(SYS_openat2, root_fd, dest, &how, sizeof how);
  if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) return;
  if (fd < 0 || fstat(fd, &st) < 0) die_errno("mask '%s'", dest);
  snprintf(target, sizeof target, OLDROOT "/proc/self/fd/%d", fd);
  if (S_ISDIR(st.st_mode)) mount_tmpfs(target, "0700", "65536");
  else if (mount(OLDROOT "/dev/null", target, NULL, MS_BIND, NULL) < 0) die_errno("mask '%s'", dest);
}

/* A minimal /dev: the harmless host devices bound in, a private devpts and
 * shared memory. Nothing here reaches a host disk. */
static void setup_dev(void) {
  static const char *const devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
  static const char *const links[][2] = {
    {"ptmx", "pts/ptmx"}, {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"},
    {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
  };
  char path[PATH_MAX], source[PATH_MAX];
  mount_tmpfs(NEWROOT "/dev", "0755", NULL);
  for (size_t i = 0; i < sizeof devices / sizeof *devices; i++) {
    snprintf(path, sizeof path, NEWROOT "/dev/%s", devices[i]);
    snprintf(source, sizeof source, OLDROOT "/dev/%s", devices[i]);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (fd < 0) die_errno("create %s", path);
    close(fd);
    if (mount(source, path, NULL, MS_BIND, NULL) < 0) die_errno("bind /dev/%s", devices[i]);
  }
  for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
    snprintf(path, sizeof path, NEWROOT "/dev/%s", links[i][0]);
    if (symlink(links[i][1], path) < 0) die_errno("symlink %s", path);
  }
  if (mkdir(NEWROOT "/dev/pts", 0755) < 0 || mkdir(NEWROOT "/dev/shm", 01777) < 0) die_errno("mkdir in /dev");
  if (mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") < 0)
    die_errno("mount devpts");
  mount_tmpfs(NEWROOT "/dev/shm", "1777", opt_tmpfs_size);
}

/* The host's runtime sockets live under /run: the session bus, systemd,
 * ssh-agent, docker, the host's PostgreSQL. connect(2) works on a read-only
 * mount, so the read-only host view would reach every one of them: the
 * sandbox gets a fresh, empty /run (and /var/run where it is not a link). */
static void hide_runtime_dirs(void) {
  static const char *const dirs[] = {NEWROOT "/run", NEWROOT "/var/run"};
  struct stat st;
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
    if (lstat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode)) mount_tmpfs(dirs[i], "0755", opt_tmpfs_size);
}

/* A root caller keeps host uid 0 behind its unprivileged inside uid, and
 * file permissions are checked against that: the global knobs in /proc
 * (sysctls, sysrq) would be writable and kernel memory readable. Make them
 * read-only or hide them, as container runtimes do. An unprivileged caller
 * cannot write them anyway. */
static void protect_proc(void) {
  static const char *const read_only[] = {"sys", "sysrq-trigger", "irq", "bus", "fs"};
  static const char *const hidden[] = {"kcore", "keys", "timer_list", "sched_debug", "latency_stats", "kallsyms", "kmsg"};
  char path[PATH_MAX];
  struct stat st;
  for (size_t i = 0; i < sizeof read_only / sizeof *read_only; i++) {
    snprintf(path, sizeof path, NEWROOT "/proc/%s", read_only[i]);
    if (lstat(path, &st) < 0) continue;
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) die_errno("bind %s", path);
    set_mount_attr(path, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
  }
  for (size_t i = 0; i < sizeof hidden / sizeof *hidden; i++) {
    snprintf(path, sizeof path, NEWROOT "/proc/%s", hidden[i]);
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)) continue;
    if (mount(OLDROOT "/dev/null", path, NULL, MS_BIND, NULL) < 0) die_errno("hide %s", path);
  }
}

/* The image root: its layers as an overlay on NEWROOT, writable
 * copy-on-write, no setuid. The mount points the sandbox needs are made in
 * the writable layer where the image lacks them (a scratch image has no
 * /proc); one that is not a plain directory (an absolute symlink would
 * resolve against our scratch root, where the host root is) is refused. */
static void mount_image_root(void) {
  static const struct { const char *path; mode_t mode; } points[] = {
    {NEWROOT "/tmp", 01777}, {NEWROOT "/dev", 0755}, {NEWROOT "/proc", 0555}, {NEWROOT "/sys", 0555},
  };
  int newroot_fd = open(NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (newroot_fd < 0) die_errno("open new root");
  mount_overlay(newroot_fd, &image_root, n_ops); /* its dest is "/": NEWROOT itself */
  close(newroot_fd);
  set_mount_attr(NEWROOT, MOUNT_ATTR_NOSUID);
  for (size_t i = 0; i < sizeof points / sizeof *points; i++) {
    struct stat st;
    if (mkdir(points[i].path, points[i].mode) < 0 && errno != EEXIST) die_errno("image root: create %s", points[i].path + strlen(NEWROOT));
    if (lstat(points[i].path, &st) < 0 || !S_ISDIR(st.st_mode))
      die("image root: %s is not a directory (a symlink?); the sandbox mounts its own there", points[i].path + strlen(NEWROOT));
  }
}

/* Bind a path of the sandbox's own view on DEST, both resolved inside the
 * new root, recursively (devpts and shm come along with /dev, and a locked
 * /proc may only be bound whole). */
static void bind_inside(int root_fd, struct op *op) {
  struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  char source[64], target[64];
  struct stat st;
  int fd = syscall(SYS_openat2, root_fd, op->source, &how, sizeof how);
  if (fd < 0 || fstat(fd, &st) < 0) die_errno("bind-inside source '%s'", op->source);
  snprintf(source, sizeof source, OLDROOT "/proc/self/fd/%d", fd);
  /* The target lies in an image: a link there (its /dev -> /etc) would put
   * the sandbox's /dev over another of the sandbox's own directories. */
  how.resolve |= RESOLVE_NO_SYMLINKS;
  int probe = syscall(SYS_openat2, root_fd, op->dest, &how, sizeof how);
  if (probe < 0 && errno == ELOOP) die("bind-inside target '%s': a symlink on the way (the image has a link there)", op->dest);
  if (probe >= 0) close(probe);
  resolve_target(root_fd, op->dest, S_ISDIR(st.st_mode), target, sizeof target);
  if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) < 0) die_errno("bind %s on %s", op->source, op->dest);
}

static void build_filesystem(uid_t outer_uid) {
  char target[64];

  /* Nothing we mount may propagate back to the host. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die_errno("make mounts private");

  /* A private scratch tmpfs becomes the temporary root; the host root is
   * then reachable at /oldroot and the sandbox's root is built at /newroot. */
  mount_tmpfs(SCRATCH, "0755", NULL);
  if (mkdir(SCRATCH OLDROOT, 0755) < 0 || mkdir(SCRATCH NEWROOT, 0755) < 0 || mkdir(SCRATCH UPPERS, 0755) < 0)
    die_errno("mkdir in scratch");
  if (syscall(SYS_pivot_root, SCRATCH, SCRATCH OLDROOT) < 0) die_errno("pivot_root to scratch");
  if (chdir("/") < 0) die_errno("chdir /");

  int private_uppers = image_root.lowers && image_root.kind == OP_OVERLAY;
  for (int i = 0; i < n_ops; i++) private_uppers |= ops[i].kind == OP_OVERLAY;
  if (private_uppers) mount_tmpfs(UPPERS, "0755", opt_upper_size);

  if (image_root.lowers) {
    /* An image's layers as the root, copy-on-write: the host root is never
     * mounted, so nothing of it (files, /run's sockets) needs hiding. */
    mount_image_root();
  } else {
    /* The host root, read-only. It must be recursive: a user namespace may not
     * bind / alone, because that would uncover what other mounts hide. */
    if (mount(OLDROOT, NEWROOT, NULL, MS_BIND | MS_REC, NULL) < 0) die_errno("bind the host root");
    set_mount_attr(NEWROOT, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
  }

  /* Fresh, private /tmp and /dev before the caller's mounts, so they can
   * target paths below them. */
  mount_tmpfs(NEWROOT "/tmp", "1777", opt_tmpfs_size);
  setup_dev();
  if (!image_root.lowers) hide_runtime_dirs();

  int root_fd = open(NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) die_errno("open new root");
  for (int i = 0; i < n_ops; i++) {
    switch (ops[i].kind) {
    case OP_BIND: case OP_RO_BIND: mount_bind(root_fd, &ops[i]); break;
    case OP_OVERLAY: case OP_OVERLAY_RW: mount_overlay(root_fd, &ops[i], i); break;
    case OP_TMPFS:
      mount_tmpfs(resolve_target(root_fd, ops[i].dest, 1, target, sizeof target), "0755", opt_tmpfs_size);
      break;
    case OP_MASK: mask_path(root_fd, ops[i].dest); break;
    default: break;
    }
  }

  /* A /proc for the new pid namespace; it must be mounted while the host's
   * /proc is still visible to us (the kernel checks that). */
  if (mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    die_errno("mount /proc (in a container, /proc must not be masked; run 'sandbox-run doctor')");
  if (outer_uid == 0) protect_proc();
  /* sysfs shows the network devices of the namespace that mounts it: a
   * fresh one shows only our loopback. Keep the host's (read-only) if the
   * kernel refuses. */
  if (!opt_share_net)
    mount("sysfs", NEWROOT "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);

  /* The sandbox's own /dev, /proc and /tmp into an image mounted for
   * --chroot processes: only now does /proc exist to be bound. */
  for (int i = 0; i < n_ops; i++)
    if (ops[i].kind == OP_BIND_INSIDE) bind_inside(root_fd, &ops[i]);

  /* Switch to the new root and drop the host root and scratch entirely. */
  if (chdir(NEWROOT) < 0) die_errno("chdir new root");
  if (syscall(SYS_pivot_root, ".", ".") < 0) die_errno("pivot_root to new root");
  if (umount2(".", MNT_DETACH) < 0) die_errno("detach old root");
  if (chdir("/") < 0) die_errno("chdir /");
}

/* ---------- the command's process ---------- */

static int rlimit_resource(const char *name) {
  static const struct { const char *name; int resource; } table[] = {
    {"nofile", RLIMIT_NOFILE}, {"fsize", RLIMIT_FSIZE}, {"cpu", RLIMIT_CPU}, {"core", RLIMIT_CORE},
    {"nproc", RLIMIT_NPROC}, {"as", RLIMIT_AS}, {"data", RLIMIT_DATA}, {"stack", RLIMIT_STACK},
  };
  for (size_t i = 0; i < sizeof table / sizeof *table; i++)
    if (!strcmp(name, table[i].name)) return table[i].resource;
  die("--rlimit: unknown limit '%s' (nofile fsize cpu core nproc as data stack)", name);
}

static rlim_t rlimit_value(const char *s) {
  return strcmp(s, "unlimited") ? (rlim_t)parse_number(s, "--rlimit", LONG_MAX) : RLIM_INFINITY;
}

/* Keep stdio, the fds asked for and Node's IPC channel; every other fd
 * is closed by execve. */
static void mark_fds_for_exec(void) {
  if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) die_errno("close_range");
  for (int i = 0; i < n_ops; i++)
    if (ops[i].kind == OP_KEEP_FD) fcntl(ops[i].fd, F_SETFD, 0);
  const char *node_fd = getenv("NODE_CHANNEL_FD");
  if (node_fd && *node_fd) fcntl(atoi(node_fd), F_SETFD, 0);
}

static void apply_process_options(void) {
  for (int i = 0; i < n_ops; i++) {
    struct op *op = &ops[i];
    if (op->kind == OP_CLEARENV) {
      clearenv();
    } else if (op->kind == OP_SETENV) {
      if (setenv(op->name, op->value, 1) < 0) die_errno("setenv %s", op->name);
    } else if (op->kind == OP_UNSETENV) {
      unsetenv(op->name);
    } else if (op->kind == OP_RLIMIT) {
      struct rlimit rl = {rlimit_value(op->soft), rlimit_value(op->hard)};
      if (setrlimit(rlimit_resource(op->name), &rl) < 0) die_errno("--rlimit %s %s %s", op->name, op->soft, op->hard);
    }
  }
  /* An image mounted in the sandbox as this process's root (a service from
   * an image). While capabilities are still held; the working directory
   * moves inside at once, so none is left outside the new root. */
  if (opt_chroot && (chroot(opt_chroot) < 0 || chdir("/") < 0)) die_errno("--chroot %s", opt_chroot);
  if (opt_chdir && chdir(opt_chdir) < 0) die_errno("--chdir %s", opt_chdir);
  /* No setuid binary or file capability may raise privileges from here on. */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die_errno("PR_SET_NO_NEW_PRIVS");
  mark_fds_for_exec();
}

/* SCM_RIGHTS: the pty master made inside the sandbox goes to the supervisor. */
static void send_fd(int sock, int fd) {
  char byte = 0;
  struct iovec iov = {&byte, 1};
  union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) != 1) die_errno("pass the terminal to the supervisor");
}

/* Returns the fd sent by send_fd, or -1 when the sender went away without one. */
static int recv_fd(int sock, int flags) {
  char byte;
  struct iovec iov = {&byte, 1};
  union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags) != 1) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

/* A session of its own: kill(0, sig) and kill(-pgid, sig) then reach only
 * the sandbox's processes, and without a terminal of its own the command
 * has no controlling terminal at all (/dev/tty fails with ENXIO). With one,
 * each of stdin, stdout and stderr that was the caller's terminal becomes
 * the sandbox's pty; it is the controlling terminal only when stdin was a
 * terminal, i.e. the command is interactive. */
static void enter_own_session(void) {
  if (setsid() < 0) die_errno("setsid");
  if (console_sock[1] < 0) return;
  int interactive = isatty(0);
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || unlockpt(master) < 0) die_errno("open a pseudo-terminal in the sandbox");
  /* TIOCGPTPEER opens the peer of this master, not whatever a path names. */
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) die_errno("open the pseudo-terminal's peer (needs Linux 4.13+)");
  /* Set up before the command runs, not when the supervisor gets to it: the
   * caller's window size (later changes follow through SIGWINCH) and, for
   * output only, no CRLF of its own (the caller's terminal adds it). */
  struct winsize ws;
  for (int fd = 0; fd < 3; fd++) {
    if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0) {
      ioctl(slave, TIOCSWINSZ, &ws);
      break;
    }
  }
  struct termios settings;
  if (!interactive && tcgetattr(slave, &settings) == 0) {
    settings.c_oflag &= ~(tcflag_t)OPOST;
    tcsetattr(slave, TCSANOW, &settings);
  }
  send_fd(console_sock[1], master);
  close(master);
  close(console_sock[1]);
  if (interactive && ioctl(slave, TIOCSCTTY, 0) < 0) die_errno("make the pseudo-terminal the controlling terminal");
  for (int fd = 0; fd < 3; fd++)
    if (isatty(fd) && dup2(slave, fd) < 0) die_errno("dup2 the pseudo-terminal");
  close(slave);
}

/* The caller's session keyring (pam_keyinit gives every login one) holds
 * its keys, and a process possessing it may read and add keys: start from
 * a fresh, empty, anonymous one. (An anonymous session keyring may exceed
 * the user's key quota, so fifty sandboxes do not run out.) */
static void join_fresh_session_keyring(void) {
  if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL) < 0 && errno != ENOSYS)
    die_errno("join a fresh session keyring");
}

/* No capability reaches the command, whatever its uid: one would undo the
 * read-only host view and the masks from inside (umount ~/.ssh, remount /
 * read-write). The bounding set goes first, while CAP_SETPCAP is still
 * held; an empty bounding and inheritable set means execve grants nothing,
 * not even to uid 0. */
static void drop_capabilities(void) {
  for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) die_errno("drop capability %d from the bounding set", cap);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) die_errno("clear ambient capabilities");
  struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &header, data) < 0) die_errno("drop capabilities");
}

/* The last steps before execve, in both modes. */
static void isolate_command(void) {
  enter_own_session();
  join_fresh_session_keyring();
  drop_capabilities();
}

/* execvp(3) reports EACCES when some PATH entry was unreadable even if the
 * command exists nowhere; tell "not found" apart from "not executable". */
static int exists_in_path(const char *name) {
  const char *path = getenv("PATH");
  char buf[PATH_MAX];
  if (strchr(name, '/')) return access(name, F_OK) == 0;
  for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
    size_t len = strcspn(p, ":");
    snprintf(buf, sizeof buf, "%.*s/%s", (int)len, p, name);
    if (access(buf, F_OK) == 0) return 1;
    p += len + (p[len] == ':');
  }
  return 0;
}

static void exec_command(const sigset_t *orig_mask) {
  sigprocmask(SIG_SETMASK, orig_mask, NULL);
  execvp(opt_command[0], opt_command);
  if (errno == EACCES && !exists_in_path(opt_command[0])) errno = ENOENT;
  int code = errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
  dprintf(2, "sandbox-run: %s: %s\n", opt_command[0], errno == ENOENT ? "command not found" : strerror(errno));
  _exit(code);
}

static int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---------- the terminal relay (supervisor side) ---------- */

/* The caller's terminal on one side, the sandbox's pty master on the other. */
struct relay {
  int sock;          /* the master arrives here; -1 once it has */
  int master;        /* -1 until it arrives, and after the sandbox hangs up */
  int in;            /* the caller's terminal as stdin, -1 if stdin is none or closed */
  int out;           /* where the sandbox's terminal output goes */
  int size_from;     /* the caller's terminal, whose window size the pty follows */
  char keys[4096];   /* keystrokes read but not yet taken by the master */
  size_t keys_len, keys_off;
};

static struct termios saved_termios;
static int saved_termios_fd = -1;

static void restore_terminal(void) {
  if (saved_termios_fd >= 0) tcsetattr(saved_termios_fd, TCSADRAIN, &saved_termios);
  saved_termios_fd = -1;
}

/* Which of our stdio fds are the caller's terminal, if any. */
static int relay_init(struct relay *r) {
  int out = isatty(1) ? 1 : isatty(2) ? 2 : isatty(0) ? 0 : -1;
  if (out < 0) return 0;
  *r = (struct relay){.sock = -1, .master = -1, .in = isatty(0) ? 0 : -1, .out = out, .size_from = isatty(0) ? 0 : out};
  return 1;
}

static void relay_resize(struct relay *r) {
  struct winsize ws;
  if (r->master >= 0 && ioctl(r->size_from, TIOCGWINSZ, &ws) == 0) ioctl(r->master, TIOCSWINSZ, &ws);
}

/* The master arrived: size it and, for an interactive command, put the
 * caller's terminal in raw mode so that Ctrl-C, Ctrl-Z and every other key
 * reach the sandbox's line discipline instead of signalling us. */
static void relay_take_master(struct relay *r, int nonblocking) {
  int fd = recv_fd(r->sock, nonblocking ? MSG_DONTWAIT : 0);
  if (fd < 0 && nonblocking && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  close(r->sock);
  r->sock = -1;
  if (fd < 0) return;  /* the command ended before it had a terminal */
  r->master = fd;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  relay_resize(r); /* in case the caller's terminal changed size meanwhile */
  struct termios raw;
  if (r->in >= 0 && tcgetattr(r->in, &saved_termios) == 0) {
    raw = saved_termios;
    cfmakeraw(&raw);
    if (tcsetattr(r->in, TCSADRAIN, &raw) == 0) saved_termios_fd = r->in;
  }
}

static void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) return;  /* the caller's terminal is gone: drop output */
    buf += n;
    len -= (size_t)n;
  }
}

/* Copies what the sandbox wrote to the caller's terminal; EIO means every
 * holder of the pty inside has closed it. */
static void relay_output(struct relay *r) {
  char buf[16384];
  for (;;) {
    ssize_t n = read(r->master, buf, sizeof buf);
    if (n > 0) {
      write_all(r->out, buf, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close(r->master);
    r->master = -1;
    return;
  }
}

/* Keystrokes go to the master without blocking: a command that does not
 * read its input must not stop its output from being relayed. */
static void relay_keys(struct relay *r, int readable) {
  if (readable && r->keys_len == 0) {
    ssize_t n = read(r->in, r->keys, sizeof r->keys);
    if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN))) r->in = -1;
    if (n > 0) r->keys_len = (size_t)n, r->keys_off = 0;
  }
  while (r->master >= 0 && r->keys_off < r->keys_len) {
    ssize_t n = write(r->master, r->keys + r->keys_off, r->keys_len - r->keys_off);
    if (n <= 0) return;
    r->keys_off += (size_t)n;
  }
  if (r->keys_off == r->keys_len) r->keys_len = r->keys_off = 0;
}

/* The command is gone: pass on what it wrote last, give the terminal back. */
static void relay_finish(struct relay *r) {
  if (r->sock >= 0) relay_take_master(r, 1);
  if (r->master >= 0) relay_output(r);
  restore_terminal();
}

/* When the caller's terminal is among our stdio, a socket on which the
 * command's process will send the pty master it makes inside. */
static int open_console_socket(struct relay *r) {
  if (!relay_init(r)) return 0;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, console_sock) < 0) die_errno("socketpair");
  r->sock = console_sock[0];
  return 1;
}

/* Wait for CHILD while forwarding the usual termination signals to it, and
 * relaying its terminal (RELAY, may be NULL). Returns its exit code. With
 * REAP_ALL (pid 1) other children are reaped too. */
static int supervise(pid_t child, const sigset_t *signals, int reap_all, struct relay *relay) {
  int sfd = signalfd(-1, signals, SFD_CLOEXEC);
  if (sfd < 0) die_errno("signalfd");
  for (;;) {
    struct pollfd p[4] = {{.fd = sfd, .events = POLLIN}};
    int n = 1, at_sock = -1, at_master = -1, at_in = -1;
    if (relay && relay->sock >= 0) at_sock = n, p[n++] = (struct pollfd){.fd = relay->sock, .events = POLLIN};
    if (relay && relay->master >= 0)
      at_master = n, p[n++] = (struct pollfd){.fd = relay->master, .events = POLLIN | (relay->keys_len ? POLLOUT : 0)};
    if (relay && relay->master >= 0 && relay->in >= 0 && !relay->keys_len)
      at_in = n, p[n++] = (struct pollfd){.fd = relay->in, .events = POLLIN};
    if (poll(p, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      die_errno("poll");
    }
    if (at_sock >= 0 && p[at_sock].revents) relay_take_master(relay, 0);
    if (at_master >= 0 && (p[at_master].revents & (POLLIN | POLLHUP | POLLERR))) relay_output(relay);
    if (at_master >= 0 && relay->master >= 0 && (p[at_master].revents & POLLOUT)) relay_keys(relay, 0);
    if (at_in >= 0 && p[at_in].revents) relay_keys(relay, 1);
    if (!(p[0].revents & POLLIN)) continue;

    struct signalfd_siginfo info;
    if (read(sfd, &info, sizeof info) != sizeof info) continue;
    int sig = (int)info.ssi_signo;
    if (sig == SIGWINCH) {
      /* The kernel signals the sandbox's foreground group itself once its pty changes size. */
      if (relay) relay_resize(relay);
    } else if (sig != SIGCHLD) {
      if (child <= 0) break;  /* idle init: any termination signal ends the sandbox */
      kill(child, sig);
    } else {
      int status;
      pid_t pid;
      while ((pid = waitpid(reap_all ? -1 : child, &status, WNOHANG)) > 0) {
        if (pid != child) continue;
        if (relay) relay_finish(relay);
        close(sfd);
        return exit_code(status);
      }
    }
  }
  close(sfd);
  return 0;
}

/* The supervisor runs as long as its parent, the sandbox as long as the
 * supervisor: a runner killed with SIGKILL takes every sandbox with it. */
static void die_with_parent(pid_t expected_parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) die_errno("PR_SET_PDEATHSIG");
  /* The parent may have died before prctl took effect. */
  if (getppid() != expected_parent) _exit(EXIT_SETUP);
}

/* Children in another pid namespace see getppid() == 0, so they learn that
 * the parent died early from a lifeline pipe: the parent holds its write end
 * open for its whole life, and it hangs up when the parent is gone. */
static void die_with_parent_lifeline(int lifeline_fd) {
  struct pollfd p = {.fd = lifeline_fd, .events = POLLIN};
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) die_errno("PR_SET_PDEATHSIG");
  if (poll(&p, 1, 0) != 0) _exit(EXIT_SETUP);
  close(lifeline_fd);
}

/* Fork (into new namespaces when FLAGS say so). With --cgroup the child is
 * born in that cgroup through clone3(CLONE_INTO_CGROUP), so not one of its
 * instructions runs outside its limits. Kernels before 5.7 lack that: there
 * we move ourselves into the cgroup first and the child inherits it. */
static pid_t spawn_child(uint64_t flags) {
  /* SANDBOX_RUN_NO_CLONE3 forces the old-kernel path, so tests cover it. */
  if (cgroup_fd >= 0 && !getenv("SANDBOX_RUN_NO_CLONE3")) {
    struct clone_args args = {.flags = flags | CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)cgroup_fd};
    pid_t pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid >= 0 || (errno != ENOSYS && errno != E2BIG && errno != EINVAL)) {
      if (pid < 0 && (errno == EACCES || errno == EBUSY || errno == EOPNOTSUPP))
        die_errno("start in cgroup %s (it must be a delegated cgroup v2 directory you own, with no processes of its own; run 'sandbox-run doctor')", opt_cgroup);
      return pid;
    }
  }
  if (cgroup_fd >= 0) {
    char procs[PATH_MAX], self[32];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", opt_cgroup);
    snprintf(self, sizeof self, "%d\n", getpid());
    write_file(procs, self);
    close(cgroup_fd);
    cgroup_fd = -1;
  }
  /* A plain child (join) gets libc's fork, which keeps libc's own state right in it. */
  if (!flags) return fork();
  return syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

/* ---------- the two modes ---------- */

/* Init keeps no handle on the caller's terminal once its command has its own. */
static void drop_terminal_fds(void) {
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd < 3 && null >= 0; fd++)
    if (isatty(fd)) dup2(null, fd);
  if (null >= 0) close(null);
}

static int run_init(int lifeline_fd, int ready_fd, uid_t outer_uid, gid_t outer_gid, const sigset_t *signals, const sigset_t *orig_mask) {
  die_with_parent_lifeline(lifeline_fd);
  /* Out of the caller's process group and session, so that neither a
   * terminal's signals nor kill(0) of the caller's group reach init directly:
   * signals come through the supervisor. */
  if (setsid() < 0) die_errno("setsid");

  write_id_maps(outer_uid, outer_gid);
  if (!opt_share_net) bring_up_loopback();
  if (sethostname(opt_hostname, strlen(opt_hostname)) < 0) die_errno("sethostname");
  build_filesystem(outer_uid);

  pid_t child = 0;
  if (opt_command) {
    child = fork();
    if (child < 0) die_errno("fork");
    if (child == 0) {
      apply_process_options();
      isolate_command();
      exec_command(orig_mask);
    }
  }
  if (console_sock[1] >= 0) close(console_sock[1]);
  drop_terminal_fds();
  if (write(ready_fd, "R", 1) != 1) die_errno("report ready");
  close(ready_fd);
  return supervise(child, signals, 1, NULL);
}

static int run_new_sandbox(const sigset_t *signals, const sigset_t *orig_mask) {
  int lifeline[2], ready_pipe[2];
  uid_t outer_uid = getuid();
  gid_t outer_gid = getgid();
  if (!opt_uid_set) opt_uid = outer_uid == 0 ? 65534 : outer_uid;
  if (!opt_gid_set) opt_gid = outer_uid == 0 ? 65534 : outer_gid;

  if (pipe2(lifeline, O_CLOEXEC) < 0 || pipe2(ready_pipe, O_CLOEXEC) < 0) die_errno("pipe");
  struct relay relay;
  int relaying = opt_command && open_console_socket(&relay);
  uint64_t flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  if (!opt_share_net) flags |= CLONE_NEWNET;

  /* clone(2) without a new stack behaves like fork(2), into new namespaces. */
  pid_t init = spawn_child(flags);
  if (init < 0) {
    /* The two usual causes get their own words; doctor names the exact one. */
    if (errno == ENOSPC)
      die("cannot create user namespace: user.max_user_namespaces is 0 or used up (run 'sandbox-run doctor' for the fix)");
    if (errno == EPERM)
      die("cannot create user namespace: not permitted here (a container's seccomp profile, kernel.unprivileged_userns_clone=0 or AppArmor; run 'sandbox-run doctor' for the fix)");
    if (errno == EINVAL)
      die_errno("cannot create user namespace (run 'sandbox-run doctor' for the cause and the fix)");
    die_errno("clone");
  }
  if (init == 0) {
    if (cgroup_fd >= 0) close(cgroup_fd);
    close(lifeline[1]);
    close(ready_pipe[0]);
    if (opt_info_fd >= 0) close(opt_info_fd);
    if (console_sock[0] >= 0) close(console_sock[0]);
    _exit(run_init(lifeline[0], ready_pipe[1], outer_uid, outer_gid, signals, orig_mask));
  }
  close(lifeline[0]);
  close(ready_pipe[1]);
  if (relaying) close(console_sock[1]);

  char c;
  if (read(ready_pipe[0], &c, 1) == 1 && opt_info_fd >= 0) {
    dprintf(opt_info_fd, "{\"pid\":%d,\"ready\":true}\n", init);
    close(opt_info_fd);
  }
  close(ready_pipe[0]);
  return supervise(init, signals, 0, relaying ? &relay : NULL);
}

/* Enter only the namespaces that differ from ours: setns(2) refuses to
 * "enter" the user namespace we are already in (e.g. --share-net). */
static int namespaces_to_join(pid_t pid) {
  static const struct { const char *name; int flag; } table[] = {
    {"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS}, {"pid", CLONE_NEWPID},
    {"net", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
  };
  int flags = 0;
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    char theirs[64], ours[64];
    struct stat a, b;
    snprintf(theirs, sizeof theirs, "/proc/%d/ns/%s", pid, table[i].name);
    snprintf(ours, sizeof ours, "/proc/self/ns/%s", table[i].name);
    if (stat(theirs, &a) < 0) die_errno("sandbox %d is not running", pid);
    if (stat(ours, &b) < 0) die_errno("stat %s", ours);
    if (a.st_ino != b.st_ino || a.st_dev != b.st_dev) flags |= table[i].flag;
  }
  if (!(flags & CLONE_NEWUSER)) die("process %d is not a sandbox (it shares our user namespace)", pid);
  return flags;
}

static int run_joined(const sigset_t *signals, const sigset_t *orig_mask) {
  /* A pidfd names the process itself, not a number that could be reused,
   * and lets us enter all its namespaces at once. */
  int pidfd = syscall(SYS_pidfd_open, opt_join, 0);
  if (pidfd < 0) die_errno("sandbox %d is not running", opt_join);
  if (setns(pidfd, namespaces_to_join(opt_join)) < 0) die_errno("join sandbox %d", opt_join);
  close(pidfd);

  /* Entering a pid namespace applies to children only: fork. */
  int lifeline[2];
  if (pipe2(lifeline, O_CLOEXEC) < 0) die_errno("pipe");
  struct relay relay;
  int relaying = open_console_socket(&relay);
  pid_t child = spawn_child(0);
  if (child < 0) die_errno("fork");
  if (child == 0) {
    if (cgroup_fd >= 0) close(cgroup_fd);
    if (relaying) close(console_sock[0]);
    close(lifeline[1]);
    die_with_parent_lifeline(lifeline[0]);
    apply_process_options();
    isolate_command();
    exec_command(orig_mask);
  }
  close(lifeline[0]);
  if (relaying) close(console_sock[1]);
  if (opt_info_fd >= 0) {
    dprintf(opt_info_fd, "{\"pid\":%d,\"ready\":true}\n", child);
    close(opt_info_fd);
  }
  return supervise(child, signals, 0, relaying ? &relay : NULL);
}

int main(int argc, char **argv) {
  sigset_t signals, orig_mask;
  pid_t parent = getppid();

  parse_args(argc, argv);
  validate_ops();
  die_with_parent(parent);

  /* Signals are taken synchronously through a signalfd; blocked before any
   * child exists so none is lost. SIGWINCH resizes the relayed terminal. */
  sigemptyset(&signals);
  int forwarded[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) sigaddset(&signals, forwarded[i]);
  if (sigprocmask(SIG_BLOCK, &signals, &orig_mask) < 0) die_errno("sigprocmask");

  return opt_join ? run_joined(&signals, &orig_mask) : run_new_sandbox(&signals, &orig_mask);
}
