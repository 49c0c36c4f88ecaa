/*
 * pg-lazy-write: an LD_PRELOAD library that opens files read-only until the
 * process first writes to them, so that reading a file on overlayfs never
 * copies it up.
 *
 * Why: overlayfs copies a lower file whole into the writable layer when it is
 * *opened* for writing. PostgreSQL opens every relation segment O_RDWR (md.c),
 * so a SELECT copies each table it touches (up to 1 GB per segment) into the
 * sandbox's writable layer. With this library a sandbox that only reads copies
 * nothing, and one that writes copies only the files it writes.
 *
 * What it does, for regular files below $SANDBOX_RUN_PG_LAZY_DIR opened O_RDWR
 * (without O_CREAT, O_TRUNC, O_APPEND, O_TMPFILE, O_PATH or O_DIRECTORY: those
 * pass through untouched):
 *   - the open family (open, open64, openat, openat64, glibc's fortified
 *     __open_2 and friends) opens the file O_RDONLY instead and remembers the
 *     descriptor: its original flags and absolute path;
 *   - every call that needs write access on such a descriptor first reopens
 *     the same file O_RDWR onto the same descriptor number (dup3), keeping
 *     FD_CLOEXEC, the status flags and the file offset: write, pwrite(64),
 *     writev, pwritev(64)(v2), ftruncate(64), fallocate(64),
 *     posix_fallocate(64), copy_file_range / sendfile(64) / splice as the
 *     destination, mmap(64) MAP_SHARED, fcntl write locks and leases, lockf,
 *     ioctl FICLONE / FICLONERANGE, aio_write(64), lio_listio(64), and fdopen
 *     (which hands the descriptor to stdio, whose own calls we cannot see);
 *   - fcntl(F_GETFL) reports O_RDWR, as the program asked for;
 *   - close, close_range, closefrom, dup, dup2, dup3 and fcntl(F_DUPFD*) keep
 *     the table right; descriptors that share one open file description (dup)
 *     are upgraded together, so they keep sharing it.
 *
 * Why that is exact on overlayfs (Linux 4.19+, stacked file operations): a
 * descriptor opened read-only before another one copied the file up reads the
 * upper file afterwards (ovl_real_fdget reopens it), so pread, lseek(SEEK_END)
 * and fstat through it see every write of every process. Reads, fsync,
 * fdatasync, sync_file_range and posix_fadvise work on a read-only descriptor.
 * The reopen goes through /proc/self/fd/N, which names the same dentry even
 * if the path was renamed since (the stored path is the fallback without
 * /proc). The open stays the original one (and fails as it would) unless the
 * file is a regular file the caller may write (faccessat W_OK), so a lazy
 * descriptor never fails later for a reason the open would have reported.
 *
 * Limits (none of which PostgreSQL meets on relation files; see README):
 * writes the library cannot see (raw syscall(2), io_uring: hence
 * io_method=sync on PostgreSQL 18+, a descriptor passed to another process
 * over a socket or kept across execve) hit a read-only descriptor and fail
 * with EBADF; a descriptor shared with a forked child stops sharing its offset
 * once one side upgrades; an upgrade drops the process's POSIX record locks on
 * the file (closing a descriptor does); the first write through a descriptor
 * whose file was unlinked (or renamed over) since the open fails, where the
 * original would have written to the orphan: a lower file without a name has
 * nothing to copy up to (PostgreSQL closes a dropped relation's files and
 * never writes them); /proc/self/fdinfo shows O_RDONLY.
 *
 * Threads: the table is process memory (a forked backend inherits a copy);
 * changes to it are serialized by one mutex; lookups for untracked
 * descriptors take no lock, so the common path costs one load.
 */
#define _GNU_SOURCE
#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define ENV_DIR "SANDBOX_RUN_PG_LAZY_DIR"
/* Descriptors at or above this are opened as asked (PostgreSQL stays near max_files_per_process, 1000). */
#define MAX_FDS 65536
/* Flags that make an open something other than "read and write an existing file": passed through. */
#define PASS_FLAGS (O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE | O_PATH | O_DIRECTORY)
/* Status flags F_SETFL may change after the open: the reopen takes their current value. */
#define STATUS_FLAGS (O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME | O_NONBLOCK)

/* glibc's fortified entry points (<fcntl.h> only declares them under _FORTIFY_SOURCE). */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

struct lazy_fd {
  unsigned long group; /* 0: not tracked; else the open file description's id, shared by its dups (64 bits: never wraps) */
  int flags;      /* the flags the program opened it with */
  char *path;     /* absolute, lexically normalized */
};

static struct lazy_fd table[MAX_FDS];
static int table_top = -1; /* highest tracked descriptor ever: bounds the scans */
static unsigned long next_group = 1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char data_dir[PATH_MAX];
static size_t data_dir_len; /* 0: no directory given, the library passes everything through */

/* ---- the real functions, found once (lazily: a constructor may call us before ours runs) ---- */

static void *next(void **slot, const char *name) {
  void *found = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (!found) {
    found = dlsym(RTLD_NEXT, name);
    __atomic_store_n(slot, found, __ATOMIC_RELEASE);
  }
  return found;
}
#define REAL(name) static void *real_##name
#define NEXT(name) ((__typeof__(&name))next(&real_##name, #name))
/* A symbol the C library lacks (an older glibc): fail the call as the kernel would for a missing one. */
#define NEED(name, fail)                                                                                                                   \
  do {                                                                                                                                     \
    if (!NEXT(name)) {                                                                                                                     \
      errno = ENOSYS;                                                                                                                      \
      return fail;                                                                                                                         \
    }                                                                                                                                      \
  } while (0)

REAL(open);
REAL(open64);
REAL(openat);
REAL(openat64);
REAL(__open_2);
REAL(__open64_2);
REAL(__openat_2);
REAL(__openat64_2);
REAL(close);
REAL(close_range);
REAL(closefrom);
REAL(dup);
REAL(dup2);
REAL(dup3);
REAL(fcntl);
REAL(fcntl64);
REAL(fdopen);
REAL(write);
REAL(pwrite);
REAL(pwrite64);
REAL(writev);
REAL(pwritev);
REAL(pwritev64);
REAL(pwritev2);
REAL(pwritev64v2);
REAL(ftruncate);
REAL(ftruncate64);
REAL(fallocate);
REAL(fallocate64);
REAL(posix_fallocate);
REAL(posix_fallocate64);
REAL(copy_file_range);
REAL(sendfile);
REAL(sendfile64);
REAL(splice);
REAL(mmap);
REAL(mmap64);
REAL(lockf);
REAL(lockf64);
REAL(ioctl);
REAL(aio_write);
REAL(aio_write64);
REAL(lio_listio);
REAL(lio_listio64);

/* ---- paths ---- */

/* Collapses "//", "." and ".." in an absolute path, in place (".." at the root stays at the root). */
static void normalize(char *path) {
  char *out = path;
  const char *in = path;
  while (*in) {
    while (*in == '/') in++;
    const char *end = strchrnul(in, '/');
    size_t len = (size_t)(end - in);
    if (len == 0 || (len == 1 && in[0] == '.')) {
      /* nothing */
    } else if (len == 2 && in[0] == '.' && in[1] == '.') {
      while (out > path && *--out != '/') {
      }
    } else {
      *out++ = '/';
      memmove(out, in, len);
      out += len;
    }
    in = end;
  }
  if (out == path) *out++ = '/';
  *out = '\0';
}

/* The absolute path `path` names relative to `dirfd`, normalized; false if it cannot be known or is too long. */
static bool absolute(int dirfd, const char *path, char out[PATH_MAX]) {
  size_t len;
  if (path[0] == '/') {
    len = 0;
  } else if (dirfd == AT_FDCWD) {
    if (!getcwd(out, PATH_MAX)) return false;
    len = strlen(out);
  } else {
    char link[32];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    ssize_t n = readlink(link, out, PATH_MAX - 1);
    if (n <= 0 || out[0] != '/') return false;
    len = (size_t)n;
  }
  size_t rest = strlen(path);
  if (len + 1 + rest + 1 > PATH_MAX) return false;
  out[len] = '/';
  memcpy(out + len + 1, path, rest + 1);
  normalize(out);
  return true;
}

static bool below_data_dir(const char *abs) {
  return strncmp(abs, data_dir, data_dir_len) == 0 && abs[data_dir_len] == '/';
}

__attribute__((constructor)) static void init(void) {
  const char *dir = getenv(ENV_DIR);
  if (!dir || dir[0] != '/' || strlen(dir) >= sizeof data_dir) return;
  strcpy(data_dir, dir);
  normalize(data_dir);
  if (strcmp(data_dir, "/") == 0) return; /* "everything" is not a data directory */
  data_dir_len = strlen(data_dir);
}

/* ---- the table ---- */

static void lock_table(void) { pthread_mutex_lock(&lock); }
static void unlock_table(void) { pthread_mutex_unlock(&lock); }
/* A fork while another thread holds the lock must not leave the child's copy locked. */
__attribute__((constructor)) static void fork_safe(void) { pthread_atfork(lock_table, unlock_table, unlock_table); }

static bool tracked(int fd) { return fd >= 0 && fd < MAX_FDS && __atomic_load_n(&table[fd].group, __ATOMIC_ACQUIRE) != 0; }

/* Callers hold the lock. */
static void forget(int fd) {
  if (fd < 0 || fd >= MAX_FDS || !table[fd].group) return;
  free(table[fd].path);
  table[fd].path = NULL;
  __atomic_store_n(&table[fd].group, 0, __ATOMIC_RELEASE);
}

/* Callers hold the lock. `to` was closed by the call that made it a copy of `from`. */
static void copy_entry(int from, int to) {
  forget(to);
  if (!tracked(from) || to >= MAX_FDS) return;
  char *path = strdup(table[from].path);
  if (!path) return; /* untracked, the copy stays read-only: cannot happen short of memory exhaustion */
  table[to].flags = table[from].flags;
  table[to].path = path;
  if (to > table_top) table_top = to;
  __atomic_store_n(&table[to].group, table[from].group, __ATOMIC_RELEASE);
}

/*
 * Reopens a tracked descriptor read-write onto the same number, and every
 * descriptor of the same open file description with it. 0 when `fd` is not
 * (or no longer) tracked or was upgraded; -1 with errno from the reopen
 * (ENOSPC when the copy-up does not fit, ...), the descriptor unchanged.
 */
static int upgrade(int fd) {
  if (!tracked(fd)) return 0;
  lock_table();
  int result = 0;
  struct lazy_fd *entry = &table[fd];
  if (!entry->group) goto out;
  int status = NEXT(fcntl)(fd, F_GETFL);
  off_t offset = lseek(fd, 0, SEEK_CUR);
  if (status < 0) {
    result = -1;
    goto out;
  }
  int flags = (entry->flags & ~(O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | STATUS_FLAGS)) | (status & STATUS_FLAGS) | O_RDWR | O_CLOEXEC;
  char self[32];
  snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  /* The magic link is the file itself: following it is the point, O_NOFOLLOW would refuse it. */
  int fresh = NEXT(openat)(AT_FDCWD, self, flags & ~O_NOFOLLOW);
  if (fresh < 0 && errno == ENOENT && access("/proc/self/fd", F_OK) != 0) fresh = NEXT(openat)(AT_FDCWD, entry->path, flags);
  if (fresh < 0) {
    result = -1;
    goto out;
  }
  unsigned long group = entry->group;
  for (int other = 0; other <= table_top; other++) {
    if (table[other].group != group) continue;
    int cloexec = NEXT(fcntl)(other, F_GETFD);
    if (cloexec < 0 || NEXT(dup3)(fresh, other, (cloexec & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
      /* Cannot happen for a valid descriptor; the ones already done are read-write, this one stays lazy. */
      int saved = errno;
      NEXT(close)(fresh);
      errno = saved;
      result = -1;
      goto out;
    }
    forget(other);
  }
  NEXT(close)(fresh);
  if (offset >= 0) lseek(fd, offset, SEEK_SET); /* one offset: the dups share the new description */
out:
  unlock_table();
  return result;
}

/* ---- the open family ---- */

/*
 * The lazy open: a read-only descriptor for a regular file below the data
 * directory opened O_RDWR, else `original()` (the call as the program made it).
 */
static int lazy_open(int dirfd, const char *path, int flags, int (*original)(int, const char *, int, mode_t), mode_t mode) {
  if (!data_dir_len || !path || (flags & O_ACCMODE) != O_RDWR || (flags & PASS_FLAGS)) return original(dirfd, path, flags, mode);
  char abs[PATH_MAX];
  if (!absolute(dirfd, path, abs) || !below_data_dir(abs)) return original(dirfd, path, flags, mode);
  /* Stat first: opening a FIFO or a device read-only has effects of its own (it would wake a waiting writer). */
  struct stat st;
  int at = (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0;
  if (fstatat(dirfd, path, &st, at) != 0 || !S_ISREG(st.st_mode) || faccessat(dirfd, path, W_OK, AT_EACCESS) != 0)
    return original(dirfd, path, flags, mode);
  int fd = NEXT(openat)(dirfd, path, (flags & ~O_ACCMODE) | O_RDONLY, 0);
  if (fd < 0) return original(dirfd, path, flags, mode);
  char *copy = fd < MAX_FDS ? strdup(abs) : NULL;
  if (!copy) {
    NEXT(close)(fd);
    return original(dirfd, path, flags, mode);
  }
  lock_table();
  forget(fd); /* a stale entry: the number was closed behind our back (raw syscall) */
  table[fd].flags = flags;
  table[fd].path = copy;
  if (fd > table_top) table_top = fd;
  __atomic_store_n(&table[fd].group, next_group++, __ATOMIC_RELEASE);
  unlock_table();
  return fd;
}

/* The original calls, in one shape. */
static int call_open(int dirfd, const char *path, int flags, mode_t mode) {
  (void)dirfd;
  return NEXT(open)(path, flags, mode);
}
static int call_open64(int dirfd, const char *path, int flags, mode_t mode) {
  (void)dirfd;
  return NEXT(open64)(path, flags, mode);
}
static int call_openat(int dirfd, const char *path, int flags, mode_t mode) { return NEXT(openat)(dirfd, path, flags, mode); }
static int call_openat64(int dirfd, const char *path, int flags, mode_t mode) { return NEXT(openat64)(dirfd, path, flags, mode); }
static int call_open_2(int dirfd, const char *path, int flags, mode_t mode) {
  (void)dirfd, (void)mode;
  return NEXT(__open_2)(path, flags);
}
static int call_open64_2(int dirfd, const char *path, int flags, mode_t mode) {
  (void)dirfd, (void)mode;
  return NEXT(__open64_2)(path, flags);
}
static int call_openat_2(int dirfd, const char *path, int flags, mode_t mode) {
  (void)mode;
  return NEXT(__openat_2)(dirfd, path, flags);
}
static int call_openat64_2(int dirfd, const char *path, int flags, mode_t mode) {
  (void)mode;
  return NEXT(__openat64_2)(dirfd, path, flags);
}

/* The mode argument is there only when the flags need one (as glibc reads it). */
#define MODE_ARG(flags)                                                                                                                    \
  mode_t mode = 0;                                                                                                                         \
  if ((flags) & (O_CREAT | O_TMPFILE)) {                                                                                                   \
    va_list ap;                                                                                                                            \
    va_start(ap, flags);                                                                                                                   \
    mode = va_arg(ap, mode_t);                                                                                                             \
    va_end(ap);                                                                                                                            \
  }

EXPORT int open(const char *path, int flags, ...) {
  MODE_ARG(flags);
  return lazy_open(AT_FDCWD, path, flags, call_open, mode);
}
EXPORT int open64(const char *path, int flags, ...) {
  MODE_ARG(flags);
  return lazy_open(AT_FDCWD, path, flags, call_open64, mode);
}
EXPORT int openat(int dirfd, const char *path, int flags, ...) {
  MODE_ARG(flags);
  return lazy_open(dirfd, path, flags, call_openat, mode);
}
EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
  MODE_ARG(flags);
  return lazy_open(dirfd, path, flags, call_openat64, mode);
}
EXPORT int __open_2(const char *path, int flags) { return lazy_open(AT_FDCWD, path, flags, call_open_2, 0); }
EXPORT int __open64_2(const char *path, int flags) { return lazy_open(AT_FDCWD, path, flags, call_open64_2, 0); }
EXPORT int __openat_2(int dirfd, const char *path, int flags) { return lazy_open(dirfd, path, flags, call_openat_2, 0); }
EXPORT int __openat64_2(int dirfd, const char *path, int flags) { return lazy_open(dirfd, path, flags, call_openat64_2, 0); }

/* ---- descriptors coming and going ---- */

EXPORT int close(int fd) {
  if (!tracked(fd)) return NEXT(close)(fd);
  lock_table();
  forget(fd); /* before: once closed, another thread may get the number */
  int result = NEXT(close)(fd);
  unlock_table();
  return result;
}

EXPORT int close_range(unsigned first, unsigned last, int flags) {
  NEED(close_range, -1);
  if (table_top < 0 || (flags & (int)CLOSE_RANGE_CLOEXEC)) return NEXT(close_range)(first, last, flags);
  lock_table();
  int result = NEXT(close_range)(first, last, flags);
  if (result == 0)
    for (unsigned fd = first; fd <= last && fd <= (unsigned)table_top; fd++) forget((int)fd);
  unlock_table();
  return result;
}

EXPORT void closefrom(int lowfd) {
  if (!NEXT(closefrom)) return;
  lock_table();
  NEXT(closefrom)(lowfd);
  for (int fd = lowfd < 0 ? 0 : lowfd; fd <= table_top; fd++) forget(fd);
  unlock_table();
}

EXPORT int dup(int fd) {
  if (!tracked(fd)) return NEXT(dup)(fd);
  lock_table();
  int copy = NEXT(dup)(fd);
  if (copy >= 0) copy_entry(fd, copy);
  unlock_table();
  return copy;
}

EXPORT int dup2(int fd, int to) {
  if (fd == to || (!tracked(fd) && !tracked(to))) return NEXT(dup2)(fd, to);
  lock_table();
  int result = NEXT(dup2)(fd, to);
  if (result >= 0) copy_entry(fd, to);
  unlock_table();
  return result;
}

EXPORT int dup3(int fd, int to, int flags) {
  if (fd == to || (!tracked(fd) && !tracked(to))) return NEXT(dup3)(fd, to, flags);
  lock_table();
  int result = NEXT(dup3)(fd, to, flags);
  if (result >= 0) copy_entry(fd, to);
  unlock_table();
  return result;
}

/* stdio's writes go to the descriptor without passing through us: it gets the read-write one. */
EXPORT FILE *fdopen(int fd, const char *mode) {
  if (upgrade(fd) < 0) return NULL;
  return NEXT(fdopen)(fd, mode);
}

/* ---- fcntl ---- */

static bool needs_write(int cmd, void *arg) {
  switch (cmd) {
  case F_SETLK:
  case F_SETLKW:
  case F_OFD_SETLK:
  case F_OFD_SETLKW:
    return arg && ((struct flock *)arg)->l_type == F_WRLCK; /* a write lock needs a descriptor open for writing */
  case F_SETLEASE:
    return true; /* a read lease is granted only on a read-only descriptor */
  default:
    return false;
  }
}

static int lazy_fcntl(__typeof__(&fcntl) real, int fd, int cmd, void *arg) {
  if (!tracked(fd)) return real(fd, cmd, arg);
  if (needs_write(cmd, arg) && upgrade(fd) < 0) return -1;
  if (cmd == F_GETFL) {
    int flags = real(fd, cmd, arg);
    /* Still lazy: the program asked for O_RDWR. */
    return flags < 0 || !tracked(fd) ? flags : (flags & ~O_ACCMODE) | O_RDWR;
  }
  if (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC) return real(fd, cmd, arg);
  lock_table();
  int copy = real(fd, cmd, arg);
  if (copy >= 0) copy_entry(fd, copy);
  unlock_table();
  return copy;
}

/* Every fcntl argument fits a pointer (glibc reads it the same way). */
EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  return lazy_fcntl(NEXT(fcntl), fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  NEED(fcntl64, -1);
  return lazy_fcntl(NEXT(fcntl64), fd, cmd, arg);
}

/* ---- calls that write ---- */

/* Upgrades `fd` first; on failure the call fails with the reopen's errno. */
#define WRITING(fd, fail)                                                                                                                  \
  do {                                                                                                                                     \
    if (upgrade(fd) < 0) return fail;                                                                                                      \
  } while (0)

EXPORT ssize_t write(int fd, const void *buf, size_t count) {
  WRITING(fd, -1);
  return NEXT(write)(fd, buf, count);
}
EXPORT ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  WRITING(fd, -1);
  return NEXT(pwrite)(fd, buf, count, offset);
}
EXPORT ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
  WRITING(fd, -1);
  return NEXT(pwrite64)(fd, buf, count, offset);
}
EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  WRITING(fd, -1);
  return NEXT(writev)(fd, iov, iovcnt);
}
EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
  WRITING(fd, -1);
  return NEXT(pwritev)(fd, iov, iovcnt, offset);
}
EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t offset) {
  WRITING(fd, -1);
  return NEXT(pwritev64)(fd, iov, iovcnt, offset);
}
EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags) {
  WRITING(fd, -1);
  return NEXT(pwritev2)(fd, iov, iovcnt, offset, flags);
}
EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int iovcnt, off64_t offset, int flags) {
  WRITING(fd, -1);
  return NEXT(pwritev64v2)(fd, iov, iovcnt, offset, flags);
}
EXPORT int ftruncate(int fd, off_t length) {
  WRITING(fd, -1);
  return NEXT(ftruncate)(fd, length);
}
EXPORT int ftruncate64(int fd, off64_t length) {
  WRITING(fd, -1);
  return NEXT(ftruncate64)(fd, length);
}
EXPORT int fallocate(int fd, int mode, off_t offset, off_t len) {
  WRITING(fd, -1);
  return NEXT(fallocate)(fd, mode, offset, len);
}
EXPORT int fallocate64(int fd, int mode, off64_t offset, off64_t len) {
  WRITING(fd, -1);
  return NEXT(fallocate64)(fd, mode, offset, len);
}
/* posix_fallocate returns the error number instead of setting errno. */
EXPORT int posix_fallocate(int fd, off_t offset, off_t len) {
  if (upgrade(fd) < 0) return errno;
  return NEXT(posix_fallocate)(fd, offset, len);
}
EXPORT int posix_fallocate64(int fd, off64_t offset, off64_t len) {
  if (upgrade(fd) < 0) return errno;
  return NEXT(posix_fallocate64)(fd, offset, len);
}
EXPORT ssize_t copy_file_range(int in, off64_t *in_offset, int out, off64_t *out_offset, size_t len, unsigned flags) {
  WRITING(out, -1);
  NEED(copy_file_range, -1);
  return NEXT(copy_file_range)(in, in_offset, out, out_offset, len, flags);
}
EXPORT ssize_t sendfile(int out, int in, off_t *offset, size_t count) {
  WRITING(out, -1);
  return NEXT(sendfile)(out, in, offset, count);
}
EXPORT ssize_t sendfile64(int out, int in, off64_t *offset, size_t count) {
  WRITING(out, -1);
  return NEXT(sendfile64)(out, in, offset, count);
}
EXPORT ssize_t splice(int in, off64_t *in_offset, int out, off64_t *out_offset, size_t len, unsigned flags) {
  WRITING(out, -1);
  return NEXT(splice)(in, in_offset, out, out_offset, len, flags);
}

/*
 * Any shared mapping: a writable one needs a read-write descriptor, a
 * read-only one could be made writable by mprotect later, and a shared
 * mapping of the lower file would not see the copy-up's later writes.
 */
EXPORT void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
  if (!(flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) != MAP_PRIVATE) WRITING(fd, MAP_FAILED);
  return NEXT(mmap)(addr, length, prot, flags, fd, offset);
}
EXPORT void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off64_t offset) {
  if (!(flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) != MAP_PRIVATE) WRITING(fd, MAP_FAILED);
  return NEXT(mmap64)(addr, length, prot, flags, fd, offset);
}

/* lockf takes a write lock through glibc's own fcntl, which we do not see. */
EXPORT int lockf(int fd, int cmd, off_t len) {
  if (cmd == F_LOCK || cmd == F_TLOCK) WRITING(fd, -1);
  return NEXT(lockf)(fd, cmd, len);
}
EXPORT int lockf64(int fd, int cmd, off64_t len) {
  if (cmd == F_LOCK || cmd == F_TLOCK) WRITING(fd, -1);
  return NEXT(lockf64)(fd, cmd, len);
}

/* A clone into a file writes it. */
EXPORT int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  if (request == FICLONE || request == FICLONERANGE) WRITING(fd, -1);
  return NEXT(ioctl)(fd, request, arg);
}

/* POSIX AIO writes from glibc's own threads, with calls we do not see. */
EXPORT int aio_write(struct aiocb *cb) {
  WRITING(cb->aio_fildes, -1);
  return NEXT(aio_write)(cb);
}
EXPORT int aio_write64(struct aiocb64 *cb) {
  WRITING(cb->aio_fildes, -1);
  return NEXT(aio_write64)(cb);
}
EXPORT int lio_listio(int mode, struct aiocb *const list[], int count, struct sigevent *sev) {
  for (int i = 0; i < count; i++)
    if (list[i] && list[i]->aio_lio_opcode == LIO_WRITE) WRITING(list[i]->aio_fildes, -1);
  return NEXT(lio_listio)(mode, list, count, sev);
}
EXPORT int lio_listio64(int mode, struct aiocb64 *const list[], int count, struct sigevent *sev) {
  for (int i = 0; i < count; i++)
    if (list[i] && list[i]->aio_lio_opcode == LIO_WRITE) WRITING(list[i]->aio_fildes, -1);
  return NEXT(lio_listio64)(mode, list, count, sev);
}
