import { adminClient, OperatorAuthError } from '../admin-client';
import { serviceUrls, type OperatorConfig } from '../operator-config';

export interface Violation {
  orderId: string;
  sellerId: string;
  state: string;
  since: string;
  ageSeconds: number;
  deadlineSeconds: number;
  reason: string;
}
export interface StageReport {
  service: string;
  stage: string;
  violations: Violation[];
  error?: string;
}

/**
 * The integrity report: every order that is not in a terminal state past its stage's deadline, per stage, as each
 * service computes it from its own data. A service that cannot answer is itself a violation of the report.
 */
export async function integrityReport(config: OperatorConfig, options: { since?: Date } = {}): Promise<StageReport[]> {
  const reports: StageReport[] = [];
  for (const [service, url] of Object.entries(serviceUrls(config))) {
    try {
      const response = await adminClient(url, config.POSTSALE_ADMIN_TOKEN).get('/admin/integrity');
      if (response.status === 401) throw new OperatorAuthError(`${service} refused the operator credential`);
      if (response.status !== 200) throw new Error(`${service} answered ${response.status}`);
      const body = response.data as { stage?: string; violations: Violation[] };
      const violations = options.since
        ? body.violations.filter((v) => new Date(v.since).getTime() >= options.since!.getTime())
        : body.violations;
      reports.push({ service, stage: body.stage ?? service, violations });
    } catch (error) {
      if (error instanceof OperatorAuthError) throw error;
      reports.push({ service, stage: service, violations: [], error: error instanceof Error ? error.message : String(error) });
    }
  }
  return reports;
}

export function printIntegrity(reports: StageReport[]): number {
  let problems = 0;
  for (const r of reports) {
    if (r.error) {
      problems++;
      console.log(`✗ ${r.stage}: could not be checked (${r.error})`);
      continue;
    }
    if (r.violations.length === 0) {
      console.log(`✓ ${r.stage}: no order past its deadline`);
      continue;
    }
    problems += r.violations.length;
    console.log(`✗ ${r.stage}: ${r.violations.length} order(s) past the deadline`);
    for (const v of r.violations) {
      console.log(`    ${v.orderId}  seller ${v.sellerId}  ${v.state} for ${formatAge(v.ageSeconds)} (deadline ${formatAge(v.deadlineSeconds)})  ${v.reason}`);
    }
  }
  return problems;
}

function formatAge(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}
