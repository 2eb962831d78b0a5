import { agentSuite } from './agent.js';
import { artifactsSuite } from './artifacts.js';
import { automationsSuite } from './automations.js';
import { changesSuite } from './changes.js';
import { floodSuite } from './flood.js';
import { secretsSuite } from './secrets.js';
import { uiSuite } from './ui.js';
import { vmSuite } from './vm.js';

/** One benchmark suite: returns named figures (numbers in the unit its name says). */
export interface BenchSuite {
  name: string;
  run(log: (line: string) => void): Promise<Record<string, number | string>>;
}

/** Suites in the order they run; the agent, automations and UI issues add theirs. */
export const suites: BenchSuite[] = [
  vmSuite,
  floodSuite,
  agentSuite,
  automationsSuite,
  uiSuite,
  artifactsSuite,
  changesSuite,
  secretsSuite,
];
