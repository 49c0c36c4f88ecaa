// Starts an HTTP server on the fixed port 3000, as many apps do, and checks
// that the server answering is its own: two of these at once on one host
// collide (EADDRINUSE or the other one's answer).
import { createServer, get } from 'node:http';

export async function checkOwnServer(name) {
  const server = createServer((_req, res) => res.end(name));
  await new Promise((resolve, reject) => server.once('error', reject).listen(3000, '127.0.0.1', resolve));
  try {
    for (let i = 0; i < 50; i++) {
      const body = await new Promise((resolve, reject) =>
        get('http://127.0.0.1:3000/', (res) => {
          let data = '';
          res.on('data', (chunk) => (data += chunk)).on('end', () => resolve(data));
        }).on('error', reject),
      );
      if (body !== name) throw new Error(`expected ${name}'s server, got ${body}`);
    }
  } finally {
    server.close();
  }
}
