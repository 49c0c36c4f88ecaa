import { checkOwnServer } from '../server.mjs';

await checkOwnServer('test-08');
console.log('test-08: own server on port 3000');
