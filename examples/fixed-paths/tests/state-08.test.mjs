import { checkOwnState } from '../state.mjs';

checkOwnState('test-08');
console.log('test-08: state file untouched by others');
