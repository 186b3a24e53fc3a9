// How `audit` prints its report: a table of affected pods, then one fix per owner (table), or the
// whole report as JSON (-o json) for scripts.
import { shortName } from '../inject/settings.js';
import type { AuditReport, OwnerFix } from './audit.js';
import type { PodFinding } from './findings.js';

export function renderJson(report: AuditReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** Short file names when few are missing, a count otherwise: the table must stay readable. */
function describeMissing(finding: PodFinding): string {
  return finding.missing
    .map(
      ({ container, files }) =>
        `${container}: ${files.length <= 3 ? files.map(shortName).join(', ') : `${files.length} files`}`,
    )
    .join('; ');
}

/** The deepest directory all `paths` are in (or are). */
function commonDirectory(paths: string[]): string {
  const split = paths.map((p) => p.split('/'));
  let length = 0;
  while (
    split.every((parts) => parts.length > length + 1 && parts[length + 1] === split[0]![length + 1])
  )
    length++;
  return split[0]!.slice(0, length + 1).join('/') || '/';
}

function describeFinding(finding: PodFinding, lxcfsRoot: string): string {
  switch (finding.kind) {
    case 'other-root':
      return `from ${finding.roots!.join(', ')}, not ${lxcfsRoot}`;
    case 'other-injector': {
      // Names and paths are listed once per owner below the table; here, where they come from.
      const volumes = finding.foreignVolumes!;
      return `${volumes.length} hostPath volume${volumes.length === 1 ? '' : 's'} under ${commonDirectory(volumes.map((v) => v.hostPath))}`;
    }
    default:
      return `missing ${describeMissing(finding)}`;
  }
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]! + 2)))
      .join(''),
  );
}

function describeFix(fix: OwnerFix): string[] {
  const count = `${fix.pods.length} pod${fix.pods.length === 1 ? '' : 's'}`;
  const lines = [
    `  ${fix.owner} (ns ${fix.namespace}; ${[fix.ownerNote, count, fix.findings.join(', ')].filter(Boolean).join('; ')})`,
  ];
  if (fix.before !== undefined) lines.push(`    first: ${fix.before}`);
  if (fix.foreignVolumes !== undefined) {
    lines.push(
      `    their volumes: ${fix.foreignVolumes.map(({ name, hostPath }) => `${name} (${hostPath})`).join(', ')}`,
    );
  }
  lines.push(`    ${fix.fix.command}`);
  if (fix.fix.note !== undefined) lines.push(`    # ${fix.fix.note}`);
  return lines;
}

export function renderTable(report: AuditReport, lxcfsRoot: string): string {
  const lines: string[] = [];
  if (report.pods.length > 0) {
    lines.push(
      ...table([
        ['NAMESPACE', 'POD', 'MODE', 'FINDING', 'OWNER', 'DETAIL'],
        ...report.pods.map((p) => [
          p.namespace,
          p.name,
          p.mode,
          p.finding.kind,
          p.owner,
          describeFinding(p.finding, lxcfsRoot),
        ]),
      ]),
      '',
    );
  }
  for (const { namespace, problem } of report.namespaces)
    lines.push(`namespace ${namespace}: ${problem}`);
  if (report.namespaces.length > 0) lines.push('');
  if (report.fixes.length > 0) {
    lines.push('To fix, one command per owner (the webhook injects the pods it recreates):');
    for (const fix of report.fixes) lines.push(...describeFix(fix));
    lines.push('');
  }
  const { summary } = report;
  const selected = Object.entries(summary.selected)
    .map(([mode, count]) => `${count} ${mode}`)
    .join(', ');
  const finished = summary.finished === 0 ? '' : ` (${summary.finished} finished, not audited)`;
  const verdict =
    summary.affected === 0
      ? 'none affected'
      : `${summary.affected} affected, ${report.fixes.length} owner${report.fixes.length === 1 ? '' : 's'} to fix`;
  lines.push(
    `audited ${summary.pods} pods in ${summary.namespaces} namespaces${finished}; selected by the webhook: ${selected}; ${verdict}`,
  );
  return `${lines.join('\n')}\n`;
}
