// RTP packet counter for the SFU fan-out bench: N UDP sockets on 127.0.0.1,
// drained with recvmmsg from one epoll loop. It does what sfu/receivers.ts
// does, at a small fraction of its CPU: the Node counter (one 'message' event
// per packet) filled a core before Janus did, so Janus's ceiling was unknown.
// Loss comes from RTP sequence numbers: lost = highest - first + 1 - received.
//
// Commands on stdin, one per line; one reply line on stdout each:
//   open N   -> "ports P1 P2 ..."     (N new sockets)
//   reset    -> "ok"                  (start a new window)
//   report   -> "R RECEIVED EXPECTED SILENT"
//   close / EOF -> exit
// Built by the bench itself (cc -O2), cached by content hash.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define PACKET_MAX 2048

typedef struct {
  int fd;
  int has_ssrc;
  uint32_t ssrc;
  int started;      // a packet seen in this window
  int64_t first;    // extended sequence numbers in this window
  int64_t highest;
  int64_t cycles;
  uint16_t last_seq;
  uint64_t received;
} receiver_t;

static receiver_t *receivers = NULL;
static size_t count = 0, capacity = 0;
static int epfd;

static void on_packet(receiver_t *r, const uint8_t *p, ssize_t len) {
  if (len < 12 || (p[0] >> 6) != 2) return;
  int payload_type = p[1] & 0x7f;
  if (payload_type >= 64 && payload_type <= 95) return;  // RTCP, muxed on the same port
  if (payload_type == 127) return;                       // mediasoup probation padding
  uint32_t ssrc = ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) | ((uint32_t)p[10] << 8) | p[11];
  if (!r->has_ssrc) {
    r->has_ssrc = 1;
    r->ssrc = ssrc;
  }
  if (ssrc != r->ssrc) return;
  uint16_t seq = (uint16_t)((p[2] << 8) | p[3]);
  if (!r->started) {
    r->started = 1;
    r->cycles = 0;
    r->last_seq = seq;
    r->first = seq;
    r->highest = seq;
    r->received = 1;
    return;
  }
  if (seq < r->last_seq && r->last_seq - seq > 0x8000) r->cycles += 0x10000;
  else if (seq > r->last_seq && seq - r->last_seq > 0x8000) return;  // late packet from before a wrap
  r->last_seq = seq;
  int64_t extended = r->cycles + seq;
  if (extended > r->highest) r->highest = extended;
  r->received++;
}

static void drain(receiver_t *r) {
  static uint8_t buffers[BATCH][PACKET_MAX];
  struct mmsghdr msgs[BATCH];
  struct iovec iovs[BATCH];
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      iovs[i].iov_base = buffers[i];
      iovs[i].iov_len = PACKET_MAX;
      memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(r->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return;  // EAGAIN: drained
    for (int i = 0; i < n; i++) on_packet(r, buffers[i], msgs[i].msg_len);
    if (n < BATCH) return;
  }
}

static int open_receivers(size_t n) {
  if (count + n > capacity) {
    size_t want = (count + n) * 2;
    receiver_t *grown = realloc(receivers, want * sizeof(receiver_t));
    if (!grown) return -1;
    receivers = grown;
    capacity = want;
    // epoll data holds indexes, not pointers, so moving the array is safe.
  }
  printf("ports");
  for (size_t i = 0; i < n; i++) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int rcvbuf = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) return -1;
    socklen_t alen = sizeof(addr);
    getsockname(fd, (struct sockaddr *)&addr, &alen);
    receiver_t *r = &receivers[count];
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = count + 1};  // 0 is stdin
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) return -1;
    count++;
    printf(" %u", ntohs(addr.sin_port));
  }
  printf("\n");
  fflush(stdout);
  return 0;
}

static void report(void) {
  uint64_t received = 0, expected = 0, silent = 0;
  for (size_t i = 0; i < count; i++) {
    receiver_t *r = &receivers[i];
    if (!r->started) {
      silent++;
      continue;
    }
    uint64_t span = (uint64_t)(r->highest - r->first + 1);
    received += r->received;
    expected += span > r->received ? span : r->received;
  }
  printf("%zu %llu %llu %llu\n", count, (unsigned long long)received, (unsigned long long)expected, (unsigned long long)silent);
  fflush(stdout);
}

// Returns 0 to go on, 1 to exit.
static int command(char *line) {
  line[strcspn(line, "\r\n")] = 0;
  if (strncmp(line, "open ", 5) == 0) {
    long n = strtol(line + 5, NULL, 10);
    if (n < 0 || open_receivers((size_t)n) < 0) {
      fprintf(stderr, "rtpcount: open %ld failed: %s\n", n, strerror(errno));
      return 1;
    }
  } else if (strcmp(line, "reset") == 0) {
    for (size_t i = 0; i < count; i++) receivers[i].started = 0;
    printf("ok\n");
    fflush(stdout);
  } else if (strcmp(line, "report") == 0) {
    report();
  } else if (strcmp(line, "close") == 0) {
    return 1;
  } else {
    fprintf(stderr, "rtpcount: unknown command '%s'\n", line);
    return 1;
  }
  return 0;
}

int main(void) {
  epfd = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
  epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev);
  char pending[4096];
  size_t used = 0;
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(epfd, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    for (int i = 0; i < n; i++) {
      uint64_t id = events[i].data.u64;
      if (id > 0) {
        drain(&receivers[id - 1]);
        continue;
      }
      ssize_t got = read(STDIN_FILENO, pending + used, sizeof(pending) - 1 - used);
      if (got <= 0) return 0;  // the bench went away
      used += (size_t)got;
      pending[used] = 0;
      char *newline;
      while ((newline = memchr(pending, '\n', used)) != NULL) {
        *newline = 0;
        if (command(pending)) return 0;
        size_t consumed = (size_t)(newline - pending) + 1;
        memmove(pending, newline + 1, used - consumed);
        used -= consumed;
        pending[used] = 0;
      }
    }
  }
}
