import { checkOwnState } from '../state.mjs';

checkOwnState('test-06');
console.log('test-06: state file untouched by others');
