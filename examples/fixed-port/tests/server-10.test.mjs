import { checkOwnServer } from '../server.mjs';

await checkOwnServer('test-10');
console.log('test-10: own server on port 3000');
