import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, helperReason } from '../errors.js';
import { removeTree } from '../process/sweep.js';

/** What a probe found: whether copy-on-write works with that upper, and if not, the first thing that broke. */
export interface ProbeResult {
  ok: boolean;
  detail: string;
  /** The helper's stderr when no sandbox could be made at all (user namespaces refused...): no overlay question. */
  sandboxFailed?: string;
}

/*
 * Overlayfs keeps whiteouts, opaque dirs and the "impure" mark of renamed
 * dirs in user.* xattrs of the upper. Where the upper's filesystem cannot
 * hold them the mount still succeeds, and only these break: removing a lower
 * directory (EIO) and renaming a directory (EXDEV). mv falls back to a copy
 * on EXDEV, so the inode number tells a rename from a copy.
 */
const SCRIPT = [
  'cd "$1" || exit 2',
  'rm -r dir && mkdir dir && test ! -e dir/file || exit 3',
  'mkdir new && ino=$(stat -c %i new) && mv new renamed || exit 4',
  'test "$(stat -c %i renamed)" = "$ino" || { echo "rename of a directory failed (EXDEV): mv copied it" >&2; exit 4; }',
  'echo x > renamed/file && test ! -e dir/file || exit 5',
].join('\n');

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const STEP: Record<number, string> = {
  2: 'the overlay is missing',
  3: 'removing and re-creating a lower directory failed',
  4: 'renaming a new directory failed',
  5: 'writing failed',
};

/**
 * Mounts a small overlay in a real sandbox (the helper, as every sandbox is
 * made), removes a lower dir (a whiteout per file, then of the dir), makes
 * it again (opaque) and renames a new one. `upperOnDisk`
 * puts the upper and work dirs in `scratch` (the disk place to test); else
 * they are on the helper's private tmpfs. `scratch` is removed afterwards.
 */
export function probeOverlay(helper: string, scratch: string, upperOnDisk: boolean): ProbeResult {
  try {
    const lower = join(scratch, 'lower');
    mkdirSync(join(lower, 'dir'), { recursive: true });
    writeFileSync(join(lower, 'dir', 'file'), 'x');
    const mount = upperOnDisk ? ['--overlay-rw', join(scratch, 'upper'), join(scratch, 'work'), lower, lower] : ['--overlay', lower, lower];
    if (upperOnDisk) for (const dir of ['upper', 'work']) mkdirSync(join(scratch, dir));
    // A fixed PATH: the verdict must not depend on the caller's.
    const result = spawnSync(helper, [...mount, '--', '/bin/sh', '-c', SCRIPT, 'probe', lower], {
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: SYSTEM_PATH },
    });
    const leaked = !existsSync(join(lower, 'dir', 'file')) || existsSync(join(lower, 'renamed'));
    if (result.status === 0 && !leaked) return { ok: true, detail: 'whiteouts, opaque directories and directory renames work' };
    if (leaked) return { ok: false, detail: 'writes reached the lower directory' };
    const stderr = String(result.stderr ?? '');
    if (result.error) return { ok: false, detail: result.error.message };
    if (result.status === ExitCode.setup) {
      const reason = helperReason(stderr);
      return { ok: false, detail: reason, ...(/overlay/.test(reason) ? {} : { sandboxFailed: stderr }) };
    }
    const last = stderr.trim().split('\n').at(-1);
    return { ok: false, detail: `${STEP[result.status ?? 0] ?? `exit ${result.status ?? result.signal}`}${last ? `: ${last}` : ''}` };
  } catch (error) {
    return { ok: false, detail: (error as Error).message.split('\n')[0]! };
  } finally {
    removeTree(scratch);
  }
}
