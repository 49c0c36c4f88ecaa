import { checkOwnState } from '../state.mjs';

checkOwnState('test-11');
console.log('test-11: state file untouched by others');
