import { checkOwnState } from '../state.mjs';

checkOwnState('test-12');
console.log('test-12: state file untouched by others');
