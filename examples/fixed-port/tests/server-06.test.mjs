import { checkOwnServer } from '../server.mjs';

await checkOwnServer('test-06');
console.log('test-06: own server on port 3000');
