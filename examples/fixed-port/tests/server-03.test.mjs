import { checkOwnServer } from '../server.mjs';

await checkOwnServer('test-03');
console.log('test-03: own server on port 3000');
