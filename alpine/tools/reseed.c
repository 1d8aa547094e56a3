/*
 * dinv-reseed: mix the bytes on stdin into the kernel's random pool, credit them, and reseed the
 * kernel's CRNG at once. After a VM state is restored, every copy holds the same CRNG state: a
 * write to /dev/urandom alone mixes the pool but leaves the CRNG key in use until its next
 * scheduled reseed (up to a minute), so /dev/urandom would answer alike in every copy until then.
 * Needs CAP_SYS_ADMIN (the agent runs as root). Exit 0 on success, 1 with a message otherwise.
 */
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_BYTES 512

int main(void) {
  struct {
    struct rand_pool_info info;
    unsigned char buf[MAX_BYTES];
  } req;
  ssize_t got = 0;
  while (got < MAX_BYTES) {
    ssize_t n = read(0, req.buf + got, MAX_BYTES - got);
    if (n < 0) { perror("dinv-reseed: read"); return 1; }
    if (n == 0) break;
    got += n;
  }
  if (got < 32) { fprintf(stderr, "dinv-reseed: %zd bytes of entropy on stdin, need at least 32\n", got); return 1; }
  int fd = open("/dev/urandom", O_WRONLY);
  if (fd < 0) { perror("dinv-reseed: /dev/urandom"); return 1; }
  req.info.entropy_count = (int)got * 8;
  req.info.buf_size = (int)got;
  if (ioctl(fd, RNDADDENTROPY, &req) < 0) { perror("dinv-reseed: RNDADDENTROPY"); return 1; }
  if (ioctl(fd, RNDRESEEDCRNG) < 0) { perror("dinv-reseed: RNDRESEEDCRNG"); return 1; }
  close(fd);
  return 0;
}
