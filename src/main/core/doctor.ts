import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { DoctorCheck } from '../../shared/api.js';
import { LATEST_SCHEMA_VERSION } from '../store/migrations/index.js';
import { inspectDatabase } from '../store/open.js';
import path from 'node:path';
import { DB_FILE } from '../store/open.js';
import { localSecretsStatus, type VaultStatus } from './secrets/vault.js';

/** What the doctor needs to know about the machine; the VM layer fills in what it can probe. */
export interface DoctorInputs {
  dataDir: string;
  env: NodeJS.ProcessEnv;
  /** Reports whether KVM really boots a guest (probed by a real boot), or why it could not tell. */
  probeAccel?: () => Promise<{ accel: 'kvm' | 'tcg' | 'unknown'; detail: string; fix?: string }>;
  /** Reports which VM backend runs the sandbox on this machine, and why. */
  backend?: () => { status: DoctorCheck['status']; detail: string; fix?: string };
  /** Reports the host programs the VM and the image recipe run that are missing, with packages. */
  hostTools?: () => { status: DoctorCheck['status']; detail: string; fix?: string };
  /** Reports the guest image, if one is built. */
  image?: () => { status: DoctorCheck['status']; detail: string; fix?: string };
  /** The API key as the app resolved it (stored, then environment); without it, env only. */
  apiKey?: { configured: boolean; detail: string };
  /** How the core keeps secrets; without it, as the CLI would (keychain or key file). */
  secrets?: VaultStatus;
}

/**
 * The checks behind `paddock doctor` and the first-run screen: each says what it found and,
 * when something is missing, the command that fixes it.
 */
export async function runDoctor(inputs: DoctorInputs): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  checks.push({
    id: 'node',
    label: 'Node.js',
    status: major >= 20 ? 'ok' : 'fail',
    detail: `Node ${process.versions.node}`,
    ...(major >= 20 ? {} : { fix: 'Install Node.js 20 or later from your package manager.' }),
  });

  checks.push(dataDirCheck(inputs.dataDir));
  checks.push(schemaCheck(inputs.dataDir));

  const qemu = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
  const qemuOk = qemu.status === 0;
  checks.push({
    id: 'qemu',
    label: 'QEMU',
    status: qemuOk ? 'ok' : 'fail',
    detail: qemuOk
      ? (qemu.stdout.split('\n')[0] ?? 'installed')
      : 'qemu-system-x86_64 was not found.',
    ...(qemuOk
      ? {}
      : { fix: 'sudo apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils' }),
  });

  if (inputs.probeAccel && qemuOk) {
    const p = await inputs.probeAccel();
    checks.push({
      id: 'accel',
      label: 'Virtualisation',
      status: p.accel === 'kvm' ? 'ok' : 'warn',
      detail: p.detail,
      ...(p.fix ? { fix: p.fix } : {}),
    });
  } else {
    const kvm = fs.existsSync('/dev/kvm');
    checks.push({
      id: 'accel',
      label: 'Virtualisation',
      status: 'warn',
      detail: kvm
        ? '/dev/kvm exists, but whether KVM boots a guest is only known after a probe boot, which needs QEMU and the image.'
        : '/dev/kvm is missing, so the VM will run on QEMU TCG (slower).',
      fix: kvm
        ? 'paddock image build'
        : 'Enable virtualisation in the firmware and load the kvm module.',
    });
  }

  if (inputs.backend) {
    checks.push({ id: 'backend', label: 'VM backend', ...inputs.backend() });
  }
  if (inputs.hostTools) {
    checks.push({ id: 'host-tools', label: 'Host programs', ...inputs.hostTools() });
  }
  if (inputs.image) {
    checks.push({ id: 'image', label: 'Guest image', ...inputs.image() });
  }

  const hasKey = inputs.apiKey?.configured ?? Boolean(inputs.env.ANTHROPIC_API_KEY);
  checks.push({
    id: 'api-key',
    label: 'API key',
    status: hasKey ? 'ok' : 'warn',
    detail:
      inputs.apiKey?.detail ??
      (hasKey
        ? `ANTHROPIC_API_KEY is set${inputs.env.ANTHROPIC_BASE_URL ? ` (base URL ${inputs.env.ANTHROPIC_BASE_URL})` : ''}.`
        : 'No API key is set.'),
    ...(hasKey
      ? {}
      : { fix: 'export ANTHROPIC_API_KEY=... (or enter it in the app on first run)' }),
  });

  const secrets = inputs.secrets ?? localSecretsStatus(inputs.dataDir);
  checks.push({
    id: 'secrets',
    label: 'Secrets',
    status: secrets.usable ? 'ok' : 'warn',
    detail: secrets.detail,
    ...(secrets.fix ? { fix: secrets.fix } : {}),
  });
  return checks;
}

function dataDirCheck(dir: string): DoctorCheck {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
    return { id: 'data-dir', label: 'Data folder', status: 'ok', detail: dir };
  } catch (e) {
    return {
      id: 'data-dir',
      label: 'Data folder',
      status: 'fail',
      detail: `${dir} is not writable (${(e as Error).message}).`,
      fix: 'Set PADDOCK_HOME to a folder you can write to.',
    };
  }
}

function schemaCheck(dir: string): DoctorCheck {
  try {
    const { exists, version } = inspectDatabase(path.join(dir, DB_FILE));
    if (!exists) {
      return {
        id: 'schema',
        label: 'Database',
        status: 'ok',
        detail: `No database yet; it is created at first use (schema ${LATEST_SCHEMA_VERSION}).`,
      };
    }
    if (version > LATEST_SCHEMA_VERSION) {
      return {
        id: 'schema',
        label: 'Database',
        status: 'fail',
        detail: `Schema ${version} was written by a newer Paddock (this one knows ${LATEST_SCHEMA_VERSION}).`,
        fix: 'Update Paddock.',
      };
    }
    return {
      id: 'schema',
      label: 'Database',
      status: 'ok',
      detail: `Schema version ${version}${version < LATEST_SCHEMA_VERSION ? ` (migrates to ${LATEST_SCHEMA_VERSION} on next start)` : ''}.`,
    };
  } catch (e) {
    return {
      id: 'schema',
      label: 'Database',
      status: 'fail',
      detail: (e as Error).message,
      fix: 'Move paddock.db aside and start Paddock again.',
    };
  }
}
