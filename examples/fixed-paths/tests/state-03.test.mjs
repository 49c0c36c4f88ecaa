import { checkOwnState } from '../state.mjs';

checkOwnState('test-03');
console.log('test-03: state file untouched by others');
