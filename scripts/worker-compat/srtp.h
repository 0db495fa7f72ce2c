// Hoichan: mediasoup 3.19's worker is written against libsrtp 3 (versatica's
// 3.0.0-beta fork); Debian bookworm ships libsrtp 2.5.0 (libsrtp2-dev). The
// worker includes <srtp.h>; scripts/build-worker.sh puts this directory first
// on its include path, so it gets Debian's header plus the few libsrtp 3 names
// below, each mapped onto the libsrtp 2.5 call that does the same work.
//
// This file is on the security path: every SRTP/SRTCP packet the hub sends or
// receives (WebRTC DTLS-SRTP and the SRTP ingest) goes through these shims.
// test/e2e/conference.test.js (Chromium, RTP and RTCP both directions) and
// test/media/ingest.test.js (ffmpeg SRTP ingest) exercise them; see
// docs/SECURITY.md "Media encryption (SRTP)".
#ifndef HOICHAN_WORKER_COMPAT_SRTP_H
#define HOICHAN_WORKER_COMPAT_SRTP_H

#include <srtp2/srtp.h>

#ifdef __cplusplus
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>

// libsrtp 3 added two status codes after srtp_err_status_pkt_idx_adv (27 in
// both versions). mediasoup's DepLibSRTP.cpp lists them in its error-string
// map; our shims return buffer_small themselves, libsrtp 2.5 never returns
// either. The values are libsrtp 3's, so logs read the same as upstream's.
static_assert(srtp_err_status_pkt_idx_adv == 27, "libsrtp 2 status codes moved; recheck the libsrtp 3 values below");
#define srtp_err_status_buffer_small static_cast<srtp_err_status_t>(28)
#define srtp_err_status_cryptex_err static_cast<srtp_err_status_t>(29)

// libsrtp 3: srtp_protect(ctx, rtp, rtp_len, srtp, &srtp_len, mki_index)
// encrypts from one buffer into another whose capacity is *srtp_len, with
// size_t lengths. libsrtp 2.5: srtp_protect(ctx, buf, &int_len) encrypts in
// place and assumes SRTP_MAX_TRAILER_LEN bytes free after the packet. So:
// check the capacity (the guarantee 2.5 leaves to its caller), copy the clear
// packet into the output buffer, and encrypt there. mediasoup never uses MKI
// (it always passes 0); any other index is refused rather than ignored.
inline srtp_err_status_t srtp_protect(
  srtp_t ctx, const uint8_t* rtp, size_t rtp_len, uint8_t* srtp, size_t* srtp_len, size_t mki_index)
{
	if (mki_index != 0)
		return srtp_err_status_bad_mki;
	if (rtp_len > static_cast<size_t>(INT_MAX - SRTP_MAX_TRAILER_LEN) || *srtp_len < rtp_len + SRTP_MAX_TRAILER_LEN)
		return srtp_err_status_buffer_small;
	if (srtp != rtp)
		std::memmove(srtp, rtp, rtp_len);
	int len = static_cast<int>(rtp_len);
	const srtp_err_status_t err = srtp_protect(ctx, static_cast<void*>(srtp), &len);
	if (err == srtp_err_status_ok)
		*srtp_len = static_cast<size_t>(len);
	return err;
}

// libsrtp 3: srtp_unprotect(ctx, srtp, srtp_len, rtp, &rtp_len) decrypts into
// a buffer of capacity *rtp_len. libsrtp 2.5 decrypts in place; the clear
// packet is never longer than the protected one, so a capacity of srtp_len
// is enough.
inline srtp_err_status_t srtp_unprotect(
  srtp_t ctx, const uint8_t* srtp, size_t srtp_len, uint8_t* rtp, size_t* rtp_len)
{
	if (srtp_len > static_cast<size_t>(INT_MAX) || *rtp_len < srtp_len)
		return srtp_err_status_buffer_small;
	if (rtp != srtp)
		std::memmove(rtp, srtp, srtp_len);
	int len = static_cast<int>(srtp_len);
	const srtp_err_status_t err = srtp_unprotect(ctx, static_cast<void*>(rtp), &len);
	if (err == srtp_err_status_ok)
		*rtp_len = static_cast<size_t>(len);
	return err;
}

// libsrtp 3: srtp_protect_rtcp(ctx, rtcp, rtcp_len, srtcp, &srtcp_len,
// mki_index), as srtp_protect. libsrtp 2.5's in-place srtp_protect_rtcp
// assumes SRTP_MAX_TRAILER_LEN + 4 bytes free (the SRTCP index word).
inline srtp_err_status_t srtp_protect_rtcp(
  srtp_t ctx, const uint8_t* rtcp, size_t rtcp_len, uint8_t* srtcp, size_t* srtcp_len, size_t mki_index)
{
	if (mki_index != 0)
		return srtp_err_status_bad_mki;
	if (
	  rtcp_len > static_cast<size_t>(INT_MAX - SRTP_MAX_TRAILER_LEN - 4) ||
	  *srtcp_len < rtcp_len + SRTP_MAX_TRAILER_LEN + 4)
		return srtp_err_status_buffer_small;
	if (srtcp != rtcp)
		std::memmove(srtcp, rtcp, rtcp_len);
	int len = static_cast<int>(rtcp_len);
	const srtp_err_status_t err = srtp_protect_rtcp(ctx, static_cast<void*>(srtcp), &len);
	if (err == srtp_err_status_ok)
		*srtcp_len = static_cast<size_t>(len);
	return err;
}

// libsrtp 3: srtp_unprotect_rtcp(ctx, srtcp, srtcp_len, rtcp, &rtcp_len), as
// srtp_unprotect; libsrtp 2.5 decrypts in place.
inline srtp_err_status_t srtp_unprotect_rtcp(
  srtp_t ctx, const uint8_t* srtcp, size_t srtcp_len, uint8_t* rtcp, size_t* rtcp_len)
{
	if (srtcp_len > static_cast<size_t>(INT_MAX) || *rtcp_len < srtcp_len)
		return srtp_err_status_buffer_small;
	if (rtcp != srtcp)
		std::memmove(rtcp, srtcp, srtcp_len);
	int len = static_cast<int>(srtcp_len);
	const srtp_err_status_t err = srtp_unprotect_rtcp(ctx, static_cast<void*>(rtcp), &len);
	if (err == srtp_err_status_ok)
		*rtcp_len = static_cast<size_t>(len);
	return err;
}
// libsrtp 3 renamed srtp_remove_stream() to srtp_stream_remove(); same
// arguments (the SSRC in network byte order, as mediasoup passes it) and same
// effect: the session forgets that stream's keys and replay window.
inline srtp_err_status_t srtp_stream_remove(srtp_t session, uint32_t ssrc)
{
	return srtp_remove_stream(session, ssrc);
}
#endif // __cplusplus

#endif // HOICHAN_WORKER_COMPAT_SRTP_H
