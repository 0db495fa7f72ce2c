#!/usr/bin/env node
// Rewrites a copy of mediasoup's worker/meson.build (3.12.x) so that it builds
// against Debian's system libraries instead of downloading meson subprojects,
// which this network cannot reach. Each edit asserts that it matched, so a
// mediasoup upgrade that changes the file fails here, loudly, not later.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const workerDir = process.argv[2];
if (!workerDir) {
  console.error('usage: patch-worker-meson.mjs <copied worker dir>');
  process.exit(2);
}

function edit(file, edits) {
  let text = readFileSync(file, 'utf8');
  for (const [description, from, to] of edits) {
    const next = text.replace(from, to);
    if (next === text) throw new Error(`${file}: could not ${description}; is this mediasoup 3.12?`);
    text = next;
  }
  writeFileSync(file, text);
}

// pkg-config names as Debian bookworm ships them.
const systemDependencies = `
openssl_dep = dependency('openssl')
nlohmann_json_dep = dependency('nlohmann_json')
libuv_dep = dependency('libuv')
libsrtp2_system = dependency('libsrtp2')
# mediasoup includes <srtp.h>; Debian installs it under <includedir>/srtp2.
libsrtp2_dep = declare_dependency(
  dependencies: libsrtp2_system,
  compile_args: ['-I' + libsrtp2_system.get_variable(pkgconfig: 'includedir') / 'srtp2'],
)
usrsctp_dep = dependency('usrsctp')
absl_container_dep = dependency('absl_flat_hash_map')
absl_strings_dep = dependency('absl_strings')
absl_types_dep = dependency('absl_optional')
`;

// All subproject variables become the system dependencies declared above.
const projVariable = /\w+_proj\.get_variable\('(\w+_dep)'\)/g;

edit(join(workerDir, 'meson.build'), [
  ['accept meson 1.0', /meson_version: '>= 1\.1\.0'/, "meson_version: '>= 1.0.0'"],
  [
    'replace subproject() calls with dependency()',
    /openssl_proj = subproject\([\s\S]*?\ncatch2_proj = subproject\([\s\S]*?\n\)\n/,
    systemDependencies,
  ],
  ['use system dependency variables', projVariable, '$1'],
  // Static archives of subprojects no longer exist; only libwebrtc is ours to link.
  ['trim link_whole', /link_whole = \[[\s\S]*?\n\]/, 'link_whole = [\n  libwebrtc,\n]'],
  // Unit tests and fuzzers need catch2 and sanitizers; we build only the worker.
  ['drop test targets', /\ntest_sources = \[[\s\S]*$/, '\n'],
]);

edit(join(workerDir, 'deps', 'libwebrtc', 'meson.build'), [
  ['drop abseil subproject', /abseil_cpp_proj = subproject\([\s\S]*?\n\)\n/, ''],
  ['use system dependency variables', projVariable, '$1'],
]);

console.log('patched worker meson files for system libraries');
