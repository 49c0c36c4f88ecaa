const warned = new Set<string>();

/** One line on stderr, once per process: what the host cannot enforce, or what was left out, must not pass silently. */
export function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  process.stderr.write(`sandbox-run: warning: ${message}\n`);
}
