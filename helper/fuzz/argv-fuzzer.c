/*
 * libFuzzer harness for the helper's argument parser: parse_args() and
 * validate_ops(), nothing after them (no clone, no mounts).
 *
 * Input: bytes split on NUL into argv[1..]; argv[0] is the program name.
 * Build and run with `npm run fuzz:helper` (helper/fuzz/run.mjs).
 *
 * The helper is compiled into this file unchanged, so the code fuzzed is the
 * code shipped. Its error path, die(), ends with _exit(): redirected here to
 * a longjmp back into the harness, which makes "refused with a message" an
 * ordinary outcome and leaves crashes and sanitizer reports as findings.
 * Arguments that validate_ops() accepts are then checked against what the
 * later phases assume of them (check_accepted), which is where a parser bug
 * would turn into a wrong mount rather than a crash.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static jmp_buf fuzz_escape;
static int fuzz_checking; /* set while check_accepted() runs */

static void fuzz_exit(int code) __attribute__((noreturn));

/* The helper's messages would drown libFuzzer's; format them (a bad format
 * is a finding too) and drop them. */
static int fuzz_dprintf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fuzz_dprintf(int fd, const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  (void)fd;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return n;
}

/* The system headers are in already, so these rename only the helper's calls. */
#define _exit fuzz_exit
#define exit fuzz_exit
#define dprintf fuzz_dprintf
#define main sandbox_helper_main
#include "../sandbox-helper.c"
#undef _exit
#undef exit
#undef dprintf
#undef main

static void fuzz_exit(int code) {
  /* Any refusal from a later phase's own parsing, once validate_ops() said
   * yes, means the helper would set the sandbox up halfway and then fail. */
  if (fuzz_checking) {
    fprintf(stderr, "argv-fuzzer: validate_ops() accepted arguments that a later phase refuses\n");
    abort();
  }
  longjmp(fuzz_escape, code + 1);
}

/* Every file-scope static of the helper, listed by run.mjs from its source
 * (globals.h), so a new option's global cannot leak state between inputs
 * without anyone noticing. */
#include "globals.h"
#define SAVED(name) static unsigned char saved_##name[sizeof(name)];
HELPER_GLOBALS(SAVED)

static void save_globals(void) {
#define SAVE(name) memcpy(saved_##name, &name, sizeof(name));
  HELPER_GLOBALS(SAVE)
}

static void restore_globals(void) {
#define RESTORE(name) memcpy(&name, saved_##name, sizeof(name));
  HELPER_GLOBALS(RESTORE)
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  save_globals();
  return 0;
}

static void fuzz_fail(const char *what, const char *value) {
  fprintf(stderr, "argv-fuzzer: accepted, but %s: '%.200s'\n", what, value);
  abort();
}

/* The mount phase prefixes host paths with OLDROOT into PATH_MAX buffers
 * with snprintf, which would silently name a shorter, different path. */
static void check_host_path(const char *p) {
  if (strlen(OLDROOT) + strlen(p) >= PATH_MAX) fuzz_fail("host path truncated under " OLDROOT, p);
}

/* mount_tmpfs() formats "mode=NNNN,size=SIZE" into a 128-byte buffer; a cut
 * size string is a different size (a cut to zeros means unlimited). */
static void check_size(const char *size) {
  char data[128];
  if (size && (size_t)snprintf(data, sizeof data, "mode=1777,size=%s", size) >= sizeof data)
    fuzz_fail("tmpfs size cut in the mount options", size);
}

static void check_accepted(void) {
  fuzz_checking = 1;
  for (int i = 0; i < n_ops; i++) {
    struct op *op = &ops[i];
    switch (op->kind) {
    case OP_BIND: case OP_RO_BIND: check_host_path(op->source); break;
    case OP_OVERLAY_RW: check_host_path(op->upper); check_host_path(op->work); break;
    case OP_RLIMIT: rlimit_resource(op->name); rlimit_value(op->soft); rlimit_value(op->hard); break;
    case OP_SETENV: case OP_UNSETENV:
      if (!*op->name || strchr(op->name, '=')) fuzz_fail("setenv(3)/unsetenv(3) refuse this name", op->name);
      break;
    default: break;
    }
  }
  if (image_root.lowers && image_root.kind == OP_OVERLAY_RW) check_host_path(image_root.upper), check_host_path(image_root.work);
  check_size(opt_tmpfs_size);
  check_size(opt_upper_size);
  fuzz_checking = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* argv entries must be NUL-terminated and outlive the parse (ops point into them). */
  char *buf = malloc(size + 1);
  size_t argc = 2;
  memcpy(buf, data, size);
  buf[size] = 0;
  for (size_t i = 0; i < size; i++) argc += buf[i] == 0;
  char **argv = calloc(argc + 1, sizeof *argv);
  argv[0] = "sandbox-helper";
  for (size_t i = 1, at = 0; i < argc; i++) {
    argv[i] = buf + at;
    at += strlen(buf + at) + 1;
  }

  /* validate_ops() may open fds (--cgroup) that the real helper keeps until
   * exec; they get the lowest free numbers, so close those from here up. */
  int first_free = dup(2);
  close(first_free);
  restore_globals();
  if (setjmp(fuzz_escape) == 0) {
    parse_args((int)argc, argv);
    validate_ops();
    check_accepted();
  }
  for (int fd = first_free; fcntl(fd, F_GETFD) >= 0; fd++) close(fd);
  free(argv);
  free(buf);
  return 0;
}
