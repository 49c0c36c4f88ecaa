import { checkOwnState } from '../state.mjs';

checkOwnState('test-01');
console.log('test-01: state file untouched by others');
