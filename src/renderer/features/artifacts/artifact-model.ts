import type { AgentEvent } from '../../../shared/agent-events.js';
import { reduceTaskEvent, type TaskItem, type TaskViewModel } from '../tasks/task-model.js';

/** One `artifact` event placed in the conversation: shown as a card after the item `afterKey`. */
export interface ArtifactMark {
  key: string;
  afterKey: string | null;
  id: string;
  title: string;
  kind: string;
  version: number;
}

/** The conversation with the artifact cards placed in it. */
export interface TaskWithArtifacts {
  view: TaskViewModel;
  marks: ArtifactMark[];
  /** The newest artifact event seen, so the panel can follow it. */
  newest: ArtifactMark | null;
}

/**
 * Where an artifact event goes: after the `create_artifact` call that is running. The event comes
 * while its tool runs (live and in stored history alike), and the tools of one turn run in order,
 * so it is the first of this turn's calls still waiting for its result. Else after the last item.
 */
function anchorOf(items: TaskItem[]): string | null {
  let running: string | null = null;
  for (let i = items.length - 1; i >= 0; i--) {
    const it = items[i]!;
    if (it.kind === 'user' || it.kind === 'assistant') break;
    if (it.kind === 'tool' && it.name === 'create_artifact' && !it.result && !it.stopped)
      running = it.key;
  }
  return running ?? items.at(-1)?.key ?? null;
}

/**
 * Folds events into the conversation (task-model's reducer) and places each `artifact` event as
 * a card right after the tool call that made it.
 */
export function reduceWithArtifacts(
  prev: TaskWithArtifacts,
  events: AgentEvent[],
): TaskWithArtifacts {
  let { view, marks, newest } = prev;
  for (const e of events) {
    if (e.type !== 'artifact') {
      view = reduceTaskEvent(view, e);
      continue;
    }
    const mark: ArtifactMark = {
      key: `${e.id}@${e.version}`,
      afterKey: anchorOf(view.items),
      id: e.id,
      title: e.title,
      kind: e.kind,
      version: e.version,
    };
    if (marks.some((m) => m.key === mark.key)) continue;
    marks = marks === prev.marks ? [...marks, mark] : (marks.push(mark), marks);
    newest = mark;
  }
  return { view, marks, newest };
}

/** The cards to draw after each conversation item, by the item's key. */
export function marksByItem(marks: ArtifactMark[]): Map<string | null, ArtifactMark[]> {
  const by = new Map<string | null, ArtifactMark[]>();
  for (const m of marks) {
    const list = by.get(m.afterKey);
    if (list) list.push(m);
    else by.set(m.afterKey, [m]);
  }
  return by;
}

/** The file extension of an artifact's source, for "Save". */
export function sourceExtension(kind: string): string {
  switch (kind) {
    case 'html':
      return 'html';
    case 'svg':
      return 'svg';
    case 'markdown':
      return 'md';
    case 'mermaid':
      return 'mmd';
    case 'react':
      return 'jsx';
    default:
      return 'txt';
  }
}

/** A person's words for a kind. */
export function kindLabel(kind: string): string {
  switch (kind) {
    case 'html':
      return 'HTML';
    case 'svg':
      return 'SVG';
    case 'markdown':
      return 'Markdown';
    case 'mermaid':
      return 'Mermaid';
    case 'react':
      return 'React';
    default:
      return 'Code';
  }
}
