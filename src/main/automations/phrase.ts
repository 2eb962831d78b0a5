import { Temporal } from 'temporal-polyfill';
import { PaddockError } from '../../shared/result.js';
import {
  checkTimeZone,
  compileSchedule,
  localTimeZone,
  parseScheduleText,
  todayIn,
  type Schedule,
} from './schedule.js';

const DAYS: Record<string, string> = {
  mo: 'MO',
  mon: 'MO',
  monday: 'MO',
  mondays: 'MO',
  tu: 'TU',
  tue: 'TU',
  tues: 'TU',
  tuesday: 'TU',
  tuesdays: 'TU',
  we: 'WE',
  wed: 'WE',
  wednesday: 'WE',
  wednesdays: 'WE',
  th: 'TH',
  thu: 'TH',
  thur: 'TH',
  thurs: 'TH',
  thursday: 'TH',
  thursdays: 'TH',
  fr: 'FR',
  fri: 'FR',
  friday: 'FR',
  fridays: 'FR',
  sa: 'SA',
  sat: 'SA',
  saturday: 'SA',
  saturdays: 'SA',
  su: 'SU',
  sun: 'SU',
  sunday: 'SU',
  sundays: 'SU',
};

const EXAMPLES =
  '“every weekday at 9:00”, “every day at 9:00, 13:00 and 17:00”, “every monday and friday at 18:30”, ' +
  '“every 2 hours”, “every 15 minutes”, “every month on the 1st at 8:00”, “once on 2026-12-01 at 08:00”, ' +
  'or iCalendar text (DTSTART;TZID=Europe/Paris:20261201T090000 RRULE:FREQ=DAILY)';

function bad(phrase: string): never {
  throw new PaddockError(
    'BAD_SCHEDULE',
    `Paddock cannot read the schedule “${phrase}”. Write it like ${EXAMPLES}.`,
  );
}

/** Parses "9", "9:30", "09:30", "9am", "6:15 pm", "noon", "midnight". */
function parseTime(s: string, phrase: string): { hour: number; minute: number } {
  const t = s.trim().toLowerCase();
  if (t === 'noon') return { hour: 12, minute: 0 };
  if (t === 'midnight') return { hour: 0, minute: 0 };
  const m = /^(\d{1,2})(?:[:h.](\d{2}))?\s*(am|pm)?$/.exec(t);
  if (!m) return bad(phrase);
  let hour = Number(m[1]);
  const minute = m[2] ? Number(m[2]) : 0;
  if (m[3]) {
    if (hour < 1 || hour > 12) bad(phrase);
    hour = (hour % 12) + (m[3] === 'pm' ? 12 : 0);
  }
  if (hour > 23 || minute > 59) bad(phrase);
  return { hour, minute };
}

function splitList(s: string): string[] {
  return s
    .split(/\s*(?:,|\band\b|&)\s*/)
    .map((x) => x.trim())
    .filter(Boolean);
}

/** "at 9:00, 13:00 and 17:00" → BYHOUR/BYMINUTE and the first time (for DTSTART). */
function timesPart(
  list: string,
  phrase: string,
): { by: string; first: { hour: number; minute: number } } {
  const times = splitList(list).map((t) => parseTime(t, phrase));
  const minutes = new Set(times.map((t) => t.minute));
  if (minutes.size > 1) {
    throw new PaddockError(
      'BAD_SCHEDULE',
      `Times in one schedule must share their minutes (an RRULE pairs every hour with every minute); make one automation per time in “${phrase}”.`,
    );
  }
  const hours = [...new Set(times.map((t) => t.hour))].sort((a, b) => a - b);
  return {
    by: `;BYHOUR=${hours.join(',')};BYMINUTE=${times[0]!.minute};BYSECOND=0`,
    first: times[0]!,
  };
}

function ordinalDay(s: string, phrase: string): number {
  if (/^last$/.test(s)) return -1;
  const m = /^(\d{1,2})(?:st|nd|rd|th)?$/.exec(s);
  if (!m) return bad(phrase);
  const n = Number(m[1]);
  if (n < 1 || n > 31) bad(phrase);
  return n;
}

/**
 * Compiles a simple English phrase to an RRULE with DTSTART and TZID, or passes iCalendar text
 * through. `tz` is the zone the times are in (default: this machine's); a trailing
 * "in Area/City" in the phrase overrides it. `now` anchors phrases that say no date.
 */
export function parseSchedulePhrase(
  input: string,
  opts: { tz?: string; now?: number } = {},
): Schedule {
  const now = opts.now ?? Date.now();
  const text = input.trim();
  if (/^(DTSTART|RRULE:|FREQ=)/i.test(text))
    return parseScheduleText(text, { defaultTz: opts.tz ?? localTimeZone(), now });

  let phrase = text.toLowerCase().replace(/\s+/g, ' ');
  let tz = opts.tz ?? localTimeZone();
  const tzm = / in ([a-z_]+(?:\/[a-z_+-]+)+|utc)$/i.exec(text);
  if (tzm) {
    tz = tzm[1]!;
    phrase = phrase.slice(0, phrase.length - tzm[0].length);
  }
  tz = checkTimeZone(tz);
  const today = todayIn(tz, now);
  const at = (d: Temporal.PlainDate, t: { hour: number; minute: number }) =>
    d.toPlainDateTime({ hour: t.hour, minute: t.minute });
  const make = (dtstart: Temporal.PlainDateTime, rrule: string): Schedule => {
    const s = { dtstart, tzid: tz, rrule };
    compileSchedule(s);
    return s;
  };
  let m: RegExpExecArray | null;

  // once on 2026-12-01 at 08:00 / on 2026-12-01 at 8am / once at 2026-12-01 08:00
  if ((m = /^(?:once )?(?:on|at) (\d{4}-\d{2}-\d{2})(?:t| at | )(.+)$/.exec(phrase))) {
    let date: Temporal.PlainDate;
    try {
      date = Temporal.PlainDate.from(m[1]!, { overflow: 'reject' });
    } catch {
      return bad(input);
    }
    return make(at(date, parseTime(m[2]!, input)), 'FREQ=DAILY;COUNT=1');
  }
  // every minute / every 15 minutes / every hour / every 2 hours / hourly
  if ((m = /^(?:every (\d+ )?(minute|hour)s?|(hourly))$/.exec(phrase))) {
    const n = m[1] ? Number(m[1]) : 1;
    if (n < 1) bad(input);
    const freq = m[3] || m[2] === 'hour' ? 'HOURLY' : 'MINUTELY';
    return make(at(today, { hour: 0, minute: 0 }), `FREQ=${freq}${n > 1 ? `;INTERVAL=${n}` : ''}`);
  }
  // every day at 9:00 / daily at 9 / every 2 days at 9:00 / every day at 9, 13 and 17
  if ((m = /^(?:every (?:(\d+) )?days?|daily) at (.+)$/.exec(phrase))) {
    const n = m[1] ? Number(m[1]) : 1;
    const t = timesPart(m[2]!, input);
    return make(at(today, t.first), `FREQ=DAILY${n > 1 ? `;INTERVAL=${n}` : ''}${t.by}`);
  }
  // every month on the 1st at 9:00 / monthly on the last day at 17:00
  if ((m = /^(?:every month|monthly) on (?:the )?(\w+)(?: day)? at (.+)$/.exec(phrase))) {
    const day = ordinalDay(m[1]!, input);
    const t = timesPart(m[2]!, input);
    return make(at(today, t.first), `FREQ=MONTHLY;BYMONTHDAY=${day}${t.by}`);
  }
  // every weekday at 9:00 / every weekend at 10 / every monday, wednesday and friday at 18:30
  if ((m = /^(?:every|on) (.+?) at (.+)$/.exec(phrase))) {
    const daysText = m[1]!.replace(/^week on /, '');
    let days: string[];
    if (daysText === 'weekday' || daysText === 'weekdays') days = ['MO', 'TU', 'WE', 'TH', 'FR'];
    else if (daysText === 'weekend' || daysText === 'weekends') days = ['SA', 'SU'];
    else {
      days = splitList(daysText).map((d) => DAYS[d] ?? bad(input));
    }
    if (days.length > 0) {
      const t = timesPart(m[2]!, input);
      return make(at(today, t.first), `FREQ=WEEKLY;BYDAY=${[...new Set(days)].join(',')}${t.by}`);
    }
  }
  return bad(input);
}
