// Runs the mock Messages API as its own process for e2e tests that spawn `paddock run` with
// ANTHROPIC_BASE_URL pointing here:
//   node --import tsx test/support/messages-api/cli.ts --script FILE.json [--port N]
//        [--api-key K] [--record FILE.jsonl]
// Prints `MESSAGES_API_URL=http://127.0.0.1:PORT` on one line once it listens, and stops on
// SIGTERM / SIGINT. With --record, each POST /v1/messages is appended to the
// file as one JSON line ({n, headers, body}), so the test can read what was sent.
import { appendFileSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseScript } from './script.js';
import { startMessagesApi } from './server.js';

/** Parses the CLI arguments, starts the server, and prints its URL line. */
async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      script: { type: 'string' },
      port: { type: 'string' },
      'api-key': { type: 'string' },
      record: { type: 'string' },
    },
    strict: true,
  });
  if (!values.script) throw new Error('usage: cli.ts --script FILE.json [--port N] [--api-key K]');
  const steps = parseScript(readFileSync(values.script, 'utf8'));
  const record = values.record;
  const api = await startMessagesApi({
    onProblem: (p) => process.stderr.write(`messages-api: ${p}\n`),
    ...(values['api-key'] !== undefined ? { apiKey: values['api-key'] } : {}),
    ...(values.port !== undefined ? { port: Number(values.port) } : {}),
    ...(record
      ? {
          onRequest: (r) =>
            appendFileSync(
              record,
              JSON.stringify({ n: r.n, headers: r.headers, body: r.body }) + '\n',
            ),
        }
      : {}),
  });
  api.enqueue(...steps);
  process.stdout.write(`MESSAGES_API_URL=${api.url}\n`);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void api.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`messages-api: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
