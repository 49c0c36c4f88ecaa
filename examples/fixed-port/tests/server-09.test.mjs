import { checkOwnServer } from '../server.mjs';

await checkOwnServer('test-09');
console.log('test-09: own server on port 3000');
