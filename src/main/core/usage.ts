import { Temporal } from 'temporal-polyfill';
import type { UsageMonth } from '../../shared/app-contract.js';
import { PaddockError } from '../../shared/result.js';
import type { Store } from '../store/store.js';

/** The zone this process runs in: the person's, on their own machine. */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/**
 * The calendar month `offset` months from the one holding `now` (0: this month, -1: the last),
 * as seen in `tz`: its first millisecond, the first of the next, and its `YYYY-MM` name. Months
 * begin at local midnight, so their length in hours follows daylight saving.
 */
export function monthRange(
  now: number,
  tz: string,
  offset = 0,
): { month: string; from: number; to: number } {
  let here: Temporal.ZonedDateTime;
  try {
    here = Temporal.Instant.fromEpochMilliseconds(now).toZonedDateTimeISO(tz);
  } catch {
    throw new PaddockError(
      'BAD_TIME_ZONE',
      `“${tz}” is not a time zone Paddock knows; use an IANA name such as Europe/Paris.`,
    );
  }
  const start = here.with({ day: 1 }).startOfDay().add({ months: offset });
  const next = start.add({ months: 1 }).startOfDay();
  return {
    month: start.toPlainDate().toPlainYearMonth().toString(),
    from: start.epochMilliseconds,
    to: next.epochMilliseconds,
  };
}

/**
 * What `usage:summary` answers: every model call's tokens and cost in this calendar month so far
 * and in the last, months taken in the person's time zone.
 */
export function usageSummary(
  store: Pick<Store, 'sessions'>,
  now: number,
  tz: string,
): { timeZone: string; thisMonth: UsageMonth; lastMonth: UsageMonth } {
  const month = (offset: number): UsageMonth => {
    const r = monthRange(now, tz, offset);
    return { ...r, ...store.sessions.usageBetween(r.from, r.to) };
  };
  return { timeZone: tz, thisMonth: month(0), lastMonth: month(-1) };
}
