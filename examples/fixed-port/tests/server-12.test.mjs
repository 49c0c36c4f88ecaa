import { checkOwnServer } from '../server.mjs';

await checkOwnServer('test-12');
console.log('test-12: own server on port 3000');
