-- tensorlens' own commands and requests: the client side of server/src/lsp/ext.rs (kept in step with
-- it, as editors/vscode/src/lsp_ext.ts is), and the calls that send them.

local M = {}

--- Server command: compile a kernel with NVRTC, report resources and occupancy. Argument: a target
--- `{ uri, range | position | kernel }`. Answers the analysis (`summary`, `markdown`, `registers`, ...)
--- or `{ error, messages }`; a Triton kernel's answer has `configs`, one analysis per configuration
--- (`constexprs`, `num_warps`, `num_stages`, `summary`, `registers`, ... or `error`).
M.ANALYZE_KERNEL = 'tensorlens.analyzeKernel'
--- Server command: the kernel's PTX. Same argument; answers `{ kernel, text, languageId = 'ptx', uri }`
--- or `{ kernel, error }`.
M.SHOW_PTX = 'tensorlens.showPtx'
--- Server command: a kernel's IR. Argument: a target with `ir` (`'ptx'`, `'sass'`, and for Triton
--- kernels `'ttir'`, `'ttgir'`, `'llir'`) and `config` (0-based index into a Triton kernel's
--- configurations; the first when left out). Answers `{ kernel, ir, config, languageId, text, uri? }`
--- (`languageId` `ptx`, `sass`, `mlir` or `llvm`) or `{ kernel, ir, error }`.
M.SHOW_IR = 'tensorlens.showIr'
--- Server command: time a kernel on the GPU through the worker. Argument: a target. Answers the run's
--- record `{ kernel, summary, timing, spec, change_percent, warnings, error? }`.
M.TIME_KERNEL = 'tensorlens.timeKernel'
--- Server command (the timing lens): a kernel's history `{ kernels = { { kernel, history } } }`.
M.SHOW_TIMING = 'tensorlens.showTiming'
--- Server command: which NVRTC, ptxas, headers and GPU the server uses. No arguments.
M.KERNEL_TOOLCHAIN = 'tensorlens.kernelToolchain'
--- Server command: open a URL in the browser (the server asks back with window/showDocument).
M.OPEN_URL = 'tensorlens.openUrl'
--- Server command: catalog search. Argument: the query.
M.SEARCH_CATALOG_COMMAND = 'tensorlens.searchCatalog'
--- Request: catalog search. Params `{ query, limit? }`; answers a list of catalog entries
--- `{ name, kind, system, summary, signature, docs, equivalents }`.
M.SEARCH_CATALOG = 'tensorlens/searchCatalog'
--- Request: the text the server holds for a document. Params: a TextDocumentIdentifier.
M.VIEW_FILE_TEXT = 'tensorlens/viewFileText'

--- Runs a server command and calls `on_result(err, result)` in the main loop.
---@param client vim.lsp.Client
---@param command string
---@param arguments any[]
---@param bufnr integer
---@param on_result fun(err: lsp.ResponseError?, result: any)
function M.execute(client, command, arguments, bufnr, on_result)
  M.request(client, 'workspace/executeCommand', { command = command, arguments = arguments }, bufnr, on_result)
end

--- Sends a request and calls `on_result(err, result)` in the main loop.
---@param client vim.lsp.Client
---@param method string
---@param params table
---@param bufnr integer
---@param on_result fun(err: lsp.ResponseError?, result: any)
function M.request(client, method, params, bufnr, on_result)
  local ok = client:request(method, params, function(err, result)
    on_result(err, result)
  end, bufnr)
  if not ok then
    on_result({ code = -32803, message = 'the tensorlens server is not running' }, nil)
  end
end

return M
