import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RunSummary } from './summary.js';

const escapeXml = (text: string) =>
  text
    // XML 1.0 cannot carry most control characters, not even escaped.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')
    .replace(/\u001b\[[0-9;]*m/g, '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
const cdata = (text: string) =>
  `<![CDATA[${text
    .replace(/\u001b\[[0-9;]*m/g, '')
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')
    .replaceAll(']]>', ']]]]><![CDATA[>')}]]>`;
const secs = (ms: number) => (ms / 1000).toFixed(3);

/**
 * JUnit XML as GitHub, GitLab, Jenkins and Buildkite read it: one test case
 * per item (or shard), its time, a <failure> with the exit code and the end
 * of its output. A flaky case passes and carries <flakyFailure> (Maven
 * Surefire's element) for its first failed attempt; cancelled ones are
 * <skipped>, setup failures <error>.
 */
export function toJUnit(summary: RunSummary, name = 'sandbox-run'): string {
  const count = (status: string) => summary.results.filter((r) => r.status === status).length;
  const failures = count('failed') + count('timed out');
  const cases = summary.results.map((r) => {
    const attrs = `classname="${escapeXml(name)}" name="${escapeXml(r.label)}" time="${secs(r.durationMs)}"`;
    const why = `${r.status}${r.exitCode !== null ? ` (exit ${r.exitCode})` : ''}${r.error ? `: ${r.error}` : ''}`;
    const out = r.outputTail ? cdata(r.outputTail) : '';
    const body =
      r.status === 'failed' || r.status === 'timed out'
        ? `<failure message="${escapeXml(why)}" type="${escapeXml(r.status)}">${out}</failure>`
        : r.status === 'setup failed'
          ? `<error message="${escapeXml(why)}" type="setup failed">${out}</error>`
          : r.status === 'cancelled'
            ? `<skipped message="cancelled"/>`
            : r.status === 'flaky'
              ? `<flakyFailure message="${escapeXml(`failed, then passed on attempt ${r.attempts ?? 2}`)}" type="flaky">${out}</flakyFailure>` +
                '<properties><property name="status" value="flaky"/></properties>'
              : '';
    return body ? `    <testcase ${attrs}>${body}</testcase>` : `    <testcase ${attrs}/>`;
  });
  const suiteAttrs =
    `name="${escapeXml(name)}" tests="${summary.results.length}" failures="${failures}" ` +
    `errors="${count('setup failed')}" skipped="${count('cancelled')}" time="${secs(summary.durationMs)}" timestamp="${escapeXml(summary.startedAt)}"`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites ${suiteAttrs.replace(/ timestamp="[^"]*"/, '')}>`,
    `  <testsuite ${suiteAttrs}>`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export function writeJUnit(path: string, summary: RunSummary): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, toJUnit(summary));
}
