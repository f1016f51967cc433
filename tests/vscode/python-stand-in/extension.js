// A stand-in for the Python extension's API, for tests/vscode/e2e.mjs: the selected interpreter is the
// one python.defaultInterpreterPath names (the user's value), which is what the real extension selects
// in a workspace without a choice of its own.
const vscode = require("vscode");

exports.activate = function activate() {
  return {
    environments: {
      getActiveEnvironmentPath() {
        const value = vscode.workspace.getConfiguration("python").inspect("defaultInterpreterPath")?.globalValue;
        return { id: value ?? "python", path: value ?? "python" };
      },
    },
  };
};
