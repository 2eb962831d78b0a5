/**
 * Applies a changeset and stops dead at the Nth file's step (`journal`: its journal written, the
 * folder not yet; `written`: renamed into place, its row not yet updated), waiting there to be
 * killed with SIGKILL by changes-apply.test.ts. Run with `node --import tsx`.
 */
import fs from 'node:fs';
import { ChangeService } from '../../src/main/core/changes/service.js';
import { EventBus } from '../../src/main/core/events.js';
import { Store } from '../../src/main/store/store.js';

const [dataDir, id, stopAt, nth, marker] = process.argv.slice(2) as [
  string,
  string,
  'journal' | 'written',
  string,
  string,
];
let count = 0;
const store = Store.open(dataDir);
const service = new ChangeService({
  store,
  events: new EventBus(),
  dataDir,
  pruneOnStart: false,
  step: (p, at) => {
    if (at !== stopAt || ++count !== Number(nth)) return;
    fs.writeFileSync(marker, p);
    // Blocks the whole process until it is killed.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
  },
});
await service.apply(id);
fs.writeFileSync(marker, 'finished');
