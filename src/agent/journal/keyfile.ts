// journal.encryptionKeyFile: the AES-256 key that seals reading bodies at rest
// (docs/JOURNAL.md, "Encryption at rest"). Read once at start.

import { readFile, stat } from 'node:fs/promises';

/**
 * The key in `file`: 32 raw bytes, or 64 hex digits, or base64 of 32 bytes
 * (`openssl rand -hex 32 > key`). The file must be readable by its owner only:
 * a key other accounts can read protects nothing on a shared PC.
 */
export async function readJournalKeyFile(file: string): Promise<Buffer> {
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`journal.encryptionKeyFile ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
  if (!info.isFile()) throw new Error(`journal.encryptionKeyFile ${file}: not a regular file`);
  if ((info.mode & 0o077) !== 0) {
    throw new Error(`journal.encryptionKeyFile ${file}: mode ${(info.mode & 0o777).toString(8)} lets other accounts read it; chmod 600 it`);
  }
  const raw = await readFile(file);
  if (raw.length === 32) return raw;
  const text = raw.toString('utf8').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(text)) {
    const key = Buffer.from(text, 'base64');
    if (key.length === 32) return key;
  }
  throw new Error(`journal.encryptionKeyFile ${file}: expected 32 bytes, 64 hex digits or base64 of 32 bytes (e.g. openssl rand -hex 32)`);
}
