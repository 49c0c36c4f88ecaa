import { join, posix } from 'node:path';
import { SandboxError } from '../errors.js';
import type { TarWriter } from './tar-writer.js';
import { walkTree } from './tree.js';
import type { LayerInfo } from './types.js';

/** OCI's way of writing overlayfs deletions into a tar. */
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/**
 * Appends one layer's tree to a tar: deletions as `.wh.NAME`, opaque
 * directories with `.wh..wh..opq`, hard links as Link entries. Paths go
 * under `prefix` ('' for the tar's root, where the layer's own root entry is
 * left out: it belongs to whatever the tar is unpacked onto).
 */
export async function addLayerTree(writer: TarWriter, layer: LayerInfo, prefix: string): Promise<void> {
  const firstPath = new Map<string, string>(); // inode -> first path: hard links
  for (const entry of await walkTree(layer.path)) {
    if (!prefix && entry.path === '') continue;
    const path = prefix ? (entry.path ? `${prefix}/${entry.path}` : prefix) : entry.path;
    const { mode, mtime } = entry.stats;
    if (entry.type === 'whiteout') {
      await writer.add({ path: posix.join(posix.dirname(path), WHITEOUT_PREFIX + posix.basename(path)), type: 'File', mode: 0o644, mtime });
    } else if (entry.type === 'dir') {
      await writer.add({ path: `${path}/`, type: 'Directory', mode, mtime });
      if (entry.opaque) await writer.add({ path: `${path}/${OPAQUE_MARKER}`, type: 'File', mode: 0o644, mtime });
    } else if (entry.type === 'symlink') {
      await writer.add({ path, type: 'SymbolicLink', mode, mtime, linkpath: entry.target! });
    } else if (entry.type === 'file') {
      const inode = `${entry.stats.dev}:${entry.stats.ino}`;
      const first = entry.stats.nlink > 1 ? firstPath.get(inode) : undefined;
      if (first) await writer.add({ path, type: 'Link', mode, mtime, linkpath: first });
      else {
        if (entry.stats.nlink > 1) firstPath.set(inode, path);
        await writer.add({ path, type: 'File', mode, mtime, size: entry.stats.size, file: join(layer.path, entry.path) });
      }
    } else throw new SandboxError('SETUP_FAILED', `layer ${layer.digest} holds a special file: ${entry.path}`);
  }
}
