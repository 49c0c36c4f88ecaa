import { checkOwnServer } from '../server.mjs';

await checkOwnServer('test-01');
console.log('test-01: own server on port 3000');
