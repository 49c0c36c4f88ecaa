// The few Redis commands the app needs, over the Redis protocol (RESP) on
// one connection; REDIS_URL as the preset exports it: redis://[default:PASSWORD@]HOST:PORT
import { connect } from 'node:net';

function parse(buffer, at) {
  const eol = buffer.indexOf('\r\n', at);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buffer[at]);
  const head = buffer.toString('utf8', at + 1, eol);
  if (type === '+' || type === ':') return { value: type === ':' ? Number(head) : head, end: eol + 2 };
  if (type === '-') return { value: new Error(head), end: eol + 2 };
  if (type === '$') {
    const length = Number(head);
    if (length < 0) return { value: null, end: eol + 2 };
    if (buffer.length < eol + 4 + length) return undefined;
    return { value: buffer.toString('utf8', eol + 2, eol + 2 + length), end: eol + 4 + length };
  }
  if (type === '*') {
    const items = [];
    let end = eol + 2;
    for (let i = 0; i < Number(head); i++) {
      const item = parse(buffer, end);
      if (!item) return undefined;
      items.push(item.value);
      end = item.end;
    }
    return { value: items, end };
  }
  throw new Error(`redis: unexpected reply ${type}`);
}

export async function openRedis(url) {
  const { hostname, port, password } = new URL(url);
  const socket = connect(Number(port || 6379), hostname === 'localhost' ? '127.0.0.1' : hostname);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const waiting = [];
  let buffer = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (let reply = parse(buffer, 0); reply; reply = parse(buffer, 0)) {
      buffer = buffer.subarray(reply.end);
      const { resolve, reject } = waiting.shift();
      reply.value instanceof Error ? reject(reply.value) : resolve(reply.value);
    }
  });
  const send = (...args) =>
    new Promise((resolve, reject) => {
      waiting.push({ resolve, reject });
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`);
    });
  if (password) await send('AUTH', decodeURIComponent(password));
  return { send, close: () => socket.end() };
}
