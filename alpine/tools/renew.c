/*
 * dinv-renew UNIX_MS [DOCKERD_PID ENGINE_ID_FILE]: make a guest restored from a saved VM state its own, in one exec (each exec
 * right after a restore is dear under TCG, whose translations are not part of the state).
 *  1. Mix the bytes on stdin (the host's entropy) into the kernel's random pool, credit them and
 *     reseed the CRNG at once: every copy restored from one state holds the same CRNG, and a write
 *     to /dev/urandom alone leaves its key in use until the next scheduled reseed (up to a minute).
 *  2. Set the wall clock to UNIX_MS (the host's clock when it sent the renewal).
 *  3. Write a new /etc/machine-id from the reseeded pool.
 *  4. Give the running dockerd a new engine ID (`docker info`'s ID, a UUID dockerd reads once from
 *     ENGINE_ID_FILE at its start and keeps in memory; nothing is derived from it): a new UUID is
 *     written to the file, then, with dockerd stopped (SIGSTOP), every copy of the old one in its
 *     writable memory is overwritten (process_vm_readv/writev, present pages only). Restarting dockerd instead costs ~13 s
 *     under TCG. A UUID of 122 random bits cannot occur by chance, so every match is a copy of it.
 *  5. Print a new boot id (a version 4 UUID) from the reseeded pool, and the copies replaced.
 * Needs CAP_SYS_ADMIN, CAP_SYS_TIME and CAP_SYS_PTRACE (the agent runs as root). Exit 0, or 1 with a message.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/random.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_BYTES 512
#define UUID_LEN 36
#define CHUNK (1 << 20)

static int fail(const char *what) {
  perror(what);
  return 1;
}

/* A version 4 UUID from the (reseeded) pool, as 36 characters and a NUL. */
static int new_uuid(char out[UUID_LEN + 1]) {
  unsigned char u[16];
  if (getrandom(u, sizeof u, 0) != sizeof u) return -1;
  u[6] = (u[6] & 0x0f) | 0x40;
  u[8] = (u[8] & 0x3f) | 0x80;
  char *p = out;
  for (int i = 0; i < 16; i++) p += sprintf(p, "%02x%s", u[i], (i == 3 || i == 5 || i == 7 || i == 9) ? "-" : "");
  return 0;
}

static int is_uuid(const char *s) {
  if (strlen(s) != UUID_LEN) return 0;
  for (int i = 0; i < UUID_LEN; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i])) return 0;
  }
  return 1;
}

/* Whether one thread's stat line (/proc/PID/task/TID/stat) says stopped ('T' or 't'); -1 if unreadable. */
static int thread_stopped(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char buf[512];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *close = strrchr(buf, ')');
  return close && close[1] == ' ' && (close[2] == 'T' || close[2] == 't');
}

/* Wait (up to ~2 s) until every thread of pid is stopped: a Go process runs many, and a thread
 * still running could write a copy of the old ID while it is being replaced. */
static int wait_stopped(pid_t pid) {
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
  for (int tries = 0; tries < 200; tries++) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int all = 1, seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char path[64 + 256 + 8];
      snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
      int stopped = thread_stopped(path);
      if (stopped == -1) continue; /* the thread exited meanwhile */
      seen++;
      if (!stopped) all = 0;
    }
    closedir(d);
    if (seen > 0 && all) return 0;
    usleep(10000);
  }
  return -1;
}

/* Search [at, at+len) of pid's memory, a run of present pages, for `old`; overwrite each copy. */
static long replace_in_run(pid_t pid, unsigned long at, unsigned long len, const char *old, const char *new) {
  static char buf[CHUNK + UUID_LEN];
  long found = 0;
  /* Chunks overlap by one UUID less a byte, so a copy across a chunk's end is seen once. */
  for (unsigned long off = 0; off < len; off += CHUNK) {
    size_t want = len - off < CHUNK + UUID_LEN - 1 ? len - off : CHUNK + UUID_LEN - 1;
    struct iovec local = { buf, want }, remote = { (void *)(at + off), want };
    ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (got < UUID_LEN) continue;
    for (char *p = buf; (p = memmem(p, (size_t)got - (size_t)(p - buf), old, UUID_LEN)); p += UUID_LEN) {
      struct iovec from = { (void *)new, UUID_LEN }, to = { (void *)(at + off + (unsigned long)(p - buf)), UUID_LEN };
      if (process_vm_writev(pid, &from, 1, &to, 1, 0) != UUID_LEN) return -1;
      found++;
    }
  }
  return found;
}

/*
 * Overwrite every copy of `old` with `new` in pid's writable mappings; the count, or -1. Only pages
 * present in RAM are read (/proc/PID/pagemap, bit 63): a page never touched holds zeros, and reading
 * dockerd's whole reserved heap through the kernel cost ~0.6 s under TCG.
 */
static long replace_in_memory(pid_t pid, const char *old, const char *new) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
  FILE *maps = fopen(path, "r");
  if (!maps) return -1;
  snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
  int pagemap = open(path, O_RDONLY);
  if (pagemap < 0) {
    fclose(maps);
    return -1;
  }
  const unsigned long page = (unsigned long)sysconf(_SC_PAGESIZE);
  static uint64_t entries[4096];
  long found = 0;
  char line[512];
  while (found >= 0 && fgets(line, sizeof line, maps)) {
    unsigned long start, end;
    char perms[5];
    if (sscanf(line, "%lx-%lx %4s", &start, &end, perms) != 3 || perms[0] != 'r' || perms[1] != 'w') continue;
    unsigned long run = 0, run_len = 0;
    for (unsigned long at = start; at < end && found >= 0;) {
      size_t n = (end - at) / page < 4096 ? (end - at) / page : 4096;
      ssize_t got = pread(pagemap, entries, n * sizeof entries[0], (off_t)(at / page * sizeof entries[0]));
      if (got <= 0) break;
      for (size_t i = 0; i < (size_t)got / sizeof entries[0]; i++, at += page) {
        if (entries[i] >> 63) {
          if (!run_len) run = at;
          run_len += page;
          continue;
        }
        if (run_len) {
          long r = replace_in_run(pid, run, run_len, old, new);
          found = r < 0 ? -1 : found + r;
          run_len = 0;
        }
      }
    }
    if (run_len && found >= 0) {
      long r = replace_in_run(pid, run, run_len, old, new);
      found = r < 0 ? -1 : found + r;
    }
  }
  close(pagemap);
  fclose(maps);
  return found;
}

/* Step 4: the copies replaced, or -1 with a message. */
static long renew_engine_id(pid_t pid, const char *file) {
  char old[UUID_LEN + 2] = { 0 };
  FILE *f = fopen(file, "r");
  if (!f) return fail(file), -1;
  size_t n = fread(old, 1, sizeof old - 1, f);
  fclose(f);
  old[n] = 0;
  old[strcspn(old, "\n")] = 0;
  if (!is_uuid(old)) {
    fprintf(stderr, "dinv-renew: %s holds no engine ID (a lowercase UUID)\n", file);
    return -1;
  }
  char new[UUID_LEN + 1];
  if (new_uuid(new) < 0) return fail("dinv-renew: getrandom"), -1;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.renew", file);
  f = fopen(tmp, "w");
  if (!f || fprintf(f, "%s", new) != UUID_LEN || fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0) return fail(tmp), -1;
  if (kill(pid, SIGSTOP) < 0) return fail("dinv-renew: SIGSTOP dockerd"), -1;
  long found = wait_stopped(pid) == 0 ? replace_in_memory(pid, old, new) : -2;
  int moved = found > 0 ? rename(tmp, file) : -1;
  kill(pid, SIGCONT);
  if (found == -2) fprintf(stderr, "dinv-renew: dockerd (pid %d) did not stop\n", (int)pid);
  else if (found < 0) perror("dinv-renew: dockerd's memory");
  else if (found == 0) fprintf(stderr, "dinv-renew: dockerd (pid %d) holds no copy of its engine ID %s\n", (int)pid, old);
  else if (moved < 0) perror(file);
  if (found <= 0 || moved < 0) {
    unlink(tmp);
    return -1;
  }
  return found;
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 4) {
    fprintf(stderr, "usage: dinv-renew UNIX_MS [DOCKERD_PID ENGINE_ID_FILE] < entropy\n");
    return 1;
  }
  char *end;
  long long ms = strtoll(argv[1], &end, 10);
  if (*end || ms <= 0) {
    fprintf(stderr, "dinv-renew: %s is not a time in ms\n", argv[1]);
    return 1;
  }
  struct {
    struct rand_pool_info info;
    unsigned char buf[MAX_BYTES];
  } req;
  ssize_t got = 0;
  while (got < MAX_BYTES) {
    ssize_t n = read(0, req.buf + got, MAX_BYTES - got);
    if (n < 0) return fail("dinv-renew: read");
    if (n == 0) break;
    got += n;
  }
  if (got < 32) {
    fprintf(stderr, "dinv-renew: %zd bytes of entropy on stdin, need at least 32\n", got);
    return 1;
  }
  int fd = open("/dev/urandom", O_WRONLY);
  if (fd < 0) return fail("dinv-renew: /dev/urandom");
  req.info.entropy_count = (int)got * 8;
  req.info.buf_size = (int)got;
  if (ioctl(fd, RNDADDENTROPY, &req) < 0) return fail("dinv-renew: RNDADDENTROPY");
  if (ioctl(fd, RNDRESEEDCRNG) < 0) return fail("dinv-renew: RNDRESEEDCRNG");
  close(fd);

  struct timespec now = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
  if (clock_settime(CLOCK_REALTIME, &now) < 0) return fail("dinv-renew: clock_settime");

  unsigned char id[16];
  if (getrandom(id, sizeof id, 0) != sizeof id) return fail("dinv-renew: getrandom");
  FILE *f = fopen("/etc/machine-id", "w");
  if (!f) return fail("dinv-renew: /etc/machine-id");
  for (int i = 0; i < 16; i++) fprintf(f, "%02x", id[i]);
  fputc('\n', f);
  if (fclose(f) != 0) return fail("dinv-renew: /etc/machine-id");

  long copies = 0;
  if (argc == 4) {
    long pid = strtol(argv[2], &end, 10);
    if (*end || pid <= 1) {
      fprintf(stderr, "dinv-renew: %s is not a process id\n", argv[2]);
      return 1;
    }
    copies = renew_engine_id((pid_t)pid, argv[3]);
    if (copies < 0) return 1;
  }

  char boot[UUID_LEN + 1];
  if (new_uuid(boot) < 0) return fail("dinv-renew: getrandom");
  printf("%s %ld\n", boot, copies);
  return 0;
}
