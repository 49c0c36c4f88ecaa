import { checkOwnState } from '../state.mjs';

checkOwnState('test-04');
console.log('test-04: state file untouched by others');
