/** The QEMU backend (Linux): microvm + PVH direct boot, KVM when a probe boot proves it, else TCG. */
export { QemuBackend, VmBootError, checkpointsDir, isQemuWithSocket, pidAlive } from './backend.js';
export type { DetachedVm, QemuBackendOptions, QemuVm, VmTimings } from './backend.js';
export { WarmHandoff } from './warm-handoff.js';
export type { WarmHandoffOptions, WarmRecord } from './warm-handoff.js';
export { probeAccel, qemuVersion, resetAccelProbeMemo } from './accel.js';
export type { AccelProbe, ProbeOptions } from './accel.js';
export {
  AGENT_PORT_NAME,
  BASE_CMDLINE,
  buildQemuArgs,
  isValidShareName,
  kernelCmdline,
  qemuOptValue,
  shareTag,
} from './args.js';
export type { QemuArgsInput } from './args.js';
export { QmpClient, QmpError } from './qmp.js';
