#!/usr/bin/env node
// Bundles the browser client (web/) into dist/web with esbuild. Type checking
// of web/ runs separately (tsc -p web) as part of `npm run build`.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
mkdirSync(out, { recursive: true });
rmSync(join(out, 'app.js.map'), { force: true });

await build({
  entryPoints: { app: join(root, 'web', 'src', 'main.ts') },
  bundle: true,
  format: 'esm',
  target: ['chrome100', 'firefox100', 'safari15'],
  minify: true,
  // No source map: dist/web is served as is, and a map would publish the client's
  // full sources (the hub also refuses *.map). Debug with an unminified local build.
  sourcemap: false,
  outdir: out,
  logLevel: 'warning',
});
copyFileSync(join(root, 'web', 'src', 'app.css'), join(out, 'app.css'));
for (const file of ['index.html', 'favicon.svg']) copyFileSync(join(root, 'web', file), join(out, file));
console.log(`web bundle: ${(statSync(join(out, 'app.js')).size / 1024).toFixed(0)} KiB -> dist/web`);
