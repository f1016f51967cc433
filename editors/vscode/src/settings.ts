// Generated from the settings table in server/src/settings.rs, which a test there checks this file
// against; do not edit. After changing the table, `UPDATE_EXPECT=1 cargo test -p tensorlens --lib
// settings` writes it again.

/** The server's settings that users set, as `tensorlens.<key>`; the extension sends them all. */
export const USER_SETTINGS: readonly string[] = [
  "catalogPaths",
  "shapeHints",
  "cudaArch",
  "nvrtcPath",
  "ptxasPath",
  "pythonPath",
  "cudaIncludePaths",
  "nvrtcFlags",
  "kernelBlockSize",
  "kernelTemplateArgs",
  "timingLauncher",
  "timingWorker",
  "timingSeconds",
  "timingNoise",
  "timingHot",
];

/** The ones naming a program the server runs or a library it loads: in an untrusted workspace only
 * the user's own (global) value is sent. */
export const PROGRAM_SETTINGS: readonly string[] = [
  "nvrtcPath",
  "ptxasPath",
  "pythonPath",
  "timingLauncher",
  "timingWorker",
];

/** The extension's own settings that name a program it runs (the same rule applies). */
export const CLIENT_PROGRAM_SETTINGS: readonly string[] = [
  "server.path",
];
