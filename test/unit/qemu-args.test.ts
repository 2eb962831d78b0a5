import { describe, expect, it } from 'vitest';
import {
  AGENT_PORT_NAME,
  buildQemuArgs,
  isValidShareName,
  kernelCmdline,
  qemuOptValue,
  type QemuArgsInput,
} from '../../src/main/vm/qemu/args.js';

const base: QemuArgsInput = {
  kernel: '/img/vmlinux',
  initrd: '/img/initrd.img',
  overlay: '/sess/disk.qcow2',
  shares: [
    { hostPath: '/home/p/work', name: 'work', readOnly: false },
    { hostPath: '/home/p/ref', name: 'ref', readOnly: true },
  ],
  cpus: 2,
  memoryMb: 1024,
  accel: 'tcg',
  consoleLog: '/run/vm/console.log',
  agentSocket: '/run/vm/agent.sock',
  qmpSocket: '/run/vm/qmp.sock',
};

/** Values following each occurrence of `flag`. */
function values(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
}

describe('buildQemuArgs', () => {
  it('boots microvm directly from the kernel, with no default devices', () => {
    const args = buildQemuArgs(base);
    expect(values(args, '-M')[0]).toMatch(/^microvm\b/);
    expect(args).toContain('-nodefaults');
    expect(args).toContain('-no-user-config');
    expect(args).toContain('-no-reboot');
    expect(values(args, '-display')).toEqual(['none']);
    expect(values(args, '-kernel')).toEqual(['/img/vmlinux']);
    expect(values(args, '-initrd')).toEqual(['/img/initrd.img']);
    expect(values(args, '-m')).toEqual(['1024']);
    expect(values(args, '-smp')).toEqual(['2']);
    expect(values(args, '-chardev')).toContain('file,id=con,path=/run/vm/console.log');
    expect(values(args, '-serial')).toEqual(['chardev:con']);
  });

  it('has no network device of any kind', () => {
    const args = buildQemuArgs(base);
    expect(values(args, '-nic')).toEqual(['none']);
    expect(args).not.toContain('-netdev');
    expect(args).not.toContain('-net');
    expect(values(args, '-device').some((d) => /net|e1000|rtl8139/.test(d))).toBe(false);
  });

  it('puts the session overlay on virtio-blk as qcow2', () => {
    const args = buildQemuArgs(base);
    expect(values(args, '-drive')).toEqual([
      'file=/sess/disk.qcow2,if=none,id=root,format=qcow2,discard=unmap',
    ]);
    expect(values(args, '-device')).toContain('virtio-blk-device,drive=root');
  });

  it('enforces read-only shares in QEMU and uses mapped-xattr for all shares', () => {
    const args = buildQemuArgs(base);
    const fsdevs = values(args, '-fsdev');
    expect(fsdevs).toEqual([
      'local,id=fs0,path=/home/p/work,security_model=mapped-xattr',
      'local,id=fs1,path=/home/p/ref,security_model=mapped-xattr,readonly=on',
    ]);
    expect(values(args, '-device')).toEqual(
      expect.arrayContaining([
        'virtio-9p-device,fsdev=fs0,mount_tag=p0',
        'virtio-9p-device,fsdev=fs1,mount_tag=p1',
      ]),
    );
    expect(args.join(' ')).not.toContain('passthrough');
  });

  it('exports a review share read-only and marks it rv on the kernel command line', () => {
    const args = buildQemuArgs({
      ...base,
      shares: [
        { hostPath: '/home/p/work', name: 'work', readOnly: false, review: true },
        { hostPath: '/home/p/ref', name: 'ref', readOnly: true, review: true },
        { hostPath: '/home/p/out', name: 'out', readOnly: false, review: false },
      ],
    });
    expect(values(args, '-fsdev')).toEqual([
      'local,id=fs0,path=/home/p/work,security_model=mapped-xattr,readonly=on',
      'local,id=fs1,path=/home/p/ref,security_model=mapped-xattr,readonly=on',
      'local,id=fs2,path=/home/p/out,security_model=mapped-xattr',
    ]);
    expect(values(args, '-append')[0]).toContain('paddock.shares=p0:work:rv,p1:ref:ro,p2:out:rw');
  });

  it('exports a share without an explicit readOnly: false read-only', () => {
    const shares = [{ hostPath: '/x', name: 'x' } as never];
    expect(values(buildQemuArgs({ ...base, shares }), '-fsdev')[0]).toContain('readonly=on');
    expect(kernelCmdline({ shares })).toContain('paddock.shares=p0:x:ro');
  });

  it('escapes commas so a path cannot add QEMU options', () => {
    const args = buildQemuArgs({
      ...base,
      shares: [
        { hostPath: '/tmp/x,readonly=off,security_model=passthrough', name: 'x', readOnly: true },
      ],
    });
    expect(values(args, '-fsdev')).toEqual([
      'local,id=fs0,path=/tmp/x,,readonly=off,,security_model=passthrough,security_model=mapped-xattr,readonly=on',
    ]);
    expect(qemuOptValue('a,b')).toBe('a,,b');
    expect(() => qemuOptValue('a\nb')).toThrow();
  });

  it('describes shares and the agent port on the kernel command line', () => {
    const append = values(buildQemuArgs(base), '-append')[0]!;
    expect(append).toContain('console=ttyS0');
    expect(append).toContain('panic=-1');
    expect(append).toContain('tsc_early_khz=2000000');
    expect(append).toContain('tsc=reliable');
    expect(values(buildQemuArgs({ ...base, tscKhz: 2596140 }), '-append')[0]).toContain(
      'tsc_early_khz=2596140',
    );
    expect(append).toContain('paddock.shares=p0:work:rw,p1:ref:ro');
    expect(append).toContain(`paddock.port=${AGENT_PORT_NAME}`);
    expect(kernelCmdline({ shares: [] })).not.toContain('paddock.shares');
  });

  it('wires the agent port and QMP to unix sockets', () => {
    const args = buildQemuArgs(base);
    const chardevs = values(args, '-chardev');
    expect(chardevs).toContain('socket,id=agent,path=/run/vm/agent.sock,server=on,wait=off');
    expect(chardevs).toContain('socket,id=qmp,path=/run/vm/qmp.sock,server=on,wait=off');
    expect(values(args, '-mon')).toEqual(['chardev=qmp,mode=control']);
    expect(values(args, '-device')).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^virtio-serial-device/),
        `virtserialport,bus=vser0.0,chardev=agent,name=${AGENT_PORT_NAME}`,
      ]),
    );
  });

  it('selects the accelerator and CPU model', () => {
    const tcg = buildQemuArgs(base);
    expect(values(tcg, '-accel')).toEqual(['tcg,tb-size=256']);
    expect(values(tcg, '-cpu')).toEqual(['max']);
    const kvm = buildQemuArgs({ ...base, accel: 'kvm' });
    expect(values(kvm, '-accel')).toEqual(['kvm']);
    expect(values(kvm, '-cpu')).toEqual(['host']);
  });

  it('the KVM probe boots the initramfs only', () => {
    const args = buildQemuArgs({
      ...base,
      overlay: undefined,
      agentSocket: undefined,
      probe: true,
      accel: 'kvm',
    });
    expect(values(args, '-append')[0]).toContain('paddock.probe=1');
    expect(args).not.toContain('-drive');
    expect(args).not.toContain('-fsdev');
  });

  it('is pure', () => {
    expect(buildQemuArgs(base)).toEqual(buildQemuArgs(base));
  });

  it('refuses bad share names, duplicates and bad sizes', () => {
    for (const name of ['', '.', '..', 'a/b', 'a b', 'x:y', 'a,b', '-x'])
      expect(isValidShareName(name)).toBe(false);
    expect(isValidShareName('my-folder_2.0')).toBe(true);
    expect(() =>
      buildQemuArgs({ ...base, shares: [{ hostPath: '/x', name: 'a:b', readOnly: false }] }),
    ).toThrow();
    expect(() =>
      buildQemuArgs({
        ...base,
        shares: [
          { hostPath: '/x', name: 'a', readOnly: false },
          { hostPath: '/y', name: 'a', readOnly: true },
        ],
      }),
    ).toThrow();
    expect(() => buildQemuArgs({ ...base, cpus: 0 })).toThrow();
    expect(() => buildQemuArgs({ ...base, memoryMb: 64 })).toThrow();
  });
});
