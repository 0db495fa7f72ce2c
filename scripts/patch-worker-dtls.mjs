#!/usr/bin/env node
// Rewrites a copy of mediasoup 3.19's worker/src/RTC/DtlsTransport.cpp so that
// DTLS records are sent after each OpenSSL call returns, as mediasoup 3.12 did,
// instead of from inside OpenSSL through a BIO write callback.
//
// Why: since 3.13.23 the worker sends each DTLS datagram from a BIO_CB_WRITE
// callback on its memory BIO. Built against Debian bookworm's OpenSSL 3.0.19,
// the worker crashed (SIGSEGV) in the first DTLS handshake with Chromium:
// libssl wrote a record header into a NULL write buffer inside SSL_read
// (valgrind: "Invalid write of size 1 ... Address 0x0", under SSL_read from
// DtlsTransport::ProcessDtlsData). With the sends moved out of the callback the
// handshake completes and media flows (test/e2e/conference.test.ts). The cost
// is 3.12's: a handshake flight goes out as one datagram per OpenSSL call.
// Each edit asserts it matched; see docs/MEDIASOUP-WORKER.md.
//
// usage: patch-worker-dtls.mjs <copied worker dir>
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const workerDir = process.argv[2];
if (!workerDir) {
  console.error('usage: patch-worker-dtls.mjs <copied worker dir>');
  process.exit(2);
}
const file = join(workerDir, 'src', 'RTC', 'DtlsTransport.cpp');
let text = readFileSync(file, 'utf8');

function edit(description, from, to, count) {
  const matches = text.match(from);
  const found = matches ? matches.length : 0;
  if (found !== count) throw new Error(`${file}: could not ${description} (${found} matches, expected ${count}); is this mediasoup 3.19?`);
  text = text.replace(from, to);
}

// Sends what OpenSSL left in the outgoing memory BIO (SendDtlsData sends it and resets the BIO).
const flush =
  '\n\t\t{ char* hoichanDtlsData{ nullptr }; const long hoichanDtlsLen = BIO_get_mem_data(this->sslBioToNetwork, &hoichanDtlsData);' +
  ' if (hoichanDtlsLen > 0) { SendDtlsData(reinterpret_cast<const uint8_t*>(hoichanDtlsData), static_cast<size_t>(hoichanDtlsLen)); } }';

edit(
  'stop sending from the BIO write callback',
  /\n\t\tBIO_set_callback_ex\(this->sslBioToNetwork, onSslBioOut\);\n\t\tBIO_set_callback_arg\(this->sslBioToNetwork, reinterpret_cast<char\*>\(this\)\);/g,
  '\n\t\t// Hoichan: no BIO write callback; records are sent after each OpenSSL call.\n\t\t(void)onSslBioOut;',
  1,
);
edit('send after SSL_read()', /(\n\t\tread = SSL_read\([^\n]*\);)/g, `$1${flush}`, 1);
edit('send after SSL_write()', /(\n\t\twritten = SSL_write\([^\n]*\);)/g, `$1${flush}`, 1);
edit('send after SSL_do_handshake()', /(\n(\t+)SSL_do_handshake\(this->ssl\);)/g, `$1${flush}`, 2);
// Closing: the close alert goes to the peer, as before.
edit('send the close alert after SSL_shutdown()', /(\n\t\t\tSSL_shutdown\(this->ssl\);)/g, `$1${flush}`, 1);
// Resetting (new role): upstream's comment says the alert should not reach the
// peer; 3.12 left it unsent. Discard it.
edit(
  'drop the alert of a reset',
  /(\n\t\tSSL_shutdown\(this->ssl\);)/g,
  '$1\n\t\t(void)BIO_reset(this->sslBioToNetwork); // Hoichan: the peer must not get this close alert.',
  1,
);
edit('send after DTLSv1_handle_timeout()', /(\n\t\tauto ret = DTLSv1_handle_timeout\(this->ssl\);)/g, `$1${flush}`, 1);

writeFileSync(file, text);
console.log('patched DtlsTransport.cpp: DTLS sent after each OpenSSL call');
