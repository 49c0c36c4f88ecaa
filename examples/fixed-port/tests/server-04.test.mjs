import { checkOwnServer } from '../server.mjs';

await checkOwnServer('test-04');
console.log('test-04: own server on port 3000');
