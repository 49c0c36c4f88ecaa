import { runDoctor, type DoctorCheck } from '../doctor/checks.js';

const MARK: Record<DoctorCheck['status'], string> = { pass: 'ok  ', warn: 'warn', fail: 'FAIL' };

/** `sandbox-run doctor`: every check with its result and, where needed, the fix. Exit 1 on any failure. */
export async function doctorCommand(args: { json?: boolean }): Promise<number> {
  const checks = await runDoctor();
  if (args.json) console.log(JSON.stringify(checks, null, 2));
  else
    for (const check of checks) {
      console.log(`${MARK[check.status]}  ${check.name}: ${check.detail}`);
      if (check.remedy && check.status !== 'pass') console.log(`      fix: ${check.remedy}`);
    }
  const failed = checks.some((check) => check.status === 'fail');
  if (!args.json) console.log(failed ? '\nsandboxes cannot run here; apply the fixes above.' : '\nsandboxes can run here.');
  return failed ? 1 : 0;
}
