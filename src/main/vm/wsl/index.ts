/** The WSL backend (Windows): one WSL2 distro per session; weaker isolation, see commands.ts. */
export { WslBackend } from './backend.js';
export type { WslBackendOptions } from './backend.js';
export {
  distroName,
  drvfsMount,
  execArgv,
  importArgv,
  launchArgv,
  launchScript,
  setupScript,
  wslConf,
} from './commands.js';
export { RELAY_SOURCE } from './relay.js';
