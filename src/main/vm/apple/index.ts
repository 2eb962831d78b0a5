/** The Apple backend (macOS): Virtualization.framework through the Swift helper in src/vz-helper. */
export { AppleBackend } from './backend.js';
export type { AppleBackendOptions } from './backend.js';
export { buildVzConfig, vzCmdline } from './config.js';
export type { VzConfig, VzPaths, VzShare } from './config.js';
export { HelperLineParser, encodeOp, parseHelperLine } from './helper-protocol.js';
export type { HelperEvent, HelperOp } from './helper-protocol.js';
export { ImageDownloadError, downloadImage } from './image-source.js';
export type { DownloadImageOptions, DownloadProgress } from './image-source.js';
