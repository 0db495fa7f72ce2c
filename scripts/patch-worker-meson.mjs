#!/usr/bin/env node
// Rewrites a copy of mediasoup's worker meson files (3.19.x) so that it builds
// against Debian bookworm's system libraries instead of downloading meson
// subprojects, which this network cannot reach. Each edit asserts that it
// matched, so a mediasoup upgrade that changes the files fails here, loudly,
// not later. See docs/MEDIASOUP-WORKER.md.
//
// usage: patch-worker-meson.mjs <copied worker dir> <compat include dir>
import { readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

const [workerDir, compatDir] = process.argv.slice(2);
if (!workerDir || !compatDir || !isAbsolute(compatDir)) {
  console.error('usage: patch-worker-meson.mjs <copied worker dir> <absolute compat include dir>');
  process.exit(2);
}

function edit(file, edits) {
  let text = readFileSync(file, 'utf8');
  for (const [description, from, to] of edits) {
    const next = text.replace(from, to);
    if (next === text) throw new Error(`${file}: could not ${description}; is this mediasoup 3.19?`);
    text = next;
  }
  writeFileSync(file, text);
}

// pkg-config names as Debian bookworm ships them. The compat directory
// (scripts/worker-compat) holds <srtp.h> and <liburing.h> wrappers that
// include Debian's headers and add the few newer names the worker uses; it
// goes first on the include path of every target that includes them.
const systemDependencies = `
hoichan_compat_inc = include_directories('${compatDir}')
openssl_dep = dependency('openssl')
libuv_dep = dependency('libuv')
# mediasoup 3.19 is written against libsrtp 3; Debian has libsrtp 2.5
# (<includedir>/srtp2/srtp.h). The compat <srtp.h> maps the libsrtp 3 calls.
libsrtp3_dep = declare_dependency(
  dependencies: dependency('libsrtp2', version: '>= 2.5.0'),
  include_directories: hoichan_compat_inc,
)
usrsctp_dep = dependency('usrsctp')
absl_container_dep = dependency('absl_flat_hash_map')
absl_strings_dep = dependency('absl_strings')
absl_types_dep = dependency('absl_optional')
# Generated code and runtime headers must come from the same flatbuffers
# release: both from Debian's flatbuffers-compiler and libflatbuffers-dev.
flatbuffers_dep = dependency('flatbuffers')
`;

// All subproject variables become the system dependencies declared above.
const projVariable = /\w+_proj\.get_variable\('(\w+_dep)'\)/g;

const liburingSystem = `# liburing from Debian (2.3); the compat <liburing.h> adds the 2.4 helpers.
    liburing_system = dependency('liburing', version: '>= 2.3')
    liburing_version = liburing_system.version().split('.')
    liburing_dep = declare_dependency(
      dependencies: liburing_system,
      include_directories: hoichan_compat_inc,
      compile_args: [
        '-DHOICHAN_LIBURING_VERSION_MAJOR=' + liburing_version[0],
        '-DHOICHAN_LIBURING_VERSION_MINOR=' + liburing_version[1],
      ],
    )

    dependencies += [
      liburing_dep,
    ]
`;

edit(join(workerDir, 'meson.build'), [
  // bookworm has meson 1.0.1; nothing the worker's files use needs 1.1.
  ['accept meson 1.0', /meson_version: '>= 1\.1\.0'/, "meson_version: '>= 1.0.0'"],
  [
    'replace subproject() calls with dependency()',
    /openssl_proj = subproject\([\s\S]*?\ncatch2_proj = subproject\([\s\S]*?\n\)\n\nflatbuffers_proj = subproject\([\s\S]*?\n\)\n/,
    systemDependencies,
  ],
  ['use system dependency variables', projVariable, '$1'],
  // Static archives of subprojects no longer exist; only libwebrtc is ours to link.
  ['trim link_whole', /link_whole = \[\n[\s\S]*?\n\]/, 'link_whole = [\n  libwebrtc,\n]'],
  [
    'use system liburing',
    /liburing_proj = subproject\('liburing'[^\n]*\n\n\s*dependencies \+= \[\n\s*liburing_proj\.get_variable\('uring'\),\n\s*\]\n\s*link_whole \+= \[\n\s*liburing_proj\.get_variable\('liburing'\)\n\s*\]\n/,
    liburingSystem,
  ],
  // Unit tests and fuzzers need catch2 and sanitizers; we build only the worker.
  ['drop test targets', /\ntest_sources = \[[\s\S]*$/, '\n'],
]);

// Upstream, nothing orders the generated FBS/*.h headers before the C++ that
// includes them; the subprojects' long builds hide the race. Without them,
// libwebrtc compiles first and fails, so the generator becomes a source of
// the dependency (an order-only edge in ninja) and libwebrtc takes it too.
edit(join(workerDir, 'fbs', 'meson.build'), [
  [
    'order generated headers first',
    /flatbuffers_generator_dep = declare_dependency\(\n  include_directories: '\.',\n\)/,
    "flatbuffers_generator_dep = declare_dependency(\n  include_directories: '.',\n  sources: flatbuffers_generator,\n)",
  ],
]);

edit(join(workerDir, 'deps', 'libwebrtc', 'meson.build'), [
  ['drop abseil subproject', /abseil_cpp_proj = subproject\([\s\S]*?\n\)\n/, ''],
  ['use system dependency variables', projVariable, '$1'],
  ['build libwebrtc after the generated headers', /\n    flatbuffers_dep,\n/, '\n    flatbuffers_dep,\n    flatbuffers_generator_dep,\n'],
]);

console.log('patched worker meson files for system libraries');
