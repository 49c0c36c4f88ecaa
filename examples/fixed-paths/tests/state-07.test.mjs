import { checkOwnState } from '../state.mjs';

checkOwnState('test-07');
console.log('test-07: state file untouched by others');
