/*
 * dinv-renew UNIX_MS: make a guest restored from a saved VM state its own, in one exec (each exec
 * right after a restore is dear under TCG, whose translations are not part of the state).
 *  1. Mix the bytes on stdin (the host's entropy) into the kernel's random pool, credit them and
 *     reseed the CRNG at once: every copy restored from one state holds the same CRNG, and a write
 *     to /dev/urandom alone leaves its key in use until the next scheduled reseed (up to a minute).
 *  2. Set the wall clock to UNIX_MS (the host's clock when it sent the renewal).
 *  3. Write a new /etc/machine-id from the reseeded pool.
 *  4. Print a new boot id (a version 4 UUID) from the reseeded pool.
 * Needs CAP_SYS_ADMIN and CAP_SYS_TIME (the agent runs as root). Exit 0, or 1 with a message.
 */
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define MAX_BYTES 512

static int fail(const char *what) {
  perror(what);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: dinv-renew UNIX_MS < entropy\n");
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

  unsigned char u[16];
  if (getrandom(u, sizeof u, 0) != sizeof u) return fail("dinv-renew: getrandom");
  u[6] = (u[6] & 0x0f) | 0x40;
  u[8] = (u[8] & 0x3f) | 0x80;
  for (int i = 0; i < 16; i++) printf("%02x%s", u[i], (i == 3 || i == 5 || i == 7 || i == 9) ? "-" : "");
  printf("\n");
  return 0;
}
