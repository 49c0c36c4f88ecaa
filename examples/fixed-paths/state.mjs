// Tests that keep state in fixed absolute paths, as many tools do (/tmp/app,
// a build directory): run at once on one host they overwrite each other.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const DIR = '/tmp/fixed-paths-example';

export function checkOwnState(name) {
  mkdirSync(DIR, { recursive: true });
  for (let round = 0; round < 200; round++) {
    writeFileSync(`${DIR}/state.json`, JSON.stringify({ owner: name, round }));
    const state = JSON.parse(readFileSync(`${DIR}/state.json`, 'utf8'));
    if (state.owner !== name || state.round !== round) throw new Error(`${name} found ${JSON.stringify(state)} in its state file`);
  }
  rmSync(DIR, { recursive: true, force: true });
}
