import type { AutomationRun } from '../../../shared/automations-contract.js';

/** The person's time zone, as the browser or Electron knows it. */
export function personTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** `Mon 30 Nov 2026, 09:00` in a zone: how run times are shown everywhere. */
export function formatRunTime(at: number, tz: string): string {
  return new Intl.DateTimeFormat(undefined, {
    timeZone: tz,
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(new Date(at));
}

const RUN_LABEL: Record<AutomationRun['status'], string> = {
  scheduled: 'Queued',
  running: 'Running',
  succeeded: 'Succeeded',
  failed: 'Failed',
  missed: 'Missed',
  skipped: 'Skipped',
  interrupted: 'Interrupted',
};

/** The word a person sees for a run status. */
export function runLabel(status: AutomationRun['status']): string {
  return RUN_LABEL[status];
}

/** The colour class of a run status chip. */
export function runTone(status: AutomationRun['status']): string {
  if (status === 'running' || status === 'scheduled') return 'active';
  if (status === 'succeeded') return 'ok';
  if (status === 'failed') return 'fail';
  if (status === 'missed' || status === 'interrupted') return 'attention';
  return 'neutral';
}

/** What a missed-run policy means, in the person's words. */
export const MISSED_LABEL = {
  once: 'Run the latest missed time once',
  skip: 'Skip missed times',
  all: 'Run every missed time',
} as const;
