import { checkOwnServer } from '../server.mjs';

await checkOwnServer('test-02');
console.log('test-02: own server on port 3000');
