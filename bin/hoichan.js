#!/usr/bin/env node
// Entry point of the hoichan command; the code lives in src/cli (built to dist/).
import('../dist/src/cli/main.js')
  .then(({ main }) => main(process.argv.slice(2)))
  .catch((err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli')) {
      console.error('hoichan: not built yet; run `npm run build` (or bash scripts/setup.sh)');
    } else {
      console.error(err);
    }
    process.exit(1);
  });
