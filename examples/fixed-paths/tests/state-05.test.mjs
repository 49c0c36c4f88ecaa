import { checkOwnState } from '../state.mjs';

checkOwnState('test-05');
console.log('test-05: state file untouched by others');
