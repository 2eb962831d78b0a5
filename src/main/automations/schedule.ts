import { RRuleTemporal } from 'rrule-temporal';
import { Temporal } from 'temporal-polyfill';
import { PaddockError } from '../../shared/result.js';

/**
 * Schedules are iCalendar text: a `DTSTART;TZID=Area/City:YYYYMMDDTHHMMSS` line and an `RRULE:`
 * line (RFC 5545). Expansion uses rrule-temporal, with these rules decided by tests
 * (test/unit/automations-schedule.test.ts):
 *
 * - Wall-clock rules (DAILY and longer, and any rule with a BYxxx part) keep their local time
 *   across DST: a daily 09:00 stays 09:00 local. They are expanded in floating local time and each
 *   local time is then placed in the zone as RFC 5545 §3.3.5 places an explicit DATE-TIME:
 *   - a local time that does not exist (spring forward, e.g. 02:30 in Paris on 2027-03-28) runs
 *     shifted forward by the length of the gap (03:30), using the offset before the gap. RFC 5545
 *     §3.3.10 would drop such an instance; we never drop a run silently, so it is shifted instead.
 *     If the shifted time equals another occurrence, the slot runs once.
 *   - a local time that occurs twice (fall back, e.g. 02:30 in Paris on 2027-10-31) runs once, at
 *     its first occurrence (the earlier, summer-time offset).
 * - HOURLY, MINUTELY and SECONDLY rules without BYxxx parts ("every 2 hours") step in elapsed time
 *   from DTSTART, as cron does for its every-hour jobs: a DST change neither skips nor doubles one.
 */
export interface Schedule {
  /** DTSTART as local wall-clock time in `tzid`. */
  dtstart: Temporal.PlainDateTime;
  /** An IANA time zone, e.g. Europe/Paris. */
  tzid: string;
  /** The RRULE value (without `RRULE:`), e.g. `FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR`. */
  rrule: string;
}

/** Widest shift a DST change can make between local and real time, with room to spare. */
const MAX_SHIFT_MS = 3 * 3600_000;
const ELAPSED_UNITS: Record<string, number> = {
  HOURLY: 3600_000,
  MINUTELY: 60_000,
  SECONDLY: 1000,
};
/** A catch-up never expands more slots than this for one automation in one go. */
export const MAX_SLOTS_PER_EXPANSION = 10_000;

function bad(message: string): never {
  throw new PaddockError('BAD_SCHEDULE', message);
}

/** Checks an IANA zone name, returning its canonical spelling. */
export function checkTimeZone(tz: string): string {
  try {
    return Temporal.Now.zonedDateTimeISO(tz).timeZoneId;
  } catch {
    return bad(`${tz} is not a time zone Paddock knows; use an IANA name such as Europe/Paris.`);
  }
}

/** The zone of this machine, the default for new schedules. */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

function icsDateTime(p: Temporal.PlainDateTime): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(p.year, 4)}${pad(p.month)}${pad(p.day)}T${pad(p.hour)}${pad(p.minute)}${pad(p.second)}`;
}

function parseIcsDateTime(s: string): Temporal.PlainDateTime {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (!m) return bad(`${s} is not an iCalendar date-time (YYYYMMDDTHHMMSS).`);
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  try {
    return Temporal.PlainDateTime.from(
      { year: y, month: mo, day: d, hour: h, minute: mi, second: se },
      { overflow: 'reject' },
    );
  } catch {
    return bad(`${s} is not a valid date and time.`);
  }
}

/** The iCalendar text stored for a schedule. */
export function formatSchedule(s: Schedule): string {
  return `DTSTART;TZID=${s.tzid}:${icsDateTime(s.dtstart)}\nRRULE:${s.rrule}`;
}

/**
 * Reads iCalendar text: `DTSTART;TZID=...:...` (or `DTSTART:...Z`, taken as UTC) and `RRULE:...`.
 * `defaultTz` and `now` fill in a missing DTSTART (the current minute in that zone). The rule is
 * compiled to check it unless `validate` is false (text read back from the store).
 */
export function parseScheduleText(
  text: string,
  opts: { defaultTz?: string; now?: number; validate?: boolean } = {},
): Schedule {
  let dtstart: Temporal.PlainDateTime | undefined;
  let tzid: string | undefined;
  let rrule: string | undefined;
  for (const raw of text.split(/\r?\n|\s+(?=DTSTART|RRULE)/)) {
    const line = raw.trim();
    if (!line) continue;
    let m: RegExpExecArray | null;
    if ((m = /^DTSTART(?:;TZID=([^:;]+))?:(\d{8}T\d{6})(Z?)$/i.exec(line))) {
      dtstart = parseIcsDateTime(m[2]!);
      tzid = m[3] ? 'UTC' : m[1] ? checkTimeZone(m[1]) : undefined;
    } else if ((m = /^(?:RRULE:)?(FREQ=.*)$/i.exec(line))) {
      rrule = m[1]!.toUpperCase();
    } else {
      bad(
        `Cannot read “${line}” as part of a schedule; expected DTSTART;TZID=…:… and RRULE:FREQ=….`,
      );
    }
  }
  if (!rrule) return bad('The schedule has no RRULE (as in RRULE:FREQ=DAILY).');
  tzid ??= checkTimeZone(opts.defaultTz ?? localTimeZone());
  dtstart ??= Temporal.Instant.fromEpochMilliseconds(opts.now ?? Date.now())
    .toZonedDateTimeISO(tzid)
    .toPlainDateTime()
    .round({ smallestUnit: 'minute', roundingMode: 'floor' });
  const s: Schedule = { dtstart, tzid, rrule };
  if (opts.validate !== false) compileSchedule(s);
  return s;
}

function ruleParts(rrule: string): Map<string, string> {
  const parts = new Map<string, string>();
  for (const p of rrule.split(';')) {
    if (!p) continue;
    const [k, v] = p.split('=');
    if (!k || v === undefined) bad(`${p} is not a KEY=VALUE part of an RRULE.`);
    parts.set(k.toUpperCase(), v);
  }
  if (!parts.get('FREQ')) bad('The RRULE needs a FREQ (as in FREQ=DAILY).');
  return parts;
}

/** A schedule ready to answer "when next?" and "which slots between?" in epoch milliseconds. */
export interface CompiledSchedule {
  readonly schedule: Schedule;
  /** The first slot after `after` (at or after it when `inclusive`), or null when none is left. */
  next(after: number, inclusive?: boolean): number | null;
  /** Slots in [from, to], in order, at most `limit` (default MAX_SLOTS_PER_EXPANSION). */
  between(from: number, to: number, limit?: number): number[];
}

/** The next `count` slots of a schedule from `from` (a slot at `from` itself included). */
export function upcomingSlots(c: CompiledSchedule, from: number, count: number): number[] {
  const out: number[] = [];
  let t = from;
  let inclusive = true;
  while (out.length < count) {
    const n = c.next(t, inclusive);
    if (n === null) break;
    out.push(n);
    t = n;
    inclusive = false;
  }
  return out;
}

/** Places a local time in the zone: gaps shift forward, repeated times take the first. */
export function placeLocal(local: Temporal.PlainDateTime, tz: string): number {
  return local.toZonedDateTime(tz, { disambiguation: 'compatible' }).epochMilliseconds;
}

function wallMs(instant: number, tz: string): number {
  const p = Temporal.Instant.fromEpochMilliseconds(instant)
    .toZonedDateTimeISO(tz)
    .toPlainDateTime();
  return p.toZonedDateTime('UTC').epochMilliseconds;
}

function plainFromWallMs(ms: number): Temporal.PlainDateTime {
  return Temporal.Instant.fromEpochMilliseconds(ms).toZonedDateTimeISO('UTC').toPlainDateTime();
}

/** Compiles a schedule; throws PaddockError BAD_SCHEDULE when the rule cannot be used. */
export function compileSchedule(s: Schedule): CompiledSchedule {
  const parts = ruleParts(s.rrule);
  const freq = parts.get('FREQ')!;
  const hasBy = [...parts.keys()].some((k) => k.startsWith('BY'));
  if (freq in ELAPSED_UNITS && !hasBy) return elapsedSchedule(s, parts, ELAPSED_UNITS[freq]!);
  return wallClockSchedule(s, parts);
}

function untilMs(parts: Map<string, string>, tz: string): number | undefined {
  const u = parts.get('UNTIL');
  if (!u) return undefined;
  const m = /^(\d{8}(?:T\d{6})?)(Z?)$/.exec(u);
  if (!m) return bad(`UNTIL=${u} is not an iCalendar date or date-time.`);
  const local = parseIcsDateTime(m[1]!.length === 8 ? `${m[1]}T235959` : m[1]!);
  return m[2] ? local.toZonedDateTime('UTC').epochMilliseconds : placeLocal(local, tz);
}

function elapsedSchedule(
  s: Schedule,
  parts: Map<string, string>,
  unitMs: number,
): CompiledSchedule {
  const interval = Number(parts.get('INTERVAL') ?? '1');
  if (!Number.isInteger(interval) || interval < 1) bad('INTERVAL must be a whole number from 1.');
  for (const k of parts.keys()) {
    if (!['FREQ', 'INTERVAL', 'COUNT', 'UNTIL', 'WKST'].includes(k))
      bad(`${k} is not an RRULE part Paddock understands.`);
  }
  const count = parts.has('COUNT') ? Number(parts.get('COUNT')) : undefined;
  if (count !== undefined && (!Number.isInteger(count) || count < 1))
    bad('COUNT must be a whole number from 1.');
  const step = interval * unitMs;
  const start = placeLocal(s.dtstart, s.tzid);
  const until = untilMs(parts, s.tzid);
  const last = Math.min(
    until ?? Infinity,
    count !== undefined ? start + (count - 1) * step : Infinity,
  );
  const at = (k: number) => start + k * step;
  const firstIndex = (t: number, inclusive: boolean) => {
    if (t < start) return 0;
    const k = Math.ceil((t - start) / step);
    return !inclusive && at(k) === t ? k + 1 : k;
  };
  return {
    schedule: s,
    next(after, inclusive = false) {
      const t = at(firstIndex(after, inclusive));
      return t <= last ? t : null;
    },
    between(from, to, limit = MAX_SLOTS_PER_EXPANSION) {
      const out: number[] = [];
      for (let k = firstIndex(from, true); at(k) <= to && at(k) <= last; k++) {
        if (out.length >= limit) break;
        out.push(at(k));
      }
      return out;
    },
  };
}

function wallClockSchedule(s: Schedule, parts: Map<string, string>): CompiledSchedule {
  // Expanded as floating time (the local wall clock written as UTC, which has no DST), then
  // each local time is placed in the real zone by placeLocal.
  let floatingRule = s.rrule;
  const u = parts.get('UNTIL');
  if (u?.endsWith('Z')) {
    const inst = untilMs(parts, s.tzid)!;
    floatingRule = floatingRule.replace(
      /UNTIL=[^;]+/,
      `UNTIL=${icsDateTime(plainFromWallMs(wallMs(inst, s.tzid)))}Z`,
    );
  }
  let rule: RRuleTemporal;
  try {
    rule = new RRuleTemporal({
      rruleString: `DTSTART;TZID=UTC:${icsDateTime(s.dtstart)}\nRRULE:${floatingRule}`,
      maxIterations: 100_000,
    });
  } catch (e) {
    return bad(`The RRULE ${s.rrule} is not valid: ${(e as Error).message}`);
  }
  const place = (w: Temporal.ZonedDateTime) => placeLocal(w.toPlainDateTime(), s.tzid);
  const next = (after: number, inclusive = false): number | null => {
    let cursor = new Date(wallMs(after, s.tzid) - MAX_SHIFT_MS);
    let best: number | null = null;
    let inc = true;
    for (let i = 0; i < 10_000; i++) {
      const w = rule.next(cursor, inc);
      if (!w) break;
      const inst = place(w);
      if ((inclusive ? inst >= after : inst > after) && (best === null || inst < best)) best = inst;
      if (best !== null && w.epochMilliseconds > wallMs(best, s.tzid) + MAX_SHIFT_MS) break;
      cursor = new Date(w.epochMilliseconds);
      inc = false;
    }
    return best;
  };
  return {
    schedule: s,
    next,
    between(from, to, limit = MAX_SLOTS_PER_EXPANSION) {
      const out = new Set<number>();
      let cursor = new Date(wallMs(from, s.tzid) - MAX_SHIFT_MS);
      const end = wallMs(to, s.tzid) + MAX_SHIFT_MS;
      let inc = true;
      for (;;) {
        const w = rule.next(cursor, inc);
        if (!w || w.epochMilliseconds > end) break;
        const inst = place(w);
        if (inst >= from && inst <= to) out.add(inst);
        if (out.size >= limit + 1) break;
        cursor = new Date(w.epochMilliseconds);
        inc = false;
      }
      return [...out].sort((a, b) => a - b).slice(0, limit);
    },
  };
}

/** A slot written in its zone with the offset, e.g. `2027-03-28 09:00 +02:00 (Europe/Paris)`. */
export function formatSlot(at: number, tz: string): string {
  const z = Temporal.Instant.fromEpochMilliseconds(at).toZonedDateTimeISO(tz);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${z.year}-${pad(z.month)}-${pad(z.day)} ${pad(z.hour)}:${pad(z.minute)}${z.second ? ':' + pad(z.second) : ''} ${z.offset} (${tz})`;
}

/** Today's date in a zone, for phrases that say only a time of day. */
export function todayIn(tz: string, now: number): Temporal.PlainDate {
  return Temporal.Instant.fromEpochMilliseconds(now).toZonedDateTimeISO(tz).toPlainDate();
}
