/**
 * The one IPC channel outside the contract: the preload's dropFolder, carrying the path Electron
 * resolved for a dropped folder. Shared so the preload and the router cannot drift apart.
 */
export const DROP_FOLDER_CHANNEL = 'paddock:drop-folder';
