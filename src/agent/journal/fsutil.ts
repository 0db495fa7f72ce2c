import { chmod, lstat, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

// Readings are patient data: a journal is for the agent's user alone, whatever
// the umask or the site PC's other accounts (docs/JOURNAL.md, "File modes").
export const JOURNAL_DIR_MODE = 0o700;
export const JOURNAL_FILE_MODE = 0o600;

/**
 * Brings an existing journal (made before modes were set, or copied in) to
 * 0700/0600. Returns the entries whose mode was changed, for the log.
 */
export async function restrictModes(dir: string): Promise<string[]> {
  const changed: string[] = [];
  const tighten = async (path: string, mode: number, name: string) => {
    const stat = await lstat(path);
    if ((stat.mode & 0o777) === mode) return;
    await chmod(path, mode);
    changed.push(name);
  };
  await tighten(dir, JOURNAL_DIR_MODE, '.');
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) await tighten(join(dir, entry.name), JOURNAL_FILE_MODE, entry.name);
  }
  return changed;
}

/** Makes a directory's entries (created, renamed, deleted files) survive power loss. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces path with data so a crash leaves either the old or the new file whole. */
export async function writeFileAtomic(path: string, data: string | Buffer, dir: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, 'w', JOURNAL_FILE_MODE);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  await syncDir(dir);
}

/** Writes the whole buffer at position; FileHandle.write may write less than asked. */
export async function writeFully(
  handle: FileHandle,
  buf: Buffer,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    done += bytesWritten;
  }
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { force: true });
}

