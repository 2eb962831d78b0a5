import type { Command } from 'commander';
import { PaddockError } from '../../shared/result.js';
import type { SecretInfo } from '../../shared/secrets-contract.js';
import { createCore, type Core } from '../core/core.js';
import { dataDir } from '../platform/app-paths.js';
import { askCore } from './ask-core.js';

/** Builds a one-shot core (no scheduler) for `fn`, and closes it whatever happens. */
async function withCore<T>(fn: (core: Core) => Promise<T> | T): Promise<T> {
  const core = createCore({ dataDir: dataDir(), host: 'cli', runScheduler: false });
  try {
    return await fn(core);
  } finally {
    await core.close();
  }
}

/** All of stdin, as text. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Asks for the value on the terminal without echoing it (raw mode: each key is read here, and
 * nothing is written back but the question and a newline).
 */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  // SECURITY: echo off before the question shows, so nothing typed after it is echoed.
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  process.stderr.write(question);
  return new Promise((resolve, reject) => {
    let value = '';
    let escape = false;
    const finish = (e?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (e) reject(e);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (escape) {
          // The rest of an escape sequence (arrow keys and the like) ends with a letter or ~.
          if (/[A-Za-z~]/.test(ch)) escape = false;
          continue;
        }
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003' || (ch === '\u0004' && value === ''))
          return finish(new PaddockError('CANCELLED', 'Cancelled: no secret was added.'));
        if (ch === '\u0004') return finish();
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch === '\u0015') value = '';
        else if (ch === '\u001b') escape = true;
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** The value: piped in (one trailing newline dropped), or typed at a prompt that does not echo. */
async function readValue(name: string): Promise<string> {
  if (!process.stdin.isTTY) return (await readStdin()).replace(/\r?\n$/, '');
  return promptHidden(`Value of ${name} (not shown): `);
}

const collect = (v: string, all: string[]) => [...all, v];

function describe(s: SecretInfo): string {
  const flags = [s.inBody ? 'also in bodies' : '', s.pin ? '' : 'not pinned']
    .filter(Boolean)
    .join(', ');
  return `${s.name}  $${s.envName}  ${s.hosts.join(' ')}${flags ? `  (${flags})` : ''}  added in ${
    s.source === 'cli' ? 'the CLI' : 'Settings'
  }`;
}

/** `paddock secrets add|list|remove`: secrets the VM never sees, swapped in by the egress proxy. */
export function registerSecrets(program: Command): void {
  const cmd = program
    .command('secrets')
    .description(
      'Secrets the VM never sees: tasks get a placeholder, swapped for the value only on requests to its hosts.',
    );

  cmd
    .command('add')
    .description(
      'Add a secret. The value is read from stdin when piped (printf %s "$TOKEN" | paddock secrets add …), else asked for without echo; never from an argument.',
    )
    .argument('<name>', 'its name, e.g. github (lower-case letters, digits, - and _)')
    .argument('[value...]', 'refused: a value is never taken from the command line')
    .option(
      '--host <host>',
      'a host it may be sent to (repeatable; *.example.com, host:port)',
      collect,
      [],
    )
    .option(
      '--env <VAR>',
      'the environment variable tasks see it in (default: the name upper-cased)',
    )
    .option('--body', 'also swap it in request bodies (headers and URLs always)')
    .option('--no-pin', 'do not pin its hosts to your secrets (credentials from elsewhere allowed)')
    .option('--replace', 'replace a secret of the same name')
    .action(
      async (
        name: string,
        extra: string[],
        o: { host: string[]; env?: string; body?: boolean; pin: boolean; replace?: boolean },
      ) => {
        // SECURITY: a value in argv stays in the shell's history and shows in `ps`; refuse it
        // (without repeating it).
        if (extra.length > 0)
          throw new PaddockError(
            'VALUE_IN_ARGUMENT',
            'A secret’s value is never taken from the command line (it would stay in your shell history and show in the process list): pipe it in, e.g. printf %s "$TOKEN" | paddock secrets add NAME --host HOST, or type it at the prompt.',
          );
        if (o.host.length === 0)
          throw new PaddockError(
            'BAD_OPTION',
            'Say which hosts it may be sent to: --host api.example.com (repeatable).',
          );
        const s = await withCore(async (core) => {
          // Said before the value is asked for, not after it was typed.
          const store = core.secrets.status();
          if (!store.usable)
            throw new PaddockError(
              'SECRETS_LOCKED',
              store.fix ? `${store.detail} ${store.fix}` : store.detail,
            );
          const value = await readValue(name);
          return core.secrets.add(
            {
              name,
              hosts: o.host,
              value,
              ...(o.env !== undefined ? { envName: o.env } : {}),
              ...(o.body ? { inBody: true } : {}),
              pin: o.pin,
              ...(o.replace ? { replace: true } : {}),
            },
            'cli',
          );
        });
        process.stdout.write(
          `Added “${s.name}”: tasks that use it see a placeholder in $${s.envName}, swapped for the value only on requests to ${s.hosts.join(', ')}.\n`,
        );
      },
    );

  cmd
    .command('list')
    .description('List secrets (never their values) and how they are kept on this computer.')
    .option('--json', 'print JSON: { secrets, store }')
    .action(async (o: { json?: boolean }) => {
      const r = await askCore('secrets:list', {});
      if (o.json) {
        process.stdout.write(JSON.stringify(r) + '\n');
        return;
      }
      if (r.secrets.length === 0)
        process.stdout.write(
          'No secrets yet. Add one with: paddock secrets add NAME --host HOST (the value is read from stdin or a prompt).\n',
        );
      for (const s of r.secrets) process.stdout.write(describe(s) + '\n');
      process.stdout.write(`${r.store.detail}\n`);
    });

  cmd
    .command('remove')
    .description('Remove a secret.')
    .argument('<name>', 'the secret')
    .action(async (name: string) => {
      const { removed } = await askCore('secrets:remove', { name });
      if (!removed)
        throw new PaddockError('SECRET_NOT_FOUND', `There is no secret named “${name}”.`);
      process.stdout.write(`Removed “${name}”.\n`);
    });
}
