import { useCallback, useEffect, useState } from 'react';
import type { ChangesetSummary } from '../../../shared/changes-contract.js';
import { call, useEvent } from '../../api/hooks.js';
import { fileCount, mergeSummary, waitingCount } from './change-model.js';

/** A task's changesets as they change, and a way to read again what its session staged. */
export interface TaskChangesets {
  changesets: ChangesetSummary[];
  /** How many files of each changeset wait for the person (pending or in conflict), by id. */
  waiting: Map<string, number>;
  /** The last failure of a list or a refresh, as the core said it. */
  error: string | null;
  refreshing: boolean;
  /** Asks the core to read again what the running session has staged (`changes:refresh`). */
  refresh(): void;
}

/**
 * The changesets of one task: listed once, then kept current from `changes:changed`, so a
 * changeset staged when the task ends, or applied from another window, shows up without a reload.
 */
export function useTaskChangesets(taskId: string): TaskChangesets {
  const [state, setState] = useState<{ taskId: string; list: ChangesetSummary[] }>({
    taskId,
    list: [],
  });
  const [error, setError] = useState<string | null>(null);
  const [refreshing, setRefreshing] = useState(false);

  useEffect(() => {
    let live = true;
    call('changes:list', { taskId }).then(
      (r) => {
        if (!live) return;
        setState({ taskId, list: r.changesets });
        setError(null);
      },
      (e: Error) => live && setError(e.message),
    );
    return () => {
      live = false;
    };
  }, [taskId]);

  useEvent('changes:changed', (s) => {
    if (s.taskId !== taskId) return;
    setState((st) => ({
      taskId,
      list: mergeSummary(st.taskId === taskId ? st.list : [], s),
    }));
  });

  const refresh = useCallback(() => {
    setRefreshing(true);
    setError(null);
    call('changes:refresh', { taskId }).then(
      (r) => {
        setState((st) => ({
          taskId,
          list: r.changesets.reduce(mergeSummary, st.taskId === taskId ? st.list : []),
        }));
        setRefreshing(false);
      },
      (e: Error) => {
        setError(e.message);
        setRefreshing(false);
      },
    );
  }, [taskId]);

  const changesets = state.taskId === taskId ? state.list : [];
  const waiting = useWaiting(changesets);
  return {
    changesets,
    waiting,
    error,
    refreshing,
    refresh,
  };
}

/**
 * How many files of each changeset wait for the person. A pending changeset's files all do; a
 * partial one is read again whenever it changes to count them, since its summary cannot say.
 * Until then the last count is shown.
 */
function useWaiting(list: ChangesetSummary[]): Map<string, number> {
  const [counted, setCounted] = useState<Map<string, number>>(new Map());
  // Every partial changeset and its version: what the counts depend on.
  const key = list
    .filter((c) => c.status === 'partial')
    .map((c) => `${c.id}@${c.updatedAt}`)
    .join(' ');
  useEffect(() => {
    if (!key) return;
    let live = true;
    for (const item of key.split(' ')) {
      const id = item.slice(0, item.lastIndexOf('@'));
      call('changes:get', { id }).then(
        (cs) => live && setCounted((m) => new Map(m).set(id, waitingCount(cs))),
        () => undefined,
      );
    }
    return () => {
      live = false;
    };
  }, [key]);
  const out = new Map<string, number>();
  for (const c of list) {
    if (c.status === 'pending') out.set(c.id, fileCount(c));
    else if (c.status === 'partial') out.set(c.id, counted.get(c.id) ?? 0);
  }
  return out;
}
