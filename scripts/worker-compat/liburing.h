// Hoichan: mediasoup 3.19's worker is written against liburing 2.5 (its meson
// wrap); Debian bookworm ships liburing 2.3 (liburing-dev). The worker
// includes <liburing.h>; scripts/build-worker.sh puts this directory first on
// its include path, so it gets Debian's header plus the liburing 2.4 helpers
// below, written as liburing 2.4 defines them. The kernel interface is the
// same (IORING_OP_SEND with a destination address needs Linux 6.0, and the
// worker enables io_uring only on kernels it probes at start).
#ifndef HOICHAN_WORKER_COMPAT_LIBURING_H
#define HOICHAN_WORKER_COMPAT_LIBURING_H

#include_next <liburing.h>

#if !defined(HOICHAN_LIBURING_VERSION_MAJOR) || !defined(HOICHAN_LIBURING_VERSION_MINOR)
#error "build with -DHOICHAN_LIBURING_VERSION_MAJOR/MINOR from pkg-config (scripts/patch-worker-meson.mjs does)"
#endif

#if HOICHAN_LIBURING_VERSION_MAJOR == 2 && HOICHAN_LIBURING_VERSION_MINOR < 4
// liburing 2.4: io_uring_major_version()/io_uring_minor_version() report the
// library's version; mediasoup only logs it. 2.3 has neither the functions
// nor version macros, so meson passes the version pkg-config reports.
static inline int io_uring_major_version(void)
{
	return HOICHAN_LIBURING_VERSION_MAJOR;
}

static inline int io_uring_minor_version(void)
{
	return HOICHAN_LIBURING_VERSION_MINOR;
}

// liburing 2.4: io_uring_prep_sendto() is a send with a destination address,
// which is exactly 2.3's io_uring_prep_send() followed by
// io_uring_prep_send_set_addr() (both present in 2.3). mediasoup sends UDP
// datagrams with it when a preallocated zero-copy buffer is not available.
static inline void io_uring_prep_sendto(
  struct io_uring_sqe* sqe,
  int sockfd,
  const void* buf,
  size_t len,
  int flags,
  const struct sockaddr* addr,
  socklen_t addrlen)
{
	io_uring_prep_send(sqe, sockfd, buf, len, flags);
	io_uring_prep_send_set_addr(sqe, addr, (__u16)addrlen);
}
#endif

#endif // HOICHAN_WORKER_COMPAT_LIBURING_H
