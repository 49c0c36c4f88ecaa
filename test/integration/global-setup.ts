import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Integration tests use the CLI from dist/ and both helper builds: make sure they are fresh. */
export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  execFileSync(process.execPath, ['helper/build.mjs'], { cwd: root, stdio: 'inherit' });
  execFileSync(process.execPath, ['helper/build.mjs', '--sanitize'], { cwd: root, stdio: 'inherit' });
}
