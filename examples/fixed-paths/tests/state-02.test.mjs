import { checkOwnState } from '../state.mjs';

checkOwnState('test-02');
console.log('test-02: state file untouched by others');
