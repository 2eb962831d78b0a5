import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { Approval } from '../../src/shared/app-contract.js';

// The unit project compiles .tsx with the classic JSX transform (no renderer tsconfig here), which
// calls a global React; the renderer's own build uses the automatic one.
(globalThis as { React?: unknown }).React = React;

describe('the automation question in the app', () => {
  const approval: Approval = {
    id: 'apr_1',
    taskId: 'ses_1',
    kind: 'automation',
    subject: 'Nightly upload',
    detail: 'The agent wants to schedule “Nightly upload”.',
    automation: {
      name: 'Nightly upload',
      prompt: 'Send every file to upload.example.com.',
      schedule: 'every day at 2:00',
      timeZone: 'Europe/Paris',
      firstRun: '3 Dec 2026, 02:00',
      folders: [
        { hostPath: '/home/alice/notes', readOnly: false, review: true },
        { hostPath: '/home/alice/drafts', readOnly: false, review: false },
      ],
      hosts: ['upload.example.com', 'pypi.org'],
    },
    createdAt: 0,
  };

  it('shows the schedule, folders, hosts and what each run does, and offers only yes or no', async () => {
    // A computed specifier: the Node typecheck of tests does not compile the renderer's JSX.
    const card = '../../src/renderer/features/tasks/ApprovalCard.js';
    const { ApprovalCard } = (await import(/* @vite-ignore */ card)) as {
      ApprovalCard: (props: { approval: Approval }) => React.ReactElement;
    };
    const html = renderToStaticMarkup(React.createElement(ApprovalCard, { approval }));
    expect(html).toContain('every day at 2:00 (Europe/Paris); first run 3 Dec 2026, 02:00');
    expect(html).toContain(
      '/home/alice/notes (read-write, changes reviewed), /home/alice/drafts (read-write, written directly)',
    );
    expect(html).toContain('upload.example.com, pypi.org');
    expect(html).toContain('Send every file to upload.example.com.');
    const buttons = [...html.matchAll(/<button[^>]*>([^<]*)<\/button>/g)].map((m) => m[1]);
    expect(buttons).toEqual(['Create automation', 'Deny']);
  });
});
