import { Menu, type MenuItemConstructorOptions } from 'electron';

/** What the menu asks the rest of the shell to do. */
export interface MenuActions {
  newTask(): void;
  openFolder(): void;
  openSettings(): void;
  openLogs(): void;
}

/** The application menu: tasks and folders first, then the standard edit/view/window menus. */
export function installMenu(actions: MenuActions, isDev: boolean): void {
  const mac = process.platform === 'darwin';
  const template: MenuItemConstructorOptions[] = [
    ...(mac
      ? [
          {
            label: 'Paddock',
            submenu: [
              { role: 'about' },
              { type: 'separator' },
              { label: 'Settings…', accelerator: 'Cmd+,', click: () => actions.openSettings() },
              { type: 'separator' },
              { role: 'hide' },
              { role: 'hideOthers' },
              { role: 'unhide' },
              { type: 'separator' },
              { role: 'quit' },
            ],
          } satisfies MenuItemConstructorOptions,
        ]
      : []),
    {
      label: 'File',
      submenu: [
        { label: 'New Task', accelerator: 'CmdOrCtrl+N', click: () => actions.newTask() },
        {
          label: 'Open Folder…',
          accelerator: 'CmdOrCtrl+O',
          click: () => actions.openFolder(),
        },
        ...(mac
          ? []
          : ([
              { type: 'separator' },
              {
                label: 'Settings',
                accelerator: 'Ctrl+,',
                click: () => actions.openSettings(),
              },
              { type: 'separator' },
              { role: 'quit' },
            ] satisfies MenuItemConstructorOptions[])),
      ],
    },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        ...(isDev
          ? ([
              { role: 'reload' },
              { role: 'toggleDevTools' },
            ] satisfies MenuItemConstructorOptions[])
          : []),
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    { role: 'windowMenu' },
    {
      role: 'help',
      submenu: [{ label: 'Open Logs Folder', click: () => actions.openLogs() }],
    },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}
