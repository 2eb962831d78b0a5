import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/shared/agent-events.js';
import {
  marksByItem,
  reduceWithArtifacts,
  type TaskWithArtifacts,
} from '../../src/renderer/features/artifacts/artifact-model.js';
import { emptyView } from '../../src/renderer/features/tasks/task-model.js';

const empty = (): TaskWithArtifacts => ({ view: emptyView(), marks: [], newest: null });
const art = (id: string, version: number, title = id): AgentEvent => ({
  type: 'artifact',
  id,
  title,
  kind: 'markdown',
  version,
});
const start = (id: string, name = 'create_artifact'): AgentEvent => ({
  type: 'tool-start',
  id,
  name,
  input: {},
});
const result = (id: string): AgentEvent => ({
  type: 'tool-result',
  id,
  name: 'create_artifact',
  content: 'Saved',
  isError: false,
  durationMs: 1,
});

describe('artifact cards in the conversation', () => {
  it('places each card after the create_artifact call that made it, even when several run in one turn', () => {
    const m = reduceWithArtifacts(empty(), [
      { type: 'user', text: 'make two' },
      start('t1'),
      start('t2', 'bash'),
      start('t3'),
      art('art_a', 1),
      result('t1'),
      result('t2'),
      art('art_b', 1),
      result('t3'),
    ]);
    const keyOf = (toolId: string) =>
      m.view.items.find((i) => i.kind === 'tool' && i.id === toolId)!.key;
    // Both t1 and t3 wait when art_a arrives; tools run in order, so t1 is the one running.
    const by = marksByItem(m.marks);
    expect(by.get(keyOf('t1'))!.map((x) => x.id)).toEqual(['art_a']);
    expect(by.get(keyOf('t3'))!.map((x) => x.id)).toEqual(['art_b']);
    expect(m.newest).toMatchObject({ id: 'art_b', version: 1 });
  });

  it('follows the newest version and ignores a repeated event', () => {
    let m = reduceWithArtifacts(empty(), [start('t1'), art('art_a', 1), result('t1')]);
    const first = m.marks;
    m = reduceWithArtifacts(m, [art('art_a', 1)]);
    expect(m.marks).toBe(first);
    m = reduceWithArtifacts(m, [start('t2'), art('art_a', 2, 'renamed'), result('t2')]);
    expect(m.marks.map((x) => x.key)).toEqual(['art_a@1', 'art_a@2']);
    expect(m.newest).toMatchObject({ id: 'art_a', version: 2, title: 'renamed' });
    expect(first).toHaveLength(1); // the earlier state is never changed in place
  });

  it('puts a card with nothing before it at the top, and leaves other events to the task model', () => {
    const m = reduceWithArtifacts(empty(), [art('art_x', 1), { type: 'notice', message: 'hi' }]);
    expect(m.marks[0]!.afterKey).toBeNull();
    expect(m.view.items.map((i) => i.kind)).toEqual(['notice']);
  });
});
