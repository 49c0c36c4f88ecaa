import { readFileSync, statSync } from 'node:fs';

// The host reads what it needs of a live sandbox through /proc/<init pid>:
// its files at root/, its network namespace's sockets at net/. No process
// has to be started inside for a probe, which keeps polling cheap.

/** A path inside the sandbox, as seen from the host. */
export const insidePath = (initPid: number, path: string): string => `/proc/${initPid}/root${path}`;

/** Whether something listens on `port` (TCP, IPv4 or IPv6) in the sandbox's network namespace. */
export function listensOn(initPid: number, port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${initPid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    // Columns: sl local_address rem_address st ...; state 0A is LISTEN.
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === '0A' && local?.endsWith(`:${hexPort}`)) return true;
    }
  }
  return false;
}

export function socketExists(initPid: number, path: string): boolean {
  return statSync(insidePath(initPid, path), { throwIfNoEntry: false })?.isSocket() ?? false;
}

/** The last `lines` lines of a file inside the sandbox ('' if it cannot be read). */
export function tailOf(initPid: number, path: string, lines = 20): string {
  try {
    return readFileSync(insidePath(initPid, path), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export function readInside(initPid: number, path: string): string {
  try {
    return readFileSync(insidePath(initPid, path), 'utf8');
  } catch {
    return '';
  }
}
