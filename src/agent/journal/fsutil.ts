import { open, rename, rm, type FileHandle } from 'node:fs/promises';

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
  const handle = await open(tmp, 'w');
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

