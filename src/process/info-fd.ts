import type { Readable } from 'node:stream';

/** The fd (a pipe in execa's `stdio`) on which the helper is asked to report, with `--info-fd`. */
export const INFO_FD = 3;

/** The helper's one-line report once a sandbox (or a joined process) is ready. */
export interface HelperInfo {
  /** Host pid of the sandbox's init, or of the joined command. */
  pid: number;
}

/**
 * Reads the helper's `{"pid":N,"ready":true}` line; undefined if the helper
 * exits without one (its setup failed: the reason is on its stderr).
 */
export async function readHelperInfo(stream: Readable): Promise<HelperInfo | undefined> {
  let text = '';
  for await (const chunk of stream) {
    text += String(chunk);
    const newline = text.indexOf('\n');
    if (newline < 0) continue;
    const { pid } = JSON.parse(text.slice(0, newline)) as { pid?: unknown };
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) throw new Error(`sandbox-run: the helper reported no pid: ${text.slice(0, newline)}`);
    return { pid };
  }
  return undefined;
}
