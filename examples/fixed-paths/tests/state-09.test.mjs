import { checkOwnState } from '../state.mjs';

checkOwnState('test-09');
console.log('test-09: state file untouched by others');
