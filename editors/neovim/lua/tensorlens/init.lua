-- The tensorlens Neovim plugin: what lsp/tensorlens.lua calls to start the server, what happens when
-- it attaches to a buffer, and the functions behind the :Tensorlens* commands.

local commands = require('tensorlens.commands')
local config = require('tensorlens.config')

local M = {}

local levels = vim.log.levels

local function notify(message, level)
  vim.notify('tensorlens: ' .. message, level or levels.INFO)
end

--- Files and folders that mark a project root, nearest first.
M.root_markers = { '.tensorlens', 'pyproject.toml', 'setup.py', 'setup.cfg', 'CMakeLists.txt', '.git' }

--- Whether the project is trusted: not when the server is told `workspaceTrusted = false` (see
--- :help tensorlens-trust), in the client's settings or in `vim.lsp.config('tensorlens', ...)`.
---@param settings? table the client's `settings`
---@return boolean
function M.trusted(settings)
  settings = settings or (vim.lsp.config.tensorlens and vim.lsp.config.tensorlens.settings) or {}
  local ours = type(settings.tensorlens) == 'table' and settings.tensorlens or {}
  return ours.workspaceTrusted ~= false
end

--- Whether `path` lies inside the folder `root`, as written or where its links lead.
---@param path string
---@param root string
---@return boolean
local function inside(path, root)
  local function spellings(file)
    local normal = vim.fs.normalize(vim.fn.fnamemodify(file, ':p'))
    return { normal, vim.uv.fs_realpath(file) or normal }
  end
  for _, spelled in ipairs(spellings(path)) do
    for _, folder in ipairs(spellings(root)) do
      folder = folder:gsub('/+$', '')
      if spelled == folder or vim.startswith(spelled, folder .. '/') then
        return true
      end
    end
  end
  return false
end

--- The command that starts the server, where it came from, and the binaries passed over (each with
--- why): the `cmd` of a `vim.lsp.config('tensorlens', ...)` override when it is a list, else
--- `vim.g.tensorlens.cmd` when set, else the `tensorlens` that `pip install tensorlens` put in the
--- active virtual or conda environment ($VIRTUAL_ENV, $CONDA_PREFIX), else `tensorlens` on PATH. In
--- an untrusted project (`root`) an environment or PATH entry inside it is passed over.
---@param root? string
---@param trusted? boolean
---@return string[]? cmd nil when the only binary found was passed over
---@return string source
---@return string[] skipped
function M.server_cmd(root, trusted)
  local override = vim.lsp.config.tensorlens and vim.lsp.config.tensorlens.cmd
  if type(override) == 'table' then
    return override, "vim.lsp.config('tensorlens').cmd", {}
  end
  local options = config.get()
  local user = vim.g.tensorlens
  if type(user) == 'table' and user.cmd ~= nil and user.cmd ~= vim.NIL then
    return options.cmd, 'vim.g.tensorlens.cmd', {}
  end
  if trusted == nil then
    trusted = M.trusted()
  end
  local skipped = {}
  local function allowed(candidate, where)
    if trusted or not root or not inside(candidate, root) then
      return true
    end
    table.insert(
      skipped,
      ('%s (%s) lies inside the project %s, which is not trusted, so it was not run'):format(candidate, where, root)
    )
    return false
  end
  for _, var in ipairs({ 'VIRTUAL_ENV', 'CONDA_PREFIX' }) do
    local prefix = vim.env[var]
    if prefix and prefix ~= '' then
      local candidate = vim.fs.joinpath(prefix, 'bin', 'tensorlens')
      if vim.fn.executable(candidate) == 1 and allowed(candidate, 'the environment of $' .. var) then
        return vim.list_extend({ candidate }, vim.list_slice(options.cmd, 2)), '$' .. var, skipped
      end
    end
  end
  local on_path = vim.fn.exepath(options.cmd[1])
  if on_path ~= '' and not allowed(on_path, 'on PATH') then
    return nil, 'PATH', skipped
  end
  return options.cmd, 'PATH', skipped
end

local missing_reported = {}

--- Whether the server binary can be run; says once (per binary) how to get it when it cannot.
---@param root? string
---@return boolean
function M.check_binary(root)
  local cmd, _, skipped = M.server_cmd(root)
  if cmd and vim.fn.executable(cmd[1]) == 1 then
    return true
  end
  local name = cmd and cmd[1] or 'tensorlens'
  if not missing_reported[name] then
    missing_reported[name] = true
    local passed = #skipped > 0 and (' (' .. table.concat(skipped, '; ') .. ')') or ''
    notify(
      ('the server binary `%s` was not found%s, so tensorlens is not started. '):format(name, passed)
        .. 'Install it (`pip install tensorlens` into your virtual environment, or from the tensorlens repository: '
        .. '`cargo install --path server`) so that `tensorlens` is on PATH, '
        .. "or set its path: vim.g.tensorlens = { cmd = { '/path/to/tensorlens', 'serve' } }",
      levels.ERROR
    )
  end
  return false
end

--- `root_dir` of the LSP config: the nearest project root, or none (one server for loose files). TOML
--- buffers are only taken when they are catalog files, `<root>/.tensorlens/catalog/*.toml`; nothing
--- starts when the binary is missing (a single clear message instead of a failed spawn).
---@param bufnr integer
---@param on_dir fun(root?: string)
function M.root_dir(bufnr, on_dir)
  local root
  if vim.bo[bufnr].filetype == 'toml' then
    local folder = vim.fs.dirname(vim.fs.normalize(vim.api.nvim_buf_get_name(bufnr)))
    local dot_tensorlens = vim.fs.dirname(folder)
    if vim.fs.basename(folder) ~= 'catalog' or vim.fs.basename(dot_tensorlens) ~= '.tensorlens' then
      return
    end
    root = vim.fs.dirname(dot_tensorlens)
  else
    root = vim.fs.root(bufnr, M.root_markers)
  end
  if M.check_binary(root) then
    on_dir(root)
  end
end

--- `cmd` of the LSP config: starts the server that `server_cmd` finds now.
---@param dispatchers vim.lsp.rpc.Dispatchers
---@param client_config vim.lsp.ClientConfig
---@return vim.lsp.rpc.PublicClient
function M.start_server(dispatchers, client_config)
  local options = config.get()
  local env = vim.tbl_extend('force', client_config.cmd_env or {}, options.cmd_env or {})
  local cmd, source, skipped = M.server_cmd(client_config.root_dir, M.trusted(client_config.settings))
  for _, note in ipairs(skipped) do
    notify(note, levels.WARN)
  end
  if not cmd then
    error('tensorlens: no server binary outside the untrusted project: ' .. table.concat(skipped, '; '))
  end
  vim.lsp.log.info('tensorlens: starting', cmd[1], 'from', source)
  return vim.lsp.rpc.start(cmd, dispatchers, {
    cwd = client_config.cmd_cwd,
    env = next(env) and env or nil,
    detached = client_config.detached,
  })
end

--- `before_init` of the LSP config: the settings of `vim.g.tensorlens` go out as initializationOptions
--- and as the client's `settings.tensorlens` (which Neovim sends in workspace/didChangeConfiguration);
--- settings given to `vim.lsp.config('tensorlens', { settings = ... })` win over them.
---@param params lsp.InitializeParams
---@param client_config vim.lsp.ClientConfig
function M.before_init(params, client_config)
  local settings = config.server_settings(config.get())
  -- client.settings is this same table, so it is filled in place.
  client_config.settings = client_config.settings or {}
  local explicit = client_config.settings.tensorlens
  local merged = vim.tbl_deep_extend('force', settings, type(explicit) == 'table' and explicit or {})
  if next(merged) == nil then
    merged = vim.empty_dict()
  end
  client_config.settings.tensorlens = merged
  local init_options = type(params.initializationOptions) == 'table' and params.initializationOptions or {}
  local options = vim.tbl_deep_extend('force', merged, init_options)
  params.initializationOptions = next(options) and options or vim.empty_dict()
end

--- Handler of `workspace/codeLens/refresh` (the server asks after an analysis, also one it ran after a
--- save): refreshes the lenses of the client's buffers.
---@param ctx lsp.HandlerContext
function M.on_codelens_refresh(_, _, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if client and config.get().codelens then
    for bufnr in pairs(client.attached_buffers) do
      if vim.api.nvim_buf_is_loaded(bufnr) then
        vim.lsp.codelens.refresh({ bufnr = bufnr })
      end
    end
  end
  return vim.NIL
end

--- Set-up for a buffer a tensorlens client attached to (from the LspAttach autocommand).
---@param client vim.lsp.Client
---@param bufnr integer
function M.on_attach(client, bufnr)
  local kernels = require('tensorlens.kernels')
  vim.lsp.commands[commands.ANALYZE_KERNEL] = kernels.run_lens_command
  vim.lsp.commands[commands.SHOW_PTX] = kernels.run_lens_command
  vim.lsp.commands[commands.SHOW_IR] = kernels.run_lens_command
  vim.lsp.commands[commands.TIME_KERNEL] = kernels.run_lens_command
  vim.lsp.commands[commands.SHOW_TIMING] = kernels.run_lens_command
  local group = vim.api.nvim_create_augroup('tensorlens.buffer.' .. bufnr, { clear = true })
  -- Neovim leaves inlay hints off; the shapes are what tensorlens shows in them, on by default.
  if config.get().shapeHints ~= false and client:supports_method('textDocument/inlayHint', bufnr) then
    vim.lsp.inlay_hint.enable(true, { bufnr = bufnr })
  end
  if config.get().codelens and client:supports_method('textDocument/codeLens', bufnr) then
    vim.lsp.codelens.refresh({ bufnr = bufnr })
    vim.api.nvim_create_autocmd({ 'BufEnter', 'InsertLeave' }, {
      group = group,
      buffer = bufnr,
      desc = 'tensorlens: refresh code lenses',
      callback = function()
        if config.get().codelens then
          vim.lsp.codelens.refresh({ bufnr = bufnr })
        end
      end,
    })
  end
end

--- Clean-up when a tensorlens client leaves a buffer (stopped, restarted or crashed): its analyses
--- are gone with it.
---@param client_id integer
---@param bufnr integer
function M.on_detach(client_id, bufnr)
  for _, other in ipairs(vim.lsp.get_clients({ name = 'tensorlens', bufnr = bufnr })) do
    if other.id ~= client_id then
      return -- a new client already took over the buffer
    end
  end
  pcall(vim.api.nvim_del_augroup_by_name, 'tensorlens.buffer.' .. bufnr)
  require('tensorlens.kernels').clear(bufnr)
end

--- The tensorlens client attached to a buffer.
---@param bufnr? integer
---@return vim.lsp.Client?
function M.client(bufnr)
  return vim.lsp.get_clients({ name = 'tensorlens', bufnr = bufnr or vim.api.nvim_get_current_buf() })[1]
end

--- The client attached to the buffer, else any running tensorlens client, else a message saying why
--- there is none.
---@param bufnr integer
---@param needs_buffer boolean
---@return vim.lsp.Client?
local function client_for(bufnr, needs_buffer)
  local client = M.client(bufnr) or (not needs_buffer and vim.lsp.get_clients({ name = 'tensorlens' })[1])
  if client then
    return client
  end
  if not vim.lsp.is_enabled('tensorlens') and #vim.lsp.get_clients({ name = 'tensorlens' }) == 0 then
    notify("the server is not running: enable it with vim.lsp.enable('tensorlens')", levels.ERROR)
  elseif needs_buffer then
    notify('not attached to this buffer: open a CUDA, C++ or Python file and put the cursor in a kernel', levels.ERROR)
  else
    notify('the server is not running (see :checkhealth tensorlens)', levels.ERROR)
  end
end

--- Runs `kernels[action]` on the kernel the range (or visual selection) or the cursor is in.
---@param action 'analyze'|'show_ptx'|'time'
---@param opts? {range: integer, line1: integer, line2: integer}
local function on_kernel(action, opts)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_for(bufnr, true)
  if client then
    local kernels = require('tensorlens.kernels')
    kernels[action](client, bufnr, kernels.target(client, bufnr, opts))
  end
end

--- :TensorlensAnalyze: compile the kernel and show its resources.
---@param opts? {range: integer, line1: integer, line2: integer}
function M.analyze(opts)
  on_kernel('analyze', opts)
end

--- :TensorlensPtx: the PTX of the kernel.
---@param opts? {range: integer, line1: integer, line2: integer}
function M.ptx(opts)
  on_kernel('show_ptx', opts)
end

--- :TensorlensIr [kind] [config]: the kernel's IR (`ttir`, `ttgir`, `llir`, `ptx`, `sass`; asked for
--- when not given), of a Triton kernel's configuration `config` (1-based; asked for when the kernel has
--- several), in a read-only scratch buffer.
---@param opts? {range: integer, line1: integer, line2: integer, fargs: string[]}
function M.ir(opts)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_for(bufnr, true)
  if not client then
    return
  end
  local fargs = opts and opts.fargs or {}
  local config = fargs[2] and tonumber(fargs[2])
  if fargs[2] and not config then
    notify(('the configuration is a number (1 for the first), not %s'):format(fargs[2]), levels.ERROR)
    return
  end
  local kernels = require('tensorlens.kernels')
  kernels.show_ir(client, bufnr, kernels.target(client, bufnr, opts), fargs[1], config)
end

--- :TensorlensTime: times the kernel on the GPU (or through `timingLauncher` on a GPU host).
---@param opts? {range: integer, line1: integer, line2: integer}
function M.time(opts)
  on_kernel('time', opts)
end

--- :TensorlensSearch {query}: catalog search; the chosen symbol's documentation opens in the browser.
---@param query? string Asked for when empty.
function M.search(query)
  if not query or vim.trim(query) == '' then
    vim.ui.input({ prompt = 'tensorlens catalog search: ' }, function(input)
      if input and vim.trim(input) ~= '' then
        M.search(input)
      end
    end)
    return
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_for(bufnr, false)
  if not client then
    return
  end
  local params = { query = query, limit = 100 }
  commands.request(client, commands.SEARCH_CATALOG, params, bufnr, function(err, entries)
    if err then
      notify(err.message, levels.ERROR)
      return
    end
    if type(entries) ~= 'table' or #entries == 0 then
      notify(('no catalog symbols for “%s”'):format(query), levels.WARN)
      return
    end
    vim.ui.select(entries, {
      prompt = ('tensorlens: %d catalog symbols for “%s”'):format(#entries, query),
      kind = 'tensorlens.catalog',
      format_item = function(entry)
        local summary = entry.summary ~= '' and entry.summary or (entry.signature ~= vim.NIL and entry.signature)
        local text = ('%s  (%s · %s)'):format(entry.name, entry.system, entry.kind)
        return summary and (text .. '  ' .. summary) or text
      end,
    }, function(entry)
      if not entry then
        return
      end
      if entry.docs == nil or entry.docs == '' then
        notify(('%s has no documentation link'):format(entry.name), levels.WARN)
        return
      end
      local _, open_err = vim.ui.open(entry.docs)
      if open_err then
        notify(('could not open %s: %s'):format(entry.docs, open_err), levels.ERROR)
      end
    end)
  end)
end

--- The toolchain answer (or `tensorlens kernel toolchain --json`) as lines, and whether a piece is
--- missing.
---@param toolchain table
---@return string[] lines
---@return boolean missing
function M.toolchain_lines(toolchain)
  local nvrtc, ptxas = toolchain.nvrtc or {}, toolchain.ptxas or {}
  local lines = {
    nvrtc.Ok and ('NVRTC %s: %s'):format(nvrtc.Ok.version, nvrtc.Ok.path) or ('NVRTC: %s'):format(nvrtc.Err),
    ptxas.Ok and ('ptxas: %s'):format(ptxas.Ok) or ('ptxas: %s'):format(ptxas.Err),
  }
  local include_dirs = toolchain.include_dirs or {}
  if #include_dirs > 0 then
    table.insert(lines, 'headers: ' .. table.concat(include_dirs, ', '))
  else
    table.insert(lines, 'headers: no CUDA include folder')
  end
  local gpu = toolchain.gpu
  if type(gpu) == 'table' then
    table.insert(lines, ('GPU: %s (%s)'):format(gpu.name, gpu.arch))
  else
    table.insert(lines, ('GPU: none; compiling for %s'):format(toolchain.arch or 'sm_90'))
  end
  for _, note in ipairs(type(toolchain.ignored) == 'table' and toolchain.ignored or {}) do
    table.insert(lines, 'ignored: ' .. note)
  end
  return lines, not (nvrtc.Ok and ptxas.Ok)
end

--- :TensorlensToolchain: which NVRTC, ptxas, CUDA headers and GPU the server uses.
function M.toolchain()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_for(bufnr, false)
  if not client then
    return
  end
  commands.execute(client, commands.KERNEL_TOOLCHAIN, {}, bufnr, function(err, toolchain)
    if err or type(toolchain) ~= 'table' then
      notify(err and err.message or 'the server gave no toolchain', levels.ERROR)
      return
    end
    local lines, missing = M.toolchain_lines(toolchain)
    if missing then
      table.insert(lines, 'Install: pip install nvidia-cuda-nvrtc nvidia-cuda-nvcc nvidia-cuda-runtime')
      table.insert(lines, 'or set vim.g.tensorlens.nvrtcPath / ptxasPath, then :TensorlensRestart')
    end
    notify(toolchain.summary .. '\n' .. table.concat(lines, '\n'), missing and levels.WARN or levels.INFO)
  end)
end

--- :TensorlensRestart: stops the tensorlens clients and starts them again for the buffers they had,
--- with `vim.g.tensorlens` as it is now.
---@param on_done? fun() Called once the new clients are being started.
function M.restart(on_done)
  local clients = vim.lsp.get_clients({ name = 'tensorlens' })
  for _, client in ipairs(clients) do
    client:stop()
  end
  local started = vim.uv.now()
  local timer = assert(vim.uv.new_timer())
  timer:start(
    50,
    50,
    vim.schedule_wrap(function()
      -- A client is gone once Neovim has dropped it (after its LspDetach autocommands ran).
      local running = vim.tbl_filter(function(client)
        return vim.lsp.get_client_by_id(client.id) ~= nil
      end, clients)
      if #running > 0 and vim.uv.now() - started < 3000 then
        return
      end
      for _, client in ipairs(running) do
        client:stop(true)
      end
      timer:stop()
      timer:close()
      if not vim.lsp.is_enabled('tensorlens') then
        notify("stopped; start it again with vim.lsp.enable('tensorlens')", levels.WARN)
      else
        -- Re-enabling runs the enable autocommand on every buffer, which starts what applies.
        vim.lsp.enable('tensorlens')
      end
      if on_done then
        on_done()
      end
    end)
  )
end

return M
