import { SandboxError } from '../../errors.js';
import type { RedisCommand } from './options.js';

const ESCAPES: Readonly<Record<string, string>> = { n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07', '"': '"', '\\': '\\' };

/**
 * The arguments of a command line as redis-cli reads it: words split by
 * blanks, "double quotes" with \n \r \t \b \a \\ \" \xHH escapes, 'single
 * quotes' with \' only. A quote must be followed by a blank or the end.
 */
export function splitCommandLine(line: string): Buffer[] {
  const args: Buffer[] = [];
  // Code points, not UTF-16 units: an emoji stays whole; \xHH adds one raw byte.
  const chars = Array.from(line);
  let i = 0;
  const fail = (why: string): never => {
    throw new SandboxError('BAD_OPTIONS', `redis preset: seed.commands '${line}': ${why}; fix the quoting`);
  };
  const blank = (at: number) => /\s/.test(chars[at] ?? '');
  while (i < chars.length) {
    while (i < chars.length && blank(i)) i++;
    if (i >= chars.length) break;
    const word: Buffer[] = [];
    const quote = chars[i] === '"' || chars[i] === "'" ? chars[i++] : undefined;
    for (;;) {
      if (i >= chars.length) {
        if (quote) fail('unbalanced quotes');
        break;
      }
      const c = chars[i]!;
      if (!quote && blank(i)) break;
      if (quote && c === quote) {
        i++;
        if (i < chars.length && !blank(i)) fail('a closing quote must be followed by a space');
        break;
      }
      const hex = chars.slice(i + 2, i + 4).join('');
      if (quote === '"' && c === '\\' && chars[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(hex)) {
        word.push(Buffer.from([Number.parseInt(hex, 16)]));
        i += 4;
      } else if (quote === '"' && c === '\\' && i + 1 < chars.length) {
        word.push(Buffer.from(ESCAPES[chars[i + 1]!] ?? chars[i + 1]!));
        i += 2;
      } else if (quote === "'" && c === '\\' && chars[i + 1] === "'") {
        word.push(Buffer.from("'"));
        i += 2;
      } else {
        word.push(Buffer.from(c));
        i++;
      }
    }
    args.push(Buffer.concat(word));
  }
  return args;
}

/** The commands in the Redis protocol (RESP arrays of bulk strings), as `redis-cli --pipe` sends them. */
export function toProtocol(commands: readonly RedisCommand[]): Buffer {
  const parts: Buffer[] = [];
  for (const command of commands) {
    const args = typeof command === 'string' ? splitCommandLine(command) : command;
    parts.push(Buffer.from(`*${args.length}\r\n`));
    for (const arg of args) {
      const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg;
      parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
    }
  }
  return Buffer.concat(parts);
}
