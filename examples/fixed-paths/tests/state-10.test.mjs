import { checkOwnState } from '../state.mjs';

checkOwnState('test-10');
console.log('test-10: state file untouched by others');
