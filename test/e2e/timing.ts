/**
 * Timings the e2e run reports: printed as they happen and, when OFFSITE_E2E_TIMINGS names a
 * file, appended to it as JSON lines so run.ts can summarise them at the end.
 */
import { appendFileSync } from 'node:fs';

export function timing(what: string, startedMs: number): number {
  const seconds = (performance.now() - startedMs) / 1000;
  console.log(`e2e timing: ${what}: ${seconds.toFixed(1)} s`);
  const file = process.env.OFFSITE_E2E_TIMINGS;
  if (file) appendFileSync(file, `${JSON.stringify({ what, seconds: Number(seconds.toFixed(2)) })}\n`);
  return seconds;
}
