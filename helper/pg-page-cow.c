/*
 * pg-page-cow: an LD_PRELOAD library that gives PostgreSQL relation files
 * page-level copy-on-write inside an overlayfs sandbox (copyUp 'pages').
 *
 * Why: overlayfs copies a lower file whole (up to a 1 GB segment) into the
 * writable layer when it is opened for writing. pg-lazy-write.so delays that
 * to the first write; this library removes it: the lower relation file is
 * never opened for writing, so a 10-row UPDATE costs the 8 KiB blocks it
 * writes, not the segment.
 *
 * Preloaded before pg-lazy-write.so ("pg-page-cow.so pg-lazy-write.so"):
 * calls on anything but a relation file go to the next library unchanged.
 * A relation file is $SANDBOX_RUN_PG_LAZY_DIR/{base/<db>,global}/<digits>[_fsm|
 * _vm|_init][.<segment>] (temporary relations, t<n>_<m>, are created in the
 * upper layer and need nothing). For each one, in $SANDBOX_RUN_PG_PAGES_DIR
 * (same overlay, outside the data directory, so PostgreSQL's directory scans
 * and size sums see only its own files):
 *   <rel>      the delta: a sparse file with the written blocks at their offsets;
 *   <rel>.map  a header (logical size, "lower limit": the lower file counts
 *              only below it, so a truncate then an extend reads zeros) and a
 *              bitmap, one bit per 8 KiB block set once the delta holds it.
 *              Every process maps it MAP_SHARED; bits and sizes change with
 *              atomic operations, so backends see each other's writes at once.
 * Both appear at the first write, truncate or extend (the map last, fully
 * initialized, by link(2), so a reader never sees half a header).
 *
 * Reads (read, __read_chk, pread, preadv) merge per block: the delta where the bit is set,
 * else the lower file below the lower limit, else zeros, up to the logical
 * size. Writes go to the delta, data first, then the bit: a reader racing a
 * write sees the old block or the new one (PostgreSQL's buffer locks keep it
 * from reading a block being written anyway). A write covering part of a
 * block whose bit is clear first copies the block in, under an flock(2) of the
 * map (so does truncate). lseek(SEEK_END), fstat and stat/lstat/fstatat/statx
 * on the path (and glibc < 2.33's __xstat/__lxstat/__fxstat/__fxstatat, which
 * binaries built against it call) report the logical size; ftruncate, truncate(path), fallocate
 * (mode 0 or KEEP_SIZE) and posix_fallocate change it. fsync and fdatasync
 * also sync the delta and the map. unlink(path) removes the delta and map too.
 *
 * Limits (PostgreSQL 15-18 meets none of them on relation files, see README):
 * a shared or private mmap of a relation file fails with ENODEV, and
 * copy_file_range/sendfile/splice from or to one with EXDEV (PostgreSQL 18's
 * file_copy_method=clone would fail: keep the default 'copy'); O_APPEND opens,
 * fcntl(F_DUPFD), rename and hard links of relation files are not handled;
 * io_uring and raw syscalls bypass the library (io_method=sync on 18); files
 * above 8 GiB (1 << 20 blocks: PostgreSQL's segments are 1 GB) fail with EFBIG.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define ENV_DATA "SANDBOX_RUN_PG_LAZY_DIR"
#define ENV_PAGES "SANDBOX_RUN_PG_PAGES_DIR"
#define MAX_FDS 65536
#define BLOCK 8192ULL
#define MAX_BLOCKS (1ULL << 20)
#define HEADER 4096ULL
#define MAP_BYTES (HEADER + MAX_BLOCKS / 8)
#define MAGIC 0x7067636f77763031ULL /* "pgcowv01" */

int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
/*
 * glibc before 2.33 had no stat/fstat/lstat symbols: programs built against it (the @embedded-postgres builds of
 * PostgreSQL 16-18, linked against glibc 2.27) call these versioned wrappers, which today's glibc still exports.
 * `ver` is _STAT_VER; the struct is the same.
 */
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);
/* read() with _FORTIFY_SOURCE and a buffer of known size: every PostgreSQL 15-18 build imports it. */
ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen);

struct header {
  uint64_t magic;
  uint64_t size;        /* logical size in bytes */
  uint64_t lower_limit; /* the lower file's bytes count only below this */
};

struct cow {
  char *rel;          /* relative to the data directory; NULL: not a relation file */
  bool absent;        /* no map as of epoch `seen`: reads skip looking for one until the epoch moves */
  uint64_t seen;
  int delta;          /* -1 until attached */
  int mapfd;          /* -1 until attached */
  struct header *map; /* NULL until attached; the bitmap follows at HEADER */
};

static struct cow table[MAX_FDS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char data_dir[PATH_MAX], pages_dir[PATH_MAX];
static size_t data_dir_len; /* 0: inert */
/*
 * $SANDBOX_RUN_PG_PAGES_DIR/.epoch, mapped MAP_SHARED: a counter every process bumps after it publishes a map. A
 * descriptor that found no map at epoch E needs not look again (an open that fails costs a path walk through the
 * overlay, ~2 us, on every 8 KiB read) until the counter moves: a map made before a write that happened before our
 * read is published with its bump first, so the read sees the bump and then the map.
 */
static uint64_t *epoch;
static bool epoch_tried;

/* ---- the next library's functions ---- */

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

REAL(open);
REAL(open64);
REAL(openat);
REAL(openat64);
REAL(__open_2);
REAL(__open64_2);
REAL(__openat_2);
REAL(__openat64_2);
REAL(close);
REAL(dup);
REAL(dup2);
REAL(dup3);
REAL(read);
REAL(pread);
REAL(pread64);
REAL(readv);
REAL(preadv);
REAL(preadv64);
REAL(preadv2);
REAL(write);
REAL(pwrite);
REAL(pwrite64);
REAL(writev);
REAL(pwritev);
REAL(pwritev64);
REAL(pwritev2);
REAL(lseek);
REAL(lseek64);
REAL(fstat);
REAL(fstat64);
REAL(stat);
REAL(stat64);
REAL(lstat);
REAL(lstat64);
REAL(fstatat);
REAL(fstatat64);
REAL(statx);
REAL(__xstat);
REAL(__xstat64);
REAL(__lxstat);
REAL(__lxstat64);
REAL(__fxstat);
REAL(__fxstat64);
REAL(__fxstatat);
REAL(__fxstatat64);
REAL(__read_chk);
REAL(ftruncate);
REAL(ftruncate64);
REAL(truncate);
REAL(truncate64);
REAL(fallocate);
REAL(fallocate64);
REAL(posix_fallocate);
REAL(posix_fallocate64);
REAL(fsync);
REAL(fdatasync);
REAL(unlink);
REAL(unlinkat);
REAL(mmap);
REAL(mmap64);
REAL(copy_file_range);
REAL(sendfile);
REAL(sendfile64);
REAL(splice);

/* ---- paths ---- */

static void normalize(char *path) {
  char *out = path;
  const char *in = path;
  while (*in) {
    while (*in == '/') in++;
    const char *end = strchrnul(in, '/');
    size_t len = (size_t)(end - in);
    if (len == 0 || (len == 1 && in[0] == '.')) {
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

static bool digits(const char **p) {
  const char *start = *p;
  while (**p >= '0' && **p <= '9') (*p)++;
  return *p > start;
}

/* <digits>[_fsm|_vm|_init][.<digits>], nothing else. */
static bool relation_name(const char *p) {
  if (!digits(&p)) return false;
  if (*p == '_') {
    if (strncmp(p, "_fsm", 4) == 0) p += 4;
    else if (strncmp(p, "_vm", 3) == 0) p += 3;
    else if (strncmp(p, "_init", 5) == 0) p += 5;
    else return false;
  }
  if (*p == '.') {
    p++;
    if (!digits(&p)) return false;
  }
  return *p == '\0';
}

/* The path relative to the data directory if `path` names a relation file there, else NULL (into `abs`). */
static const char *relation(int dirfd, const char *path, char abs[PATH_MAX]) {
  if (!data_dir_len || !path || !absolute(dirfd, path, abs)) return NULL;
  if (strncmp(abs, data_dir, data_dir_len) != 0 || abs[data_dir_len] != '/') return NULL;
  const char *rel = abs + data_dir_len + 1;
  const char *p = rel;
  if (strncmp(p, "global/", 7) == 0) {
    p += 7;
  } else if (strncmp(p, "base/", 5) == 0) {
    p += 5;
    if (!digits(&p) || *p++ != '/') return NULL;
  } else {
    return NULL;
  }
  return relation_name(p) ? rel : NULL;
}

static bool side_path(const char *rel, const char *suffix, char out[PATH_MAX]) {
  return snprintf(out, PATH_MAX, "%s/%s%s", pages_dir, rel, suffix) < PATH_MAX;
}

/* mkdir -p of the directories above `path`. */
static void make_parents(char *path) {
  for (char *slash = strchr(path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
    *slash = '\0';
    mkdir(path, 0700);
    *slash = '/';
  }
}

__attribute__((constructor)) static void init(void) {
  const char *data = getenv(ENV_DATA), *pages = getenv(ENV_PAGES);
  if (!data || !pages || data[0] != '/' || pages[0] != '/' || strlen(data) >= PATH_MAX || strlen(pages) >= PATH_MAX) return;
  strcpy(data_dir, data);
  strcpy(pages_dir, pages);
  normalize(data_dir);
  normalize(pages_dir);
  if (strcmp(data_dir, "/") == 0) return;
  data_dir_len = strlen(data_dir);
}

/* ---- the shared map ---- */

static uint64_t *bitmap(struct header *map) { return (uint64_t *)((char *)map + HEADER); }
static bool bit(struct header *map, uint64_t block) {
  return (__atomic_load_n(&bitmap(map)[block / 64], __ATOMIC_ACQUIRE) >> (block % 64)) & 1;
}
static void set_bit(struct header *map, uint64_t block) { __atomic_fetch_or(&bitmap(map)[block / 64], 1ULL << (block % 64), __ATOMIC_RELEASE); }
static void clear_bit(struct header *map, uint64_t block) {
  __atomic_fetch_and(&bitmap(map)[block / 64], ~(1ULL << (block % 64)), __ATOMIC_RELEASE);
}
static uint64_t load(uint64_t *field) { return __atomic_load_n(field, __ATOMIC_ACQUIRE); }
static void grow_to(struct header *map, uint64_t end) {
  uint64_t size = load(&map->size);
  while (size < end && !__atomic_compare_exchange_n(&map->size, &size, end, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
  }
}

/* The shared counter, mapped on first use; NULL where it cannot be (then every read looks for a map). */
static uint64_t *epoch_counter(void) {
  if (__atomic_load_n(&epoch_tried, __ATOMIC_ACQUIRE)) return __atomic_load_n(&epoch, __ATOMIC_ACQUIRE);
  pthread_mutex_lock(&lock);
  if (!epoch_tried) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/.epoch", pages_dir) < PATH_MAX) {
      make_parents(path);
      int fd = NEXT(openat)(AT_FDCWD, path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      struct stat st;
      /* Growing an empty file to one page with zeros is the same whoever does it, and a counter of 0 is the start. */
      if (fd >= 0 && NEXT(fstat)(fd, &st) == 0 && (st.st_size >= 4096 || NEXT(ftruncate)(fd, 4096) == 0)) {
        void *map = NEXT(mmap)(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map != MAP_FAILED) __atomic_store_n(&epoch, (uint64_t *)map, __ATOMIC_RELEASE);
      }
      if (fd >= 0) NEXT(close)(fd);
    }
    __atomic_store_n(&epoch_tried, true, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&lock);
  return __atomic_load_n(&epoch, __ATOMIC_ACQUIRE);
}

static struct cow *cow_of(int fd) {
  return fd >= 0 && fd < MAX_FDS && __atomic_load_n(&table[fd].rel, __ATOMIC_ACQUIRE) ? &table[fd] : NULL;
}

/* Maps an existing map file (and opens the delta): true if the file has one. */
static bool attach(struct cow *c) {
  if (c->map) return true;
  uint64_t *counter = epoch_counter();
  /* Read before the look: a map published after this load moves the counter past it. */
  uint64_t now = counter ? __atomic_load_n(counter, __ATOMIC_SEQ_CST) : 0;
  if (counter && c->absent && c->seen == now) return false;
  char map_path[PATH_MAX], delta_path[PATH_MAX];
  if (!side_path(c->rel, ".map", map_path) || !side_path(c->rel, "", delta_path)) return false;
  int mapfd = NEXT(openat)(AT_FDCWD, map_path, O_RDWR | O_CLOEXEC, 0);
  if (mapfd < 0) {
    c->absent = errno == ENOENT;
    c->seen = now;
    return false;
  }
  int delta = NEXT(openat)(AT_FDCWD, delta_path, O_RDWR | O_CLOEXEC, 0);
  void *map = delta < 0 ? MAP_FAILED : NEXT(mmap)(NULL, MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, mapfd, 0);
  if (map == MAP_FAILED) {
    NEXT(close)(mapfd);
    if (delta >= 0) NEXT(close)(delta);
    return false;
  }
  c->mapfd = mapfd;
  c->delta = delta;
  c->map = map;
  return true;
}

/* Attaches, creating the delta and the map first if the file has none: before its first write. */
static int ensure(int fd, struct cow *c) {
  if (attach(c)) return 0;
  char map_path[PATH_MAX], delta_path[PATH_MAX], temp[PATH_MAX];
  if (!side_path(c->rel, ".map", map_path) || !side_path(c->rel, "", delta_path) ||
      snprintf(temp, sizeof temp, "%s.%d.tmp", map_path, getpid()) >= PATH_MAX) {
    errno = ENAMETOOLONG;
    return -1;
  }
  struct stat st;
  if (NEXT(fstat)(fd, &st) != 0) return -1;
  make_parents(delta_path);
  int delta = NEXT(openat)(AT_FDCWD, delta_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (delta < 0) return -1;
  NEXT(close)(delta);
  int tmp = NEXT(openat)(AT_FDCWD, temp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (tmp < 0) return -1;
  struct header h = {MAGIC, (uint64_t)st.st_size, (uint64_t)st.st_size};
  bool ok = NEXT(ftruncate)(tmp, (off_t)MAP_BYTES) == 0 && NEXT(pwrite)(tmp, &h, sizeof h, 0) == (ssize_t)sizeof h;
  NEXT(close)(tmp);
  /* link(2) publishes it whole; EEXIST: another process was first, and its map counts. */
  if (ok && link(temp, map_path) != 0 && errno != EEXIST) ok = false;
  int saved = errno;
  NEXT(unlink)(temp);
  if (!ok) {
    errno = saved;
    return -1;
  }
  uint64_t *counter = epoch_counter();
  if (counter) __atomic_fetch_add(counter, 1, __ATOMIC_SEQ_CST);
  c->absent = false;
  if (attach(c)) return 0;
  errno = EIO;
  return -1;
}

static void detach(struct cow *c) {
  if (c->map) munmap(c->map, MAP_BYTES);
  if (c->mapfd >= 0) NEXT(close)(c->mapfd);
  if (c->delta >= 0) NEXT(close)(c->delta);
  free(c->rel);
  c->map = NULL;
  c->mapfd = c->delta = -1;
  __atomic_store_n(&c->rel, NULL, __ATOMIC_RELEASE);
}

static void forget(int fd) {
  if (fd < 0 || fd >= MAX_FDS || !table[fd].rel) return;
  pthread_mutex_lock(&lock);
  if (table[fd].rel) detach(&table[fd]);
  pthread_mutex_unlock(&lock);
}

static void track(int fd, const char *rel) {
  if (fd < 0 || fd >= MAX_FDS) return;
  char *copy = strdup(rel);
  pthread_mutex_lock(&lock);
  if (table[fd].rel) detach(&table[fd]);
  table[fd].delta = table[fd].mapfd = -1;
  table[fd].map = NULL;
  table[fd].absent = false;
  __atomic_store_n(&table[fd].rel, copy, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&lock);
}

/* ---- reading and writing blocks ---- */

/* Reads all of [offset, offset + count) from `fd` (zeros past its end); false on an error. */
static bool read_full(int fd, char *buf, size_t count, uint64_t offset) {
  while (count) {
    ssize_t n = NEXT(pread)(fd, buf, count, (off_t)offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) {
      memset(buf, 0, count);
      return true;
    }
    buf += n, count -= (size_t)n, offset += (uint64_t)n;
  }
  return true;
}

static bool write_full(int fd, const char *buf, size_t count, uint64_t offset) {
  while (count) {
    ssize_t n = NEXT(pwrite)(fd, buf, count, (off_t)offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf += n, count -= (size_t)n, offset += (uint64_t)n;
  }
  return true;
}

/* The merged bytes of [offset, offset + count), all within one block and below the logical size. */
static bool read_piece(int fd, struct cow *c, char *buf, size_t count, uint64_t offset) {
  if (bit(c->map, offset / BLOCK)) return read_full(c->delta, buf, count, offset);
  uint64_t limit = load(&c->map->lower_limit);
  size_t lower = offset >= limit ? 0 : (size_t)(limit - offset < count ? limit - offset : count);
  if (lower && !read_full(fd, buf, lower, offset)) return false;
  memset(buf + lower, 0, count - lower);
  return true;
}

static ssize_t cow_pread(int fd, struct cow *c, void *buf, size_t count, uint64_t offset) {
  if (!attach(c)) return NEXT(pread)(fd, buf, count, (off_t)offset);
  uint64_t size = load(&c->map->size);
  if (offset >= size) return 0;
  if (count > size - offset) count = (size_t)(size - offset);
  for (size_t done = 0; done < count;) {
    uint64_t at = offset + done;
    size_t piece = (size_t)(BLOCK - at % BLOCK);
    if (piece > count - done) piece = count - done;
    if (!read_piece(fd, c, (char *)buf + done, piece, at)) return done ? (ssize_t)done : -1;
    done += piece;
  }
  return (ssize_t)count;
}

static ssize_t cow_pwrite(int fd, struct cow *c, const void *buf, size_t count, uint64_t offset) {
  if (offset + count > MAX_BLOCKS * BLOCK) {
    errno = EFBIG;
    return -1;
  }
  if (ensure(fd, c) != 0) return -1;
  for (size_t done = 0; done < count;) {
    uint64_t at = offset + done, block = at / BLOCK;
    size_t piece = (size_t)(BLOCK - at % BLOCK);
    if (piece > count - done) piece = count - done;
    const char *data = (const char *)buf + done;
    if (piece == BLOCK || bit(c->map, block)) {
      if (!write_full(c->delta, data, piece, at)) return done ? (ssize_t)done : -1;
    } else {
      /* Part of a block the delta lacks: copy it in whole first, under the map's lock (another writer may do the same). */
      char whole[BLOCK];
      flock(c->mapfd, LOCK_EX);
      bool ok = true;
      if (!bit(c->map, block)) {
        uint64_t start = block * BLOCK, size = load(&c->map->size);
        size_t valid = start >= size ? 0 : (size_t)(size - start < BLOCK ? size - start : BLOCK);
        memset(whole, 0, sizeof whole);
        ok = (!valid || read_piece(fd, c, whole, valid, start));
        memcpy(whole + at % BLOCK, data, piece);
        ok = ok && write_full(c->delta, whole, BLOCK, start);
      } else {
        ok = write_full(c->delta, data, piece, at);
      }
      if (ok) set_bit(c->map, block);
      flock(c->mapfd, LOCK_UN);
      if (!ok) return done ? (ssize_t)done : -1;
    }
    set_bit(c->map, block);
    done += piece;
    /* Grows the logical size past what was written (not past a partial block's copy-in). */
    grow_to(c->map, offset + done);
  }
  return (ssize_t)count;
}

/* Sets the logical size; a shrink forgets the blocks past it and makes the lower file count only below it. */
static int cow_truncate(int fd, struct cow *c, uint64_t length) {
  if (length > MAX_BLOCKS * BLOCK) {
    errno = EFBIG;
    return -1;
  }
  if (ensure(fd, c) != 0) return -1;
  flock(c->mapfd, LOCK_EX);
  int result = 0;
  uint64_t size = load(&c->map->size);
  if (length < size) {
    uint64_t boundary = length / BLOCK;
    if (length % BLOCK && !bit(c->map, boundary)) {
      /* The block the cut falls in keeps its head: copy it in so the delta's truncate zeroes its tail. */
      char whole[BLOCK];
      uint64_t start = boundary * BLOCK;
      size_t valid = (size_t)(size - start < BLOCK ? size - start : BLOCK);
      memset(whole, 0, sizeof whole);
      if (!read_piece(fd, c, whole, valid, start) || !write_full(c->delta, whole, BLOCK, start)) result = -1;
      else set_bit(c->map, boundary);
    }
    if (result == 0) {
      uint64_t first = (length + BLOCK - 1) / BLOCK, last = (size + BLOCK - 1) / BLOCK;
      for (uint64_t block = first; block < last && block < MAX_BLOCKS; block++) clear_bit(c->map, block);
      if (load(&c->map->lower_limit) > length) __atomic_store_n(&c->map->lower_limit, length, __ATOMIC_RELEASE);
      __atomic_store_n(&c->map->size, length, __ATOMIC_RELEASE);
      if (NEXT(ftruncate)(c->delta, (off_t)length) != 0) result = -1;
    }
  } else {
    grow_to(c->map, length);
  }
  flock(c->mapfd, LOCK_UN);
  return result;
}

/* ---- the open family ---- */

typedef int (*opener)(int, const char *, int, mode_t);

static int cow_open(int dirfd, const char *path, int flags, mode_t mode, opener original) {
  char abs[PATH_MAX];
  const char *rel = (flags & (O_APPEND | O_PATH | O_DIRECTORY | O_TMPFILE)) ? NULL : relation(dirfd, path, abs);
  if (!rel) return original(dirfd, path, flags, mode);
  int access_mode = flags & O_ACCMODE;
  /* Whatever was asked, the file itself is opened read-only (O_CREAT still creates it, in the upper layer: nothing to copy). */
  int fd = NEXT(openat)(dirfd, path, (flags & ~(O_ACCMODE | O_TRUNC)) | O_RDONLY, mode);
  if (fd < 0) return fd;
  if (access_mode != O_RDONLY && faccessat(dirfd, path, W_OK, AT_EACCESS) != 0) {
    int saved = errno;
    NEXT(close)(fd);
    errno = saved;
    return -1;
  }
  if (fd >= MAX_FDS) {
    NEXT(close)(fd);
    errno = EMFILE;
    return -1;
  }
  if ((flags & O_CREAT) && (flags & O_EXCL)) {
    /* A new file: a delta or map left by an earlier one of that name is not its. */
    char side[PATH_MAX];
    if (side_path(rel, ".map", side)) NEXT(unlink)(side);
    if (side_path(rel, "", side)) NEXT(unlink)(side);
  }
  track(fd, rel);
  if ((flags & O_TRUNC) && access_mode != O_RDONLY && cow_truncate(fd, &table[fd], 0) != 0) {
    int saved = errno;
    forget(fd);
    NEXT(close)(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

static int call_open(int dirfd, const char *path, int flags, mode_t mode) { return (void)dirfd, NEXT(open)(path, flags, mode); }
static int call_open64(int dirfd, const char *path, int flags, mode_t mode) { return (void)dirfd, NEXT(open64)(path, flags, mode); }
static int call_openat(int dirfd, const char *path, int flags, mode_t mode) { return NEXT(openat)(dirfd, path, flags, mode); }
static int call_openat64(int dirfd, const char *path, int flags, mode_t mode) { return NEXT(openat64)(dirfd, path, flags, mode); }
static int call_open_2(int dirfd, const char *path, int flags, mode_t mode) { return (void)dirfd, (void)mode, NEXT(__open_2)(path, flags); }
static int call_open64_2(int dirfd, const char *path, int flags, mode_t mode) { return (void)dirfd, (void)mode, NEXT(__open64_2)(path, flags); }
static int call_openat_2(int dirfd, const char *path, int flags, mode_t mode) { return (void)mode, NEXT(__openat_2)(dirfd, path, flags); }
static int call_openat64_2(int dirfd, const char *path, int flags, mode_t mode) { return (void)mode, NEXT(__openat64_2)(dirfd, path, flags); }

/* The mode argument exists only with O_CREAT or O_TMPFILE. */
#define MODE_ARG(flags, mode)                                                                                                              \
  mode_t mode = 0;                                                                                                                         \
  if ((flags) & (O_CREAT | O_TMPFILE)) {                                                                                                   \
    va_list ap;                                                                                                                            \
    va_start(ap, flags);                                                                                                                   \
    mode = (mode_t)va_arg(ap, int);                                                                                                        \
    va_end(ap);                                                                                                                            \
  }

EXPORT int open(const char *path, int flags, ...) {
  MODE_ARG(flags, mode);
  return cow_open(AT_FDCWD, path, flags, mode, call_open);
}
EXPORT int open64(const char *path, int flags, ...) {
  MODE_ARG(flags, mode);
  return cow_open(AT_FDCWD, path, flags, mode, call_open64);
}
EXPORT int openat(int dirfd, const char *path, int flags, ...) {
  MODE_ARG(flags, mode);
  return cow_open(dirfd, path, flags, mode, call_openat);
}
EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
  MODE_ARG(flags, mode);
  return cow_open(dirfd, path, flags, mode, call_openat64);
}
EXPORT int __open_2(const char *path, int flags) { return cow_open(AT_FDCWD, path, flags, 0, call_open_2); }
EXPORT int __open64_2(const char *path, int flags) { return cow_open(AT_FDCWD, path, flags, 0, call_open64_2); }
EXPORT int __openat_2(int dirfd, const char *path, int flags) { return cow_open(dirfd, path, flags, 0, call_openat_2); }
EXPORT int __openat64_2(int dirfd, const char *path, int flags) { return cow_open(dirfd, path, flags, 0, call_openat64_2); }

/* ---- descriptors ---- */

EXPORT int close(int fd) {
  forget(fd);
  return NEXT(close)(fd);
}
EXPORT int dup(int fd) {
  int copy = NEXT(dup)(fd);
  struct cow *c = cow_of(fd);
  if (copy >= 0 && c) track(copy, c->rel);
  return copy;
}
EXPORT int dup2(int fd, int to) {
  struct cow *c = cow_of(fd);
  int copy = NEXT(dup2)(fd, to);
  if (copy >= 0 && copy != fd) {
    forget(copy);
    if (c) track(copy, c->rel);
  }
  return copy;
}
EXPORT int dup3(int fd, int to, int flags) {
  struct cow *c = cow_of(fd);
  int copy = NEXT(dup3)(fd, to, flags);
  if (copy >= 0) {
    forget(copy);
    if (c) track(copy, c->rel);
  }
  return copy;
}

/* ---- reads ---- */

static ssize_t cow_preadv(int fd, struct cow *c, const struct iovec *iov, int iovcnt, uint64_t offset) {
  ssize_t total = 0;
  for (int i = 0; i < iovcnt; i++) {
    ssize_t n = cow_pread(fd, c, iov[i].iov_base, iov[i].iov_len, offset + (uint64_t)total);
    if (n < 0) return total ? total : -1;
    total += n;
    if ((size_t)n < iov[i].iov_len) break;
  }
  return total;
}

/* The calls that use and move the descriptor's offset. */
static ssize_t at_offset_read(int fd, struct cow *c, const struct iovec *iov, int iovcnt) {
  off_t at = NEXT(lseek)(fd, 0, SEEK_CUR);
  if (at < 0) return -1;
  ssize_t n = cow_preadv(fd, c, iov, iovcnt, (uint64_t)at);
  if (n > 0) NEXT(lseek)(fd, at + n, SEEK_SET);
  return n;
}

EXPORT ssize_t read(int fd, void *buf, size_t count) {
  struct cow *c = cow_of(fd);
  if (!c) return NEXT(read)(fd, buf, count);
  struct iovec one = {buf, count};
  return at_offset_read(fd, c, &one, 1);
}
EXPORT ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen) {
  struct cow *c = cow_of(fd);
  /* The real one checks count <= buflen (and aborts); it is that check's caller too, so hand it every call it must refuse. */
  if (!c || count > buflen) return NEXT(__read_chk)(fd, buf, count, buflen);
  struct iovec one = {buf, count};
  return at_offset_read(fd, c, &one, 1);
}
EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
  struct cow *c = cow_of(fd);
  return c ? at_offset_read(fd, c, iov, iovcnt) : NEXT(readv)(fd, iov, iovcnt);
}
EXPORT ssize_t pread(int fd, void *buf, size_t count, off_t offset) {
  struct cow *c = cow_of(fd);
  return c && offset >= 0 ? cow_pread(fd, c, buf, count, (uint64_t)offset) : NEXT(pread)(fd, buf, count, offset);
}
EXPORT ssize_t pread64(int fd, void *buf, size_t count, off64_t offset) {
  struct cow *c = cow_of(fd);
  return c && offset >= 0 ? cow_pread(fd, c, buf, count, (uint64_t)offset) : NEXT(pread64)(fd, buf, count, offset);
}
EXPORT ssize_t preadv(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
  struct cow *c = cow_of(fd);
  return c && offset >= 0 ? cow_preadv(fd, c, iov, iovcnt, (uint64_t)offset) : NEXT(preadv)(fd, iov, iovcnt, offset);
}
EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int iovcnt, off64_t offset) {
  struct cow *c = cow_of(fd);
  return c && offset >= 0 ? cow_preadv(fd, c, iov, iovcnt, (uint64_t)offset) : NEXT(preadv64)(fd, iov, iovcnt, offset);
}
EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags) {
  struct cow *c = cow_of(fd);
  if (!c) return NEXT(preadv2)(fd, iov, iovcnt, offset, flags);
  return offset == -1 ? at_offset_read(fd, c, iov, iovcnt) : cow_preadv(fd, c, iov, iovcnt, (uint64_t)offset);
}

/* ---- writes ---- */

static ssize_t cow_pwritev(int fd, struct cow *c, const struct iovec *iov, int iovcnt, uint64_t offset) {
  ssize_t total = 0;
  for (int i = 0; i < iovcnt; i++) {
    ssize_t n = cow_pwrite(fd, c, iov[i].iov_base, iov[i].iov_len, offset + (uint64_t)total);
    if (n < 0) return total ? total : -1;
    total += n;
  }
  return total;
}

static ssize_t at_offset_write(int fd, struct cow *c, const struct iovec *iov, int iovcnt) {
  off_t at = NEXT(lseek)(fd, 0, SEEK_CUR);
  if (at < 0) return -1;
  ssize_t n = cow_pwritev(fd, c, iov, iovcnt, (uint64_t)at);
  if (n > 0) NEXT(lseek)(fd, at + n, SEEK_SET);
  return n;
}

EXPORT ssize_t write(int fd, const void *buf, size_t count) {
  struct cow *c = cow_of(fd);
  if (!c) return NEXT(write)(fd, buf, count);
  struct iovec one = {(void *)buf, count};
  return at_offset_write(fd, c, &one, 1);
}
EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  struct cow *c = cow_of(fd);
  return c ? at_offset_write(fd, c, iov, iovcnt) : NEXT(writev)(fd, iov, iovcnt);
}
EXPORT ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  struct cow *c = cow_of(fd);
  return c && offset >= 0 ? cow_pwrite(fd, c, buf, count, (uint64_t)offset) : NEXT(pwrite)(fd, buf, count, offset);
}
EXPORT ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
  struct cow *c = cow_of(fd);
  return c && offset >= 0 ? cow_pwrite(fd, c, buf, count, (uint64_t)offset) : NEXT(pwrite64)(fd, buf, count, offset);
}
EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
  struct cow *c = cow_of(fd);
  return c && offset >= 0 ? cow_pwritev(fd, c, iov, iovcnt, (uint64_t)offset) : NEXT(pwritev)(fd, iov, iovcnt, offset);
}
EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t offset) {
  struct cow *c = cow_of(fd);
  return c && offset >= 0 ? cow_pwritev(fd, c, iov, iovcnt, (uint64_t)offset) : NEXT(pwritev64)(fd, iov, iovcnt, offset);
}
EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags) {
  struct cow *c = cow_of(fd);
  if (!c) return NEXT(pwritev2)(fd, iov, iovcnt, offset, flags);
  return offset == -1 ? at_offset_write(fd, c, iov, iovcnt) : cow_pwritev(fd, c, iov, iovcnt, (uint64_t)offset);
}

/* ---- sizes ---- */

static off_t cow_lseek(int fd, off_t offset, int whence, off_t (*real)(int, off_t, int)) {
  struct cow *c = cow_of(fd);
  if (!c || whence != SEEK_END || !attach(c)) return real(fd, offset, whence);
  return real(fd, (off_t)load(&c->map->size) + offset, SEEK_SET);
}
EXPORT off_t lseek(int fd, off_t offset, int whence) { return cow_lseek(fd, offset, whence, NEXT(lseek)); }
EXPORT off64_t lseek64(int fd, off64_t offset, int whence) { return cow_lseek(fd, offset, whence, NEXT(lseek64)); }

/* The logical size a relation file's map records, if it has one. */
static bool map_size(const char *rel, uint64_t *size) {
  char map_path[PATH_MAX];
  if (!side_path(rel, ".map", map_path)) return false;
  int fd = NEXT(openat)(AT_FDCWD, map_path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return false;
  struct header h;
  bool ok = NEXT(pread)(fd, &h, sizeof h, 0) == (ssize_t)sizeof h && h.magic == MAGIC;
  NEXT(close)(fd);
  if (ok) *size = h.size;
  return ok;
}

static void fix_fd_size(int fd, struct stat *st) {
  struct cow *c = cow_of(fd);
  if (c && attach(c)) st->st_size = (off_t)load(&c->map->size);
}
static void fix_path_size(int dirfd, const char *path, struct stat *st) {
  char abs[PATH_MAX];
  uint64_t size;
  const char *rel = S_ISREG(st->st_mode) ? relation(dirfd, path, abs) : NULL;
  if (rel && map_size(rel, &size)) st->st_size = (off_t)size;
}

EXPORT int fstat(int fd, struct stat *st) {
  int r = NEXT(fstat)(fd, st);
  if (r == 0) fix_fd_size(fd, st);
  return r;
}
EXPORT int fstat64(int fd, struct stat64 *st) {
  int r = NEXT(fstat64)(fd, st);
  if (r == 0) fix_fd_size(fd, (struct stat *)st);
  return r;
}
EXPORT int stat(const char *path, struct stat *st) {
  int r = NEXT(stat)(path, st);
  if (r == 0) fix_path_size(AT_FDCWD, path, st);
  return r;
}
EXPORT int stat64(const char *path, struct stat64 *st) {
  int r = NEXT(stat64)(path, st);
  if (r == 0) fix_path_size(AT_FDCWD, path, (struct stat *)st);
  return r;
}
EXPORT int lstat(const char *path, struct stat *st) {
  int r = NEXT(lstat)(path, st);
  if (r == 0) fix_path_size(AT_FDCWD, path, st);
  return r;
}
EXPORT int lstat64(const char *path, struct stat64 *st) {
  int r = NEXT(lstat64)(path, st);
  if (r == 0) fix_path_size(AT_FDCWD, path, (struct stat *)st);
  return r;
}
static void fix_at(int dirfd, const char *path, int flags, struct stat *st) {
  if ((flags & AT_EMPTY_PATH) && path && !path[0]) fix_fd_size(dirfd, st);
  else fix_path_size(dirfd, path, st);
}
EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags) {
  int r = NEXT(fstatat)(dirfd, path, st, flags);
  if (r == 0) fix_at(dirfd, path, flags, st);
  return r;
}
EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags) {
  int r = NEXT(fstatat64)(dirfd, path, st, flags);
  if (r == 0) fix_at(dirfd, path, flags, (struct stat *)st);
  return r;
}
EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st) {
  int r = NEXT(statx)(dirfd, path, flags, mask, st);
  if (r != 0 || !(st->stx_mask & STATX_SIZE)) return r;
  struct stat plain = {.st_mode = st->stx_mode, .st_size = (off_t)st->stx_size};
  fix_at(dirfd, path, flags, &plain);
  st->stx_size = (uint64_t)plain.st_size;
  return r;
}

/* The pre-2.33 entry points (see their declarations): the same size fix-ups as above. */
EXPORT int __xstat(int ver, const char *path, struct stat *st) {
  int r = NEXT(__xstat)(ver, path, st);
  if (r == 0) fix_path_size(AT_FDCWD, path, st);
  return r;
}
EXPORT int __xstat64(int ver, const char *path, struct stat64 *st) {
  int r = NEXT(__xstat64)(ver, path, st);
  if (r == 0) fix_path_size(AT_FDCWD, path, (struct stat *)st);
  return r;
}
EXPORT int __lxstat(int ver, const char *path, struct stat *st) {
  int r = NEXT(__lxstat)(ver, path, st);
  if (r == 0) fix_path_size(AT_FDCWD, path, st);
  return r;
}
EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st) {
  int r = NEXT(__lxstat64)(ver, path, st);
  if (r == 0) fix_path_size(AT_FDCWD, path, (struct stat *)st);
  return r;
}
EXPORT int __fxstat(int ver, int fd, struct stat *st) {
  int r = NEXT(__fxstat)(ver, fd, st);
  if (r == 0) fix_fd_size(fd, st);
  return r;
}
EXPORT int __fxstat64(int ver, int fd, struct stat64 *st) {
  int r = NEXT(__fxstat64)(ver, fd, st);
  if (r == 0) fix_fd_size(fd, (struct stat *)st);
  return r;
}
EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags) {
  int r = NEXT(__fxstatat)(ver, dirfd, path, st, flags);
  if (r == 0) fix_at(dirfd, path, flags, st);
  return r;
}
EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags) {
  int r = NEXT(__fxstatat64)(ver, dirfd, path, st, flags);
  if (r == 0) fix_at(dirfd, path, flags, (struct stat *)st);
  return r;
}

EXPORT int ftruncate(int fd, off_t length) {
  struct cow *c = cow_of(fd);
  return c && length >= 0 ? cow_truncate(fd, c, (uint64_t)length) : NEXT(ftruncate)(fd, length);
}
EXPORT int ftruncate64(int fd, off64_t length) {
  struct cow *c = cow_of(fd);
  return c && length >= 0 ? cow_truncate(fd, c, (uint64_t)length) : NEXT(ftruncate64)(fd, length);
}
static int path_truncate(const char *path, off_t length, int (*real)(const char *, off_t)) {
  char abs[PATH_MAX];
  if (!relation(AT_FDCWD, path, abs)) return real(path, length);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = ftruncate(fd, length);
  int saved = errno;
  close(fd);
  errno = saved;
  return r;
}
EXPORT int truncate(const char *path, off_t length) { return path_truncate(path, length, NEXT(truncate)); }
EXPORT int truncate64(const char *path, off64_t length) { return path_truncate(path, length, NEXT(truncate64)); }

/* Allocation only grows the logical size (the new range reads as zeros); other modes are not supported on relation files. */
static int cow_allocate(int fd, struct cow *c, int mode, off_t offset, off_t len) {
  if (offset < 0 || len <= 0) {
    errno = EINVAL;
    return -1;
  }
  if (mode == FALLOC_FL_KEEP_SIZE) return 0;
  if (mode != 0) {
    errno = EOPNOTSUPP;
    return -1;
  }
  if (ensure(fd, c) != 0) return -1;
  uint64_t end = (uint64_t)offset + (uint64_t)len;
  if (end > MAX_BLOCKS * BLOCK) {
    errno = EFBIG;
    return -1;
  }
  grow_to(c->map, end);
  return 0;
}
EXPORT int fallocate(int fd, int mode, off_t offset, off_t len) {
  struct cow *c = cow_of(fd);
  return c ? cow_allocate(fd, c, mode, offset, len) : NEXT(fallocate)(fd, mode, offset, len);
}
EXPORT int fallocate64(int fd, int mode, off64_t offset, off64_t len) {
  struct cow *c = cow_of(fd);
  return c ? cow_allocate(fd, c, mode, offset, len) : NEXT(fallocate64)(fd, mode, offset, len);
}
EXPORT int posix_fallocate(int fd, off_t offset, off_t len) {
  struct cow *c = cow_of(fd);
  if (!c) return NEXT(posix_fallocate)(fd, offset, len);
  return cow_allocate(fd, c, 0, offset, len) == 0 ? 0 : errno;
}
EXPORT int posix_fallocate64(int fd, off64_t offset, off64_t len) {
  struct cow *c = cow_of(fd);
  if (!c) return NEXT(posix_fallocate64)(fd, offset, len);
  return cow_allocate(fd, c, 0, offset, len) == 0 ? 0 : errno;
}

/* ---- durability and removal ---- */

static int sync_sides(int fd, int (*real)(int)) {
  struct cow *c = cow_of(fd);
  if (c && attach(c) && (msync(c->map, MAP_BYTES, MS_SYNC) != 0 || real(c->delta) != 0 || real(c->mapfd) != 0)) return -1;
  return real(fd);
}
EXPORT int fsync(int fd) { return sync_sides(fd, NEXT(fsync)); }
EXPORT int fdatasync(int fd) { return sync_sides(fd, NEXT(fdatasync)); }

/* Removes a relation file's map (first: without it the delta no longer counts) and delta. */
static void remove_sides(const char *rel) {
  char side[PATH_MAX];
  if (side_path(rel, ".map", side)) NEXT(unlink)(side);
  if (side_path(rel, "", side)) NEXT(unlink)(side);
}
EXPORT int unlink(const char *path) {
  char abs[PATH_MAX];
  const char *rel = relation(AT_FDCWD, path, abs);
  int r = NEXT(unlink)(path);
  if (r == 0 && rel) remove_sides(rel);
  return r;
}
EXPORT int unlinkat(int dirfd, const char *path, int flags) {
  char abs[PATH_MAX];
  const char *rel = (flags & AT_REMOVEDIR) ? NULL : relation(dirfd, path, abs);
  int r = NEXT(unlinkat)(dirfd, path, flags);
  if (r == 0 && rel) remove_sides(rel);
  return r;
}

/* ---- what a block map cannot serve ---- */

EXPORT void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
  if (!(flags & MAP_ANONYMOUS) && cow_of(fd)) {
    errno = ENODEV;
    return MAP_FAILED;
  }
  return NEXT(mmap)(addr, length, prot, flags, fd, offset);
}
EXPORT void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off64_t offset) {
  if (!(flags & MAP_ANONYMOUS) && cow_of(fd)) {
    errno = ENODEV;
    return MAP_FAILED;
  }
  return NEXT(mmap64)(addr, length, prot, flags, fd, offset);
}
#define NO_COPY(in, out, fail)                                                                                                             \
  do {                                                                                                                                     \
    if (cow_of(in) || cow_of(out)) {                                                                                                       \
      errno = EXDEV;                                                                                                                       \
      return fail;                                                                                                                         \
    }                                                                                                                                      \
  } while (0)
EXPORT ssize_t copy_file_range(int in, off64_t *in_offset, int out, off64_t *out_offset, size_t len, unsigned flags) {
  NO_COPY(in, out, -1);
  return NEXT(copy_file_range)(in, in_offset, out, out_offset, len, flags);
}
EXPORT ssize_t sendfile(int out, int in, off_t *offset, size_t count) {
  NO_COPY(in, out, -1);
  return NEXT(sendfile)(out, in, offset, count);
}
EXPORT ssize_t sendfile64(int out, int in, off64_t *offset, size_t count) {
  NO_COPY(in, out, -1);
  return NEXT(sendfile64)(out, in, offset, count);
}
EXPORT ssize_t splice(int in, off64_t *in_offset, int out, off64_t *out_offset, size_t len, unsigned flags) {
  NO_COPY(in, out, -1);
  return NEXT(splice)(in, in_offset, out, out_offset, len, flags);
}
