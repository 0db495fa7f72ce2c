// docs/PROTOCOL.md and src/contract/ cannot drift: every request and event the
// document's tables name is in the contract's name lists, and every name
// there is documented. (That each listed name has a type is checked by tsc:
// src/contract/names.ts and contract.test-d.ts.)

import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PEER_EVENT_NAMES, REQUEST_NAMES } from '../../src/contract/index.js';

const PROTOCOL = fileURLToPath(new URL('../../../docs/PROTOCOL.md', import.meta.url));

/** The backticked names in the first column of the table under the heading that starts with `heading`. */
function firstColumnNames(markdown: string, heading: string): string[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^#+ /.test(l) && l.replace(/^#+ /, '').startsWith(heading));
  if (start < 0) throw new Error(`docs/PROTOCOL.md has no section "${heading}"`);
  const names: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^#+ /.test(line)) break;
    if (!line.startsWith('|') || /^\|\s*-/.test(line)) continue;
    const cell = line.split('|')[1] ?? '';
    for (const m of cell.matchAll(/`([A-Za-z]+)`/g)) names.push(m[1]!);
  }
  return names;
}

describe('contract: docs/PROTOCOL.md and src/contract agree', () => {
  const doc = readFileSync(PROTOCOL, 'utf8');

  it('documents exactly the requests the contract types', () => {
    const documented = firstColumnNames(doc, 'Requests and replies');
    expect(documented).to.include('join');
    expect([...new Set(documented)].sort()).to.deep.equal([...REQUEST_NAMES].sort());
  });

  it('documents exactly the peer events the contract types', () => {
    const documented = firstColumnNames(doc, 'Events');
    expect(documented).to.include('deviceReadings');
    expect([...new Set(documented)].sort()).to.deep.equal([...PEER_EVENT_NAMES].sort());
  });

  it('documents the deviceReadings extensions the contract types (gaps, replay)', () => {
    const section = doc.slice(doc.indexOf('Devices in a conference'));
    expect(section).to.match(/`gaps` \*\(extension\)\*/);
    expect(section).to.match(/`replay: true` \*\(extension\)\*/);
  });
});
