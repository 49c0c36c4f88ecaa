import { checkOwnServer } from '../server.mjs';

await checkOwnServer('test-11');
console.log('test-11: own server on port 3000');
