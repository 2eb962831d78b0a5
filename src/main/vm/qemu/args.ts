import { hostWritable, shareMode, type ShareSpec } from '../backend.js';

/** Everything the QEMU command line depends on; paths are absolute. */
export interface QemuArgsInput {
  kernel: string;
  initrd: string;
  /** The session's qcow2 layer over the read-only base (absent only for the KVM probe). */
  overlay?: string;
  shares: ShareSpec[];
  cpus: number;
  memoryMb: number;
  accel: 'kvm' | 'tcg';
  /** Where QEMU writes the serial console itself (the KVM probe); unused with consoleSocket. */
  consoleLog: string;
  /**
   * Unix socket QEMU serves the serial console on (QEMU listens); the host reads it into a
   * capped log (console-log.ts). SECURITY: a file chardev would let the guest grow a host file
   * without limit; with a socket, a host that reads slower stalls the guest's serial port instead.
   */
  consoleSocket?: string;
  /** Unix socket of the guest agent's virtio-serial port (QEMU listens). */
  agentSocket?: string;
  /** Unix socket of the QMP monitor (QEMU listens). */
  qmpSocket?: string;
  /** Host clock for the guest when it has no usable RTC (seconds since the epoch). */
  hostTimeSec?: number;
  /**
   * The host's TSC frequency in kHz. Under TCG the guest cannot calibrate its TSC and marks it
   * unstable, and its fallback clock ran 1.25x fast here (a 10 s timeout ended after 7.9 s), so we
   * tell it the frequency and that the TSC is reliable. Default 2000000 (VM-NOTES' hang fix).
   */
  tscKhz?: number;
  /** KVM probe: boot the initramfs only; /init prints PADDOCK-PROBE-OK and powers off. */
  probe?: boolean;
}

/** Name of the guest agent's virtio-serial port (the guest sees /dev/virtio-ports/<name>). */
export const AGENT_PORT_NAME = 'paddock.0';

/** Base kernel command line (microvm, PVH direct boot). */
export const BASE_CMDLINE = [
  'console=ttyS0',
  'quiet',
  // panic=-1 reboots at once on panic; with -no-reboot QEMU then exits instead of hanging.
  'panic=-1',
  // The crypto self-tests cost ~0.3-1 s of boot under TCG (crypto_algapi_init); the guest is a
  // disposable sandbox, not a FIPS system. Measured: boot median 4.2 s -> 3.0 s.
  'cryptomgr.notests',
];

const SHARE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Share names become /mnt/<name> in the guest and travel on the kernel command line. */
export function isValidShareName(name: string): boolean {
  return SHARE_NAME.test(name) && name !== '.' && name !== '..';
}

/** The 9p mount tag of the i-th share (short and fixed, whatever the share's name). */
export function shareTag(index: number): string {
  return `p${index}`;
}

/**
 * Escapes a value inside a QEMU option list (`key=value,key=value`): a comma is written twice.
 * SECURITY: without this, a host path containing ",readonly=off" or ",security_model=passthrough"
 * would add options to -fsdev.
 */
export function qemuOptValue(value: string): string {
  if (value.includes('\n') || value.includes('\0'))
    throw new Error('Path contains a newline or NUL');
  return value.replaceAll(',', ',,');
}

/** The kernel command line: base options plus what /init reads (paddock.*). */
export function kernelCmdline(
  input: Pick<QemuArgsInput, 'shares' | 'hostTimeSec' | 'probe' | 'tscKhz'>,
): string {
  const parts = [...BASE_CMDLINE];
  // Workaround: microvm under TCG sometimes hangs calibrating the TSC (VM-NOTES); giving the
  // real frequency also keeps guest time (and so command timeouts) in step with the host.
  parts.push(`tsc_early_khz=${Math.round(input.tscKhz ?? 2_000_000)}`, 'tsc=reliable');
  if (input.probe) parts.push('paddock.probe=1');
  if (input.shares.length > 0) {
    parts.push(
      'paddock.shares=' +
        input.shares.map((s, i) => `${shareTag(i)}:${s.name}:${shareMode(s)}`).join(','),
    );
  }
  parts.push(`paddock.port=${AGENT_PORT_NAME}`);
  if (input.hostTimeSec !== undefined) parts.push(`paddock.time=${Math.floor(input.hostTimeSec)}`);
  return parts.join(' ');
}

/**
 * The QEMU argv (without the binary) for one VM: `-M microvm` with PVH direct boot, no default
 * devices, no network device at all, the console to a socket (or a file), the session disk on virtio-blk,
 * one 9p device per share (read-only enforced by QEMU, review shares included), the agent's virtio-serial port and QMP
 * on unix sockets. Pure: the same input gives the same argv.
 */
export function buildQemuArgs(input: QemuArgsInput): string[] {
  if (!Number.isInteger(input.cpus) || input.cpus < 1)
    throw new Error(`Bad cpu count ${input.cpus}`);
  if (!Number.isInteger(input.memoryMb) || input.memoryMb < 128) {
    throw new Error(`Bad memory size ${input.memoryMb} MiB (at least 128)`);
  }
  const seen = new Set<string>();
  for (const s of input.shares) {
    if (!isValidShareName(s.name)) throw new Error(`Bad share name "${s.name}"`);
    if (seen.has(s.name)) throw new Error(`Two shares are named "${s.name}"`);
    seen.add(s.name);
  }

  const args: string[] = [
    '-M',
    // No option ROMs (nothing to run them for); the RTC gives the guest the time of day.
    // Known gap: QEMU 10 (Debian 13) boots no guest with these (with x-option-roms=off nothing is
    // printed; without it the kernel reaches /init but userspace I/O never arrives): see notes.
    'microvm,x-option-roms=off,rtc=on',
    ...(input.accel === 'kvm'
      ? ['-accel', 'kvm', '-cpu', 'host']
      : // TCG's translation cache defaults to 1 GiB on top of guest RAM; 256 MiB keeps QEMU's
        // host memory near -m without a measurable slowdown here.
        ['-accel', 'tcg,tb-size=256', '-cpu', 'max']),
    '-m',
    String(input.memoryMb),
    '-smp',
    String(input.cpus),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    // SECURITY: the guest has no network device; its only way out is the agent channel.
    '-nic',
    'none',
    '-no-reboot',
    '-chardev',
    input.consoleSocket
      ? `socket,id=con,path=${qemuOptValue(input.consoleSocket)},server=on,wait=off`
      : `file,id=con,path=${qemuOptValue(input.consoleLog)}`,
    '-serial',
    'chardev:con',
    '-kernel',
    input.kernel,
    '-initrd',
    input.initrd,
    '-append',
    kernelCmdline(input),
    // Seeds the guest's entropy pool at once (python, node, TLS want randomness early).
    '-object',
    'rng-random,id=rng0,filename=/dev/urandom',
    '-device',
    'virtio-rng-device,rng=rng0',
  ];

  if (input.qmpSocket) {
    args.push(
      '-chardev',
      `socket,id=qmp,path=${qemuOptValue(input.qmpSocket)},server=on,wait=off`,
      '-mon',
      'chardev=qmp,mode=control',
    );
  }

  if (input.probe) return args;

  if (!input.overlay) throw new Error('A session disk (overlay) is required');
  args.push(
    '-drive',
    `file=${qemuOptValue(input.overlay)},if=none,id=root,format=qcow2,discard=unmap`,
    '-device',
    'virtio-blk-device,drive=root',
  );

  input.shares.forEach((s, i) => {
    const id = `fs${i}`;
    // SECURITY: mapped-xattr stores guest-made symlinks, owners and modes as xattrs on plain
    // files, so the guest cannot create a real host symlink (passthrough would). readonly=on
    // makes QEMU refuse every write (EROFS) whatever the guest mounts; a review share is
    // read-only here too (its writes stay in the guest's overlay).
    const fsdev = [
      `local`,
      `id=${id}`,
      `path=${qemuOptValue(s.hostPath)}`,
      'security_model=mapped-xattr',
    ];
    if (!hostWritable(s)) fsdev.push('readonly=on');
    args.push(
      '-fsdev',
      fsdev.join(','),
      '-device',
      `virtio-9p-device,fsdev=${id},mount_tag=${shareTag(i)}`,
    );
  });

  if (!input.agentSocket) throw new Error('The agent socket path is required');
  args.push(
    '-device',
    'virtio-serial-device,id=vser0,max_ports=4',
    '-chardev',
    `socket,id=agent,path=${qemuOptValue(input.agentSocket)},server=on,wait=off`,
    '-device',
    `virtserialport,bus=vser0.0,chardev=agent,name=${AGENT_PORT_NAME}`,
  );
  return args;
}
