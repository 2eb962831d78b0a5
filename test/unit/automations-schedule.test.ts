import { describe, expect, it } from 'vitest';
import { parseSchedulePhrase } from '../../src/main/automations/phrase.js';
import {
  compileSchedule,
  formatSchedule,
  formatSlot,
  parseScheduleText,
} from '../../src/main/automations/schedule.js';
import { PaddockError } from '../../src/shared/result.js';

/** The next `n` slots from `from`, written in the zone with their offsets. */
function next(schedule: string, tz: string, from: string, n: number): string[] {
  const s = parseSchedulePhrase(schedule, { tz, now: Date.parse(from) });
  const c = compileSchedule(s);
  const out: string[] = [];
  let t = Date.parse(from);
  let inclusive = true;
  while (out.length < n) {
    const x = c.next(t, inclusive);
    if (x === null) break;
    out.push(formatSlot(x, tz).replace(` (${tz})`, ''));
    t = x;
    inclusive = false;
  }
  return out;
}

describe('schedules across DST changes', () => {
  it('keeps a daily 09:00 at 09:00 local across spring forward and fall back in Europe/Paris', () => {
    expect(next('every day at 9:00', 'Europe/Paris', '2027-03-27T00:00:00Z', 3)).toEqual([
      '2027-03-27 09:00 +01:00',
      '2027-03-28 09:00 +02:00',
      '2027-03-29 09:00 +02:00',
    ]);
    expect(next('every day at 9:00', 'Europe/Paris', '2027-10-30T00:00:00Z', 3)).toEqual([
      '2027-10-30 09:00 +02:00',
      '2027-10-31 09:00 +01:00',
      '2027-11-01 09:00 +01:00',
    ]);
  });

  it('keeps a daily 09:00 at 09:00 local across both changes in America/New_York', () => {
    expect(next('every day at 9:00', 'America/New_York', '2027-03-13T12:00:00Z', 3)).toEqual([
      '2027-03-13 09:00 -05:00',
      '2027-03-14 09:00 -04:00',
      '2027-03-15 09:00 -04:00',
    ]);
    expect(next('every day at 9:00', 'America/New_York', '2027-11-06T12:00:00Z', 3)).toEqual([
      '2027-11-06 09:00 -04:00',
      '2027-11-07 09:00 -05:00',
      '2027-11-08 09:00 -05:00',
    ]);
  });

  it('shifts a local time that does not exist forward by the gap (spring forward)', () => {
    expect(next('every day at 2:30', 'Europe/Paris', '2027-03-27T00:00:00Z', 3)).toEqual([
      '2027-03-27 02:30 +01:00',
      '2027-03-28 03:30 +02:00', // 02:30 does not exist that night
      '2027-03-29 02:30 +02:00', // and the next day is back at 02:30
    ]);
    expect(next('every day at 2:30', 'America/New_York', '2027-03-13T00:00:00Z', 3)).toEqual([
      '2027-03-13 02:30 -05:00',
      '2027-03-14 03:30 -04:00',
      '2027-03-15 02:30 -04:00',
    ]);
  });

  it('runs a local time that occurs twice once, at its first occurrence (fall back)', () => {
    expect(next('every day at 2:30', 'Europe/Paris', '2027-10-30T00:00:00Z', 3)).toEqual([
      '2027-10-30 02:30 +02:00',
      '2027-10-31 02:30 +02:00', // the first 02:30 (summer time); the second one does not run
      '2027-11-01 02:30 +01:00',
    ]);
    expect(next('every day at 1:30', 'America/New_York', '2027-11-06T00:00:00Z', 3)).toEqual([
      '2027-11-06 01:30 -04:00',
      '2027-11-07 01:30 -04:00',
      '2027-11-08 01:30 -05:00',
    ]);
  });

  it('fires every BYHOUR value, including on the days of both changes', () => {
    expect(
      next('every day at 1:30, 2:30 and 3:30', 'Europe/Paris', '2027-03-27T23:00:00Z', 5),
    ).toEqual([
      '2027-03-28 01:30 +01:00',
      '2027-03-28 03:30 +02:00', // 02:30 shifted onto 03:30: that slot runs once
      '2027-03-29 01:30 +02:00',
      '2027-03-29 02:30 +02:00',
      '2027-03-29 03:30 +02:00',
    ]);
    expect(
      next('every day at 1:30, 2:30 and 3:30', 'Europe/Paris', '2027-10-30T23:00:00Z', 4),
    ).toEqual([
      '2027-10-31 01:30 +02:00',
      '2027-10-31 02:30 +02:00',
      '2027-10-31 03:30 +01:00',
      '2027-11-01 01:30 +01:00',
    ]);
    expect(next('every day at 9, 13 and 17', 'Europe/Paris', '2027-06-01T00:00:00Z', 4)).toEqual([
      '2027-06-01 09:00 +02:00',
      '2027-06-01 13:00 +02:00',
      '2027-06-01 17:00 +02:00',
      '2027-06-02 09:00 +02:00',
    ]);
  });

  it('steps hourly schedules in elapsed time, so a DST change neither skips nor doubles an hour', () => {
    expect(next('every hour', 'America/New_York', '2027-03-14T05:30:00Z', 3)).toEqual([
      '2027-03-14 01:00 -05:00',
      '2027-03-14 03:00 -04:00', // one hour later: 02:00 does not exist
      '2027-03-14 04:00 -04:00',
    ]);
    expect(next('every hour', 'America/New_York', '2027-11-07T04:30:00Z', 4)).toEqual([
      '2027-11-07 01:00 -04:00',
      '2027-11-07 01:00 -05:00', // the repeated hour runs: an hour has passed
      '2027-11-07 02:00 -05:00',
      '2027-11-07 03:00 -05:00',
    ]);
    expect(next('every 2 hours', 'Europe/Paris', '2027-03-28T00:30:00Z', 2)).toEqual([
      '2027-03-28 03:00 +02:00',
      '2027-03-28 05:00 +02:00',
    ]);
  });

  it('lists both DST changes of 2027 in Europe/Paris for a weekly rule given as iCalendar text', () => {
    const s = parseScheduleText(
      'DTSTART;TZID=Europe/Paris:20270101T083000\nRRULE:FREQ=WEEKLY;BYDAY=SU',
    );
    const c = compileSchedule(s);
    const slots = c.between(Date.parse('2027-03-20T00:00:00Z'), Date.parse('2027-04-05T00:00:00Z'));
    expect(slots.map((t) => new Date(t).toISOString())).toEqual([
      '2027-03-21T07:30:00.000Z',
      '2027-03-28T06:30:00.000Z',
      '2027-04-04T06:30:00.000Z',
    ]);
    const fall = c.between(Date.parse('2027-10-20T00:00:00Z'), Date.parse('2027-11-01T00:00:00Z'));
    expect(fall.map((t) => new Date(t).toISOString())).toEqual([
      '2027-10-24T06:30:00.000Z',
      '2027-10-31T07:30:00.000Z',
    ]);
  });
});

describe('schedule phrases', () => {
  const now = Date.parse('2026-06-03T10:00:00Z'); // a Wednesday
  const cases: [string, string][] = [
    ['every weekday at 9:00', 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0;BYSECOND=0'],
    ['every day at 9am', 'FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0'],
    ['daily at 6:15 pm', 'FREQ=DAILY;BYHOUR=18;BYMINUTE=15;BYSECOND=0'],
    ['every day at 9:00, 13:00 and 17:00', 'FREQ=DAILY;BYHOUR=9,13,17;BYMINUTE=0;BYSECOND=0'],
    ['every 2 hours', 'FREQ=HOURLY;INTERVAL=2'],
    ['every hour', 'FREQ=HOURLY'],
    ['every 15 minutes', 'FREQ=MINUTELY;INTERVAL=15'],
    ['every minute', 'FREQ=MINUTELY'],
    [
      'every monday, wednesday and friday at 18:30',
      'FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=18;BYMINUTE=30;BYSECOND=0',
    ],
    ['every weekend at 10', 'FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=10;BYMINUTE=0;BYSECOND=0'],
    ['every month on the 1st at 8:00', 'FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=8;BYMINUTE=0;BYSECOND=0'],
    [
      'monthly on the last day at 17:00',
      'FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=17;BYMINUTE=0;BYSECOND=0',
    ],
    ['once on 2026-12-01 at 08:00', 'FREQ=DAILY;COUNT=1'],
  ];
  for (const [phrase, rrule] of cases) {
    it(`compiles “${phrase}”`, () => {
      expect(parseSchedulePhrase(phrase, { tz: 'Europe/Paris', now }).rrule).toBe(rrule);
    });
  }

  it('gives a one-shot its date, time and zone, and no slot after it', () => {
    const s = parseSchedulePhrase('once on 2026-12-01 at 08:00', { tz: 'Europe/Paris', now });
    expect(formatSchedule(s)).toBe(
      'DTSTART;TZID=Europe/Paris:20261201T080000\nRRULE:FREQ=DAILY;COUNT=1',
    );
    const c = compileSchedule(s);
    const first = c.next(now, true)!;
    expect(new Date(first).toISOString()).toBe('2026-12-01T07:00:00.000Z');
    expect(c.next(first)).toBeNull();
  });

  it('takes a zone at the end of the phrase', () => {
    const s = parseSchedulePhrase('every day at 9:00 in America/New_York', {
      tz: 'Europe/Paris',
      now,
    });
    expect(s.tzid).toBe('America/New_York');
  });

  it('passes iCalendar text through, with the zone it names', () => {
    const s = parseSchedulePhrase(
      'DTSTART;TZID=America/New_York:20270101T090000\nRRULE:FREQ=DAILY;BYHOUR=9,17',
      { tz: 'Europe/Paris', now },
    );
    expect(s.tzid).toBe('America/New_York');
    expect(s.rrule).toBe('FREQ=DAILY;BYHOUR=9,17');
  });

  it('refuses what it cannot read, with examples, and unknown zones', () => {
    for (const bad of [
      'whenever',
      'every blursday at 9',
      'every day at 25:00',
      'once on 2026-02-30 at 8:00',
    ]) {
      expect(() => parseSchedulePhrase(bad, { tz: 'UTC', now })).toThrow(PaddockError);
    }
    expect(() => parseSchedulePhrase('every day at 9', { tz: 'Mars/Olympus', now })).toThrow(
      /not a time zone/,
    );
    expect(() => parseSchedulePhrase('every day at 9:00 and 9:30', { tz: 'UTC', now })).toThrow(
      /share their minutes/,
    );
    expect(() => parseScheduleText('RRULE:FREQ=FORTNIGHTLY')).toThrow(PaddockError);
  });
});
