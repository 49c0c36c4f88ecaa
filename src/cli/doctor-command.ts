import { type DoctorCheck, runDoctor } from '../doctor/checks.js';
import { UNMAPPED_CHECK } from '../doctor/unmapped-check.js';

const MARK: Record<DoctorCheck['status'], string> = { pass: 'ok  ', warn: 'warn', fail: 'FAIL' };

/** `sandbox-run doctor`: every check with its result and, where needed, the fix. Exit 1 on any failure. */
export async function doctorCommand(args: { json?: boolean; cwd?: string }): Promise<number> {
  const checks = await runDoctor(args.cwd !== undefined ? { cwd: args.cwd } : {});
  if (args.json) console.log(JSON.stringify(checks, null, 2));
  else
    for (const check of checks) {
      console.log(`${MARK[check.status]}  ${check.name}: ${check.detail}`);
      if (check.remedy && check.status !== 'pass') console.log(`      fix: ${check.remedy}`);
    }
  const failed = checks.some((check) => check.status === 'fail');
  // A tree with files it cannot map (--cwd) breaks writes in sandboxes, not sandboxes.
  const machineFailed = checks.some((check) => check.status === 'fail' && check.name !== UNMAPPED_CHECK);
  if (!args.json)
    console.log(
      machineFailed
        ? '\nsandboxes cannot run here; apply the fixes above.'
        : failed
          ? '\nsandboxes can run here, but not write every file in that tree; apply the fix above.'
          : '\nsandboxes can run here.',
    );
  return failed ? 1 : 0;
}
