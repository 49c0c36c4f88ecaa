import { checkOwnServer } from '../server.mjs';

await checkOwnServer('test-05');
console.log('test-05: own server on port 3000');
