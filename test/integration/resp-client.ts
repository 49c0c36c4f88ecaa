// A minimal Redis client for the tests: the Redis protocol over a unix
// socket or TCP, one command at a time (no dependency on a client package).
import { connect, type Socket } from 'node:net';

export type Reply = string | number | null | Reply[] | Error;

/** Parses one reply at `at`; undefined while incomplete. */
function parse(data: Buffer, at: number): { value: Reply; end: number } | undefined {
  const eol = data.indexOf('\r\n', at);
  if (eol < 0) return undefined;
  const head = data.toString('utf8', at + 1, eol);
  const type = String.fromCharCode(data[at]!);
  if (type === '+') return { value: head, end: eol + 2 };
  if (type === '-') return { value: new Error(head), end: eol + 2 };
  if (type === ':') return { value: Number(head), end: eol + 2 };
  if (type === '$') {
    const length = Number(head);
    if (length < 0) return { value: null, end: eol + 2 };
    if (data.length < eol + 2 + length + 2) return undefined;
    return { value: data.toString('utf8', eol + 2, eol + 2 + length), end: eol + 2 + length + 2 };
  }
  if (type === '*') {
    const items: Reply[] = [];
    let end = eol + 2;
    for (let i = 0; i < Number(head); i++) {
      const item = parse(data, end);
      if (!item) return undefined;
      items.push(item.value);
      end = item.end;
    }
    return { value: items, end };
  }
  throw new Error(`unexpected reply type ${type}`);
}

export class RespClient {
  #buffer = Buffer.alloc(0);
  #waiting: ((reply: Reply) => void)[] = [];

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      for (let reply = parse(this.#buffer, 0); reply; reply = parse(this.#buffer, 0)) {
        this.#buffer = this.#buffer.subarray(reply.end);
        this.#waiting.shift()?.(reply.value);
      }
    });
  }

  /** Connects to a unix socket path, or `{ port }` on 127.0.0.1. */
  static open(to: string | { port: number }): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = typeof to === 'string' ? connect(to) : connect(to.port, '127.0.0.1');
      socket.once('error', reject);
      socket.once('connect', () => resolve(new RespClient(socket)));
    });
  }

  send(...args: string[]): Promise<Reply> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.socket.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
