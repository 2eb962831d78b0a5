import readline from 'node:readline/promises';

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
