import readline from 'node:readline/promises';
import { PaddockError } from '../../shared/result.js';

/** How a CLI command talks to the person on the terminal (injectable for tests). */
export interface CliIo {
  /** Whether there is a terminal to ask on. */
  tty: boolean;
  /** Asks one question on the terminal; returns the answer trimmed and lowercased. */
  ask(question: string): Promise<string>;
}

/** This process's terminal: stdin for answers, stderr for questions (stdout stays the output). */
export function terminalIo(): CliIo {
  return {
    tty: Boolean(process.stdin.isTTY && process.stderr.isTTY),
    async ask(question) {
      const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
      try {
        return (await rl.question(question)).trim().toLowerCase();
      } finally {
        rl.close();
      }
    },
  };
}

/**
 * The CLI's model calls use ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL); without it a command
 * that talks to the model stops before doing anything, saying what to export and when.
 */
export function requireApiKeyEnv(then = 'and run again'): void {
  if (!process.env.ANTHROPIC_API_KEY)
    throw new PaddockError(
      'AUTH',
      `ANTHROPIC_API_KEY is not set: export your Anthropic API key (and ANTHROPIC_BASE_URL if you use a gateway) ${then}.`,
    );
}
