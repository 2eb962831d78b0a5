/**
 * The Apple backend's pure parts: the helper config (no network, read-only shares, cmdline) and
 * the parser of the helper's stdout, fed recorded lines including garbage and a crash.
 */
import { describe, expect, it } from 'vitest';
import { buildVzConfig, vzCmdline } from '../../src/main/vm/apple/config.js';
import {
  HelperLineParser,
  MAX_LINE,
  encodeOp,
  parseHelperLine,
} from '../../src/main/vm/apple/helper-protocol.js';

const paths = { disk: '/s/disk.img', agentSocket: '/r/agent.sock', consoleLog: '/r/console.log' };
const spec = {
  imageDir: '/images/v1',
  shares: [
    { name: 'proj', hostPath: '/Users/me/proj', readOnly: false },
    { name: 'docs', hostPath: '/Users/me/docs', readOnly: true },
  ],
  cpus: 2,
  memoryMb: 2048,
};

describe('buildVzConfig', () => {
  it('has no network device, and marks read-only shares read-only', () => {
    const c = buildVzConfig(spec, paths, 1_700_000_000.7);
    expect(c.network).toBe(false);
    // Exactly these fields: nothing that could describe a NIC reaches the helper.
    expect(Object.keys(c).sort()).toEqual(
      [
        'agentPortName',
        'agentSocket',
        'cmdline',
        'consoleLog',
        'cpus',
        'disk',
        'initrd',
        'kernel',
        'memoryBytes',
        'network',
        'shares',
      ].sort(),
    );
    expect(c.shares).toEqual([
      { tag: 'p0', hostPath: '/Users/me/proj', readOnly: false },
      { tag: 'p1', hostPath: '/Users/me/docs', readOnly: true },
    ]);
  });

  it('puts virtiofs, the shares, the agent port and the time on the cmdline', () => {
    const c = buildVzConfig(spec, paths, 1_700_000_000.7);
    expect(c.cmdline).toBe(
      'console=hvc0 quiet panic=-1 cryptomgr.notests paddock.fs=virtiofs ' +
        'paddock.shares=p0:proj:rw,p1:docs:ro paddock.port=paddock.0 paddock.time=1700000000',
    );
    expect(c.agentPortName).toBe('paddock.0');
    expect(vzCmdline({ shares: [] })).not.toContain('paddock.shares');
  });

  it('sizes memory in bytes and keeps cpus; paths are absolute', () => {
    const c = buildVzConfig(spec, paths);
    expect(c.memoryBytes).toBe(2048 * 1024 * 1024);
    expect(c.cpus).toBe(2);
    expect(c.kernel).toBe('/images/v1/vmlinux');
    expect(c.initrd).toBe('/images/v1/initrd.img');
    expect(c.disk).toBe('/s/disk.img');
    expect(c.agentSocket).toBe('/r/agent.sock');
  });

  it('shares a review grant read-only and marks it rv on the cmdline', () => {
    const c = buildVzConfig(
      {
        ...spec,
        shares: [{ name: 'proj', hostPath: '/Users/me/proj', readOnly: false, review: true }],
      },
      paths,
    );
    expect(c.shares).toEqual([{ tag: 'p0', hostPath: '/Users/me/proj', readOnly: true }]);
    expect(c.cmdline).toContain('paddock.shares=p0:proj:rv ');
  });

  it('treats a missing readOnly flag as read-only', () => {
    const c = buildVzConfig({ ...spec, shares: [{ name: 'x', hostPath: '/x' } as never] }, paths);
    expect(c.shares[0]!.readOnly).toBe(true);
  });

  it('refuses bad input', () => {
    expect(() => buildVzConfig({ ...spec, cpus: 0 }, paths)).toThrow(/cpu/);
    expect(() => buildVzConfig({ ...spec, memoryMb: 64 }, paths)).toThrow(/memory/);
    const bad = (name: string) => ({ ...spec, shares: [{ name, hostPath: '/x', readOnly: true }] });
    expect(() => buildVzConfig(bad('a b'), paths)).toThrow(/share name/);
    expect(() => buildVzConfig(bad('..'), paths)).toThrow(/share name/);
    expect(() => buildVzConfig(bad('a,paddock.fs=9p'), paths)).toThrow(/share name/);
    const two = { ...spec, shares: [spec.shares[0]!, spec.shares[0]!] };
    expect(() => buildVzConfig(two, paths)).toThrow(/Two shares/);
    const nl = { ...spec, shares: [{ name: 'a', hostPath: '/x\ny', readOnly: true }] };
    expect(() => buildVzConfig(nl, paths)).toThrow(/newline/);
  });
});

describe('helper stdout protocol', () => {
  it('parses a recorded session split at odd places', () => {
    const recorded =
      '{"event":"started"}\n' +
      '2026-11-27 11:00:00.000 PaddockVZ[123:456] +[VZ] some framework chatter\n' +
      '{"event":"paused"}\n{"event":"resumed"}\n\n' +
      '{"event":"stopped","reason":"requested"}\n';
    const p = new HelperLineParser();
    const events = [];
    for (let i = 0; i < recorded.length; i += 7) events.push(...p.push(recorded.slice(i, i + 7)));
    events.push(...p.end());
    expect(events).toEqual([
      { event: 'started' },
      { event: 'garbage', line: expect.stringContaining('framework chatter') },
      { event: 'paused' },
      { event: 'resumed' },
      { event: 'stopped', reason: 'requested' },
    ]);
  });

  it('reports a crash: a cut-off last line and no stopped event', () => {
    const p = new HelperLineParser();
    const events = [
      ...p.push('{"event":"started"}\nFatal error: Unexpectedly found nil\n{"event":"sto'),
      ...p.end(),
    ];
    expect(events.map((e) => e.event)).toEqual(['started', 'garbage', 'garbage']);
  });

  it('never throws on odd JSON', () => {
    expect(parseHelperLine('[1,2]')).toMatchObject({ event: 'garbage' });
    expect(parseHelperLine('null')).toMatchObject({ event: 'garbage' });
    expect(parseHelperLine('{"event":"launch-missiles"}')).toMatchObject({ event: 'garbage' });
    expect(parseHelperLine('{"event":"stopped"}')).toEqual({ event: 'stopped', reason: 'unknown' });
    expect(parseHelperLine('{"event":"error","message":"VZErrorDomain 2"}')).toEqual({
      event: 'error',
      message: 'VZErrorDomain 2',
    });
  });

  it('cuts a runaway line', () => {
    const p = new HelperLineParser();
    const events = p.push('x'.repeat(MAX_LINE + 10));
    expect(events).toHaveLength(1);
    expect(events[0]!.event).toBe('garbage');
    expect(p.push('{"event":"started"}\n')).toEqual([{ event: 'started' }]);
  });

  it('encodes ops as one line each', () => {
    expect(encodeOp({ op: 'stop' })).toBe('{"op":"stop"}\n');
  });
});
