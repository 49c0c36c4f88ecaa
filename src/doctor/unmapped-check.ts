import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { workdirMountPoint } from '../sandbox/mounts.js';
import { callerIds, findUnmappedFiles, unmappedMessage } from '../sandbox/unmapped.js';
import type { DoctorCheck } from './checks.js';

export const UNMAPPED_CHECK = 'files the sandbox can map';

/** `doctor --cwd DIR`: can a sandbox map every file there? Asked for, so the scan may take longer than a failed job's. */
export function unmappedCheck(dir: string, budget = { found: 20, entries: 2_000_000, ms: 20_000 }): DoctorCheck {
  const name = UNMAPPED_CHECK;
  const cwd = resolve(dir);
  try {
    if (!statSync(cwd).isDirectory()) throw new Error('not a directory');
  } catch (error) {
    return {
      name,
      status: 'fail',
      detail: `--cwd ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      remedy: 'give an existing directory',
    };
  }
  // The sandbox shows the tree its working directory is mounted from (for /tmp/a/b, /tmp/a).
  const tree = workdirMountPoint(cwd);
  const ids = callerIds();
  const { files, entries, partial } = findUnmappedFiles([tree], ids, budget);
  if (files.length > 0) {
    const message = unmappedMessage({ files, ids, cwd, tree, atLeast: partial && files.length >= budget.found });
    return { name, status: 'fail', detail: message.problem, remedy: message.fix };
  }
  if (partial)
    return {
      name,
      status: 'warn',
      detail: `none with another owner or group among the first ${entries} entries of ${tree}; the check stopped there`,
      remedy: `list the rest with: find ${tree} ! -user ${ids.uid} -o ! -group ${ids.gid}`,
    };
  return { name, status: 'pass', detail: `all ${entries} entries of ${tree} are yours (${ids.uid}:${ids.gid}), the only ids a sandbox maps` };
}
