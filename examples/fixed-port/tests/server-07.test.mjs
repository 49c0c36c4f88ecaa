import { checkOwnServer } from '../server.mjs';

await checkOwnServer('test-07');
console.log('test-07: own server on port 3000');
