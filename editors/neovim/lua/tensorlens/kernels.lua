-- CUDA and Triton kernels: the analyze, show-PTX and show-IR commands, their answers shown as
-- notifications, code lenses and virtual text, and the PTX and IR in read-only scratch buffers.

local commands = require('tensorlens.commands')

local M = {}

--- Virtual text of analysis results lives in this namespace.
M.ns = vim.api.nvim_create_namespace('tensorlens')

--- Extmark ids of the virtual text, per buffer and kernel (qualified name).
---@type table<integer, table<string, integer>>
local marks = {}

local function notify(message, level)
  vim.notify('tensorlens: ' .. message, level or vim.log.levels.INFO)
end

--- An LSP character offset for a byte column, clamped to the line.
---@param bufnr integer
---@param row integer 0-based
---@param byte integer 0-based
---@param encoding string
local function character(bufnr, row, byte, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  byte = math.max(0, math.min(byte, #line))
  if encoding == 'utf-8' then
    return byte
  end
  return vim.str_utfindex(line, encoding, byte, false)
end

--- What the kernel commands take: the document and the selection given by a command's range (the
--- visual selection when the range is `'<,'>`, whole lines otherwise), else the cursor.
---@param client vim.lsp.Client
---@param bufnr integer
---@param opts? {range: integer, line1: integer, line2: integer}
---@return table
function M.target(client, bufnr, opts)
  local encoding = client.offset_encoding or 'utf-16'
  local uri = vim.uri_from_bufnr(bufnr)
  if not opts or opts.range == 0 then
    local cursor = vim.api.nvim_win_get_cursor(0)
    local row = cursor[1] - 1
    return { uri = uri, position = { line = row, character = character(bufnr, row, cursor[2], encoding) } }
  end
  local first, last = opts.line1 - 1, opts.line2 - 1
  local start_col, end_col = 0, math.huge
  local from, to = vim.api.nvim_buf_get_mark(bufnr, '<'), vim.api.nvim_buf_get_mark(bufnr, '>')
  if opts.range == 2 and from[1] == opts.line1 and to[1] == opts.line2 then
    -- A characterwise selection: its columns, the last character included.
    start_col, end_col = from[2], to[2] + 1
  end
  return {
    uri = uri,
    range = {
      start = { line = first, character = character(bufnr, first, start_col, encoding) },
      ['end'] = { line = last, character = character(bufnr, last, end_col, encoding) },
    },
  }
end

--- Asks the server for the buffer's lenses, shows them (unless lenses are turned off) and passes
--- them on.
---@param client vim.lsp.Client
---@param bufnr integer
---@param on_lenses? fun(lenses: lsp.CodeLens[])
function M.update_lenses(client, bufnr, on_lenses)
  local params = { textDocument = { uri = vim.uri_from_bufnr(bufnr) } }
  commands.request(client, 'textDocument/codeLens', params, bufnr, function(err, lenses)
    if err or not vim.api.nvim_buf_is_loaded(bufnr) then
      return
    end
    lenses = lenses or {}
    if require('tensorlens.config').get().codelens then
      local ctx = { method = 'textDocument/codeLens', client_id = client.id, bufnr = bufnr }
      vim.lsp.codelens.on_codelens(nil, lenses, ctx)
    end
    if on_lenses then
      on_lenses(lenses)
    end
  end)
end

--- The line of a kernel's name, from the lenses the server puts there.
---@param lenses lsp.CodeLens[]
---@param kernel string
---@return integer?
local function kernel_line(lenses, kernel)
  for _, lens in ipairs(lenses) do
    local args = lens.command and lens.command.arguments
    if type(args) == 'table' and type(args[1]) == 'table' and args[1].kernel == kernel then
      return lens.range.start.line
    end
  end
end

--- Puts an analysis (or its failure) at the end of the kernel's name line.
---@param bufnr integer
---@param lenses lsp.CodeLens[]
---@param result table
function M.set_virtual_text(bufnr, lenses, result, kind)
  local kernel = result.qualified_name or result.name
  local line = kernel and kernel_line(lenses, kernel)
  if not line or not require('tensorlens.config').get().virtual_text then
    return
  end
  local text, group
  if result.error then
    text, group = '✗ ' .. (vim.split(result.error, '\n')[1] or ''), 'TensorlensAnalysisError'
  else
    text, group = result.summary or '', 'TensorlensAnalysis'
  end
  marks[bufnr] = marks[bufnr] or {}
  -- Analysis and timing each keep one mark per kernel.
  local key = (kind or 'analysis') .. ':' .. kernel
  marks[bufnr][key] = vim.api.nvim_buf_set_extmark(bufnr, M.ns, line, 0, {
    id = marks[bufnr][key],
    virt_text = { { text, group } },
    virt_text_pos = 'eol',
    hl_mode = 'combine',
  })
end

--- Removes the buffer's analysis virtual text (the server that made it is gone).
---@param bufnr integer
function M.clear(bufnr)
  marks[bufnr] = nil
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

--- `BLOCK_SIZE=1024 num_warps=4 num_stages=3`, as the server labels a Triton configuration.
---@param config table
---@return string
function M.config_label(config)
  local parts = {}
  local constexprs = type(config.constexprs) == 'table' and config.constexprs or {}
  local names = vim.tbl_keys(constexprs)
  table.sort(names)
  for _, name in ipairs(names) do
    table.insert(parts, ('%s=%s'):format(name, vim.inspect(constexprs[name]):gsub('^"(.*)"$', '%1')))
  end
  if config.num_warps then
    table.insert(parts, 'num_warps=' .. config.num_warps)
  end
  if config.num_stages then
    table.insert(parts, 'num_stages=' .. config.num_stages)
  end
  return table.concat(parts, ' ')
end

--- One line per configuration of a Triton kernel's analysis, when it has several or one failed.
---@param configs table[]
---@return string[]
local function config_lines(configs)
  local lines = {}
  local failed = #vim.tbl_filter(function(config)
    return config.error ~= nil
  end, configs)
  if #configs < 2 and failed == 0 then
    return lines
  end
  for _, config in ipairs(configs) do
    local outcome = config.error and ('✗ ' .. (vim.split(config.error, '\n')[1] or '')) or config.summary or ''
    table.insert(lines, ('  %s: %s'):format(M.config_label(config), outcome))
  end
  return lines
end

--- Shows an analysis: a notification, the lens, the virtual text. A Triton kernel's notification
--- has a line per configuration when there are several.
---@param client vim.lsp.Client
---@param bufnr integer
---@param result table
function M.show_analysis(client, bufnr, result)
  if type(result) ~= 'table' then
    notify('the server gave no analysis', vim.log.levels.ERROR)
    return
  end
  local configs = type(result.configs) == 'table' and result.configs or {}
  if result.error then
    local lines = { result.error }
    for index, message in ipairs(result.messages or {}) do
      if index > 5 then
        table.insert(lines, ('  ... and %d more (see the diagnostics)'):format(#result.messages - 5))
        break
      end
      table.insert(lines, ('  line %d: %s: %s'):format(message.line, message.severity, message.message))
    end
    vim.list_extend(lines, config_lines(configs))
    notify(table.concat(lines, '\n'), vim.log.levels.ERROR)
  else
    local lines = { ('%s: %s'):format(result.qualified_name or result.name, result.summary or '') }
    vim.list_extend(lines, config_lines(configs))
    local failed = vim.tbl_contains(configs, function(config)
      return config.error ~= nil
    end, { predicate = true })
    notify(table.concat(lines, '\n'), failed and vim.log.levels.WARN or vim.log.levels.INFO)
  end
  M.update_lenses(client, bufnr, function(lenses)
    M.set_virtual_text(bufnr, lenses, result)
  end)
end

--- Compiles the kernel `target` names and shows what it uses.
---@param client vim.lsp.Client
---@param bufnr integer
---@param target table
function M.analyze(client, bufnr, target)
  commands.execute(client, commands.ANALYZE_KERNEL, { target }, bufnr, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
      return
    end
    M.show_analysis(client, bufnr, result)
  end)
end

--- `text` in a read-only scratch buffer called `name`, with `filetype`, opened in a vertical split
--- (or focused where it is already shown).
---@param name string
---@param text string
---@param filetype string
---@return integer bufnr
local function open_text(name, text, filetype)
  local buf
  for _, candidate in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(candidate) == name then
      buf = candidate
    end
  end
  if not buf then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, name)
  end
  local lines = vim.split(text, '\n', { plain = true })
  if lines[#lines] == '' then
    table.remove(lines)
  end
  vim.bo[buf].readonly = false
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].readonly = true
  vim.bo[buf].modified = false
  vim.bo[buf].filetype = filetype
  local win = vim.fn.bufwinid(buf)
  if win == -1 then
    vim.cmd('vertical sbuffer ' .. buf)
  else
    vim.api.nvim_set_current_win(win)
  end
  return buf
end

--- The PTX of a kernel in a read-only scratch buffer named `tensorlens://ptx/<kernel>.ptx`, opened in
--- a vertical split (or focused where it is already shown).
---@param result {kernel: string, text: string}
---@return integer bufnr
function M.open_ptx(result)
  return open_text('tensorlens://ptx/' .. result.kernel:gsub('[^%w_]', '_') .. '.ptx', result.text, 'ptx')
end

--- The IR kinds: Triton kernels have all five, in the order a kernel is lowered; CUDA kernels the
--- last two.
M.triton_ir = { 'ttir', 'ttgir', 'llir', 'ptx', 'sass' }
M.cuda_ir = { 'ptx', 'sass' }

local ir_descriptions = {
  ttir = 'TTIR: Triton IR, as the kernel was written (MLIR)',
  ttgir = 'TTGIR: Triton GPU IR, with layouts, shared memory, pipelining (MLIR)',
  llir = 'LLVM IR: what Triton hands to LLVM’s NVPTX back end',
  ptx = 'PTX: NVIDIA’s virtual instruction set',
  sass = 'SASS: the machine code ptxas made for the target architecture',
}

--- The filetype of an IR's `languageId`: the same name, but for SASS, since Vim's `sass` is the CSS
--- preprocessor.
---@param language_id string?
---@return string
function M.ir_filetype(language_id)
  if language_id == 'sass' then
    return 'nvidia-sass'
  end
  return type(language_id) == 'string' and language_id or ''
end

--- An IR answer in a read-only scratch buffer named
--- `tensorlens://ir/<kernel>.<ir>` (`tensorlens://ir/<kernel> (<config>).<ir>` for a Triton config).
---@param result {kernel: string, ir: string, text: string, languageId: string?, config: (string|table)?}
---@return integer bufnr
function M.open_ir(result)
  local config = result.config
  local label = type(config) == 'string' and config or type(config) == 'table' and M.config_label(config) or ''
  local name = 'tensorlens://ir/'
    .. result.kernel:gsub('[^%w_]', '_')
    .. (label ~= '' and (' (' .. label .. ')') or '')
    .. '.'
    .. result.ir
  return open_text(name, result.text, M.ir_filetype(result.languageId))
end

--- Compiles the kernel `target` names to the IR `kind` (for a Triton kernel, its configuration
--- `config`, 0-based) and shows it.
---@param client vim.lsp.Client
---@param bufnr integer
---@param target table
---@param kind string
---@param config? integer
---@param what? string The kernel and configuration, for the message while it compiles.
function M.show_ir_of(client, bufnr, target, kind, config, what)
  local args = vim.tbl_extend('force', target, { ir = kind, config = config })
  notify(('compiling %s to %s...'):format(what or 'the kernel', kind))
  commands.execute(client, commands.SHOW_IR, { args }, bufnr, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
    elseif type(result) ~= 'table' or result.error or type(result.text) ~= 'string' then
      notify(type(result) == 'table' and result.error or ('the server gave no ' .. kind), vim.log.levels.ERROR)
    else
      M.open_ir(result)
    end
  end)
end

--- Asks, with |vim.ui.select()|, for what is not given, then shows the IR: the kind among the ones
--- the kernel has, and the configuration when a Triton kernel has several. In a Python buffer the
--- kernel is analysed first (from the server's cache when it was before), which says whether it is a
--- Triton kernel and what its configurations are now.
---@param client vim.lsp.Client
---@param bufnr integer
---@param target table
---@param kind? string
---@param config? integer 1-based, as the picker numbers them
function M.show_ir(client, bufnr, target, kind, config)
  local function with_kernel(configs, name)
    name = name or 'the kernel'
    local function what(index)
      return index and ('%s (config %d of %d)'):format(name, index, #configs) or name
    end
    local kinds = configs and M.triton_ir or M.cuda_ir
    local function with_kind(chosen)
      if not chosen then
        return
      end
      configs = configs or {}
      if config then
        if config ~= math.floor(config) or config < 1 or config > math.max(#configs, 1) then
          local count = math.max(#configs, 1)
          notify(('no configuration %s: the kernel has %d'):format(config, count), vim.log.levels.ERROR)
          return
        end
        local index = #configs > 0 and config or nil
        return M.show_ir_of(client, bufnr, target, chosen, index and index - 1, what(index))
      end
      if #configs < 2 then
        return M.show_ir_of(client, bufnr, target, chosen, nil, what(nil))
      end
      local indices = {}
      for index = 1, #configs do
        table.insert(indices, index)
      end
      vim.ui.select(indices, {
        prompt = ('tensorlens: %s of which configuration'):format(chosen),
        kind = 'tensorlens.config',
        format_item = function(index)
          local c = configs[index]
          local outcome = c.error and ('✗ ' .. (vim.split(c.error, '\n')[1] or '')) or c.summary or ''
          return ('%d: %s  %s'):format(index, M.config_label(c), outcome)
        end,
      }, function(index)
        if index then
          M.show_ir_of(client, bufnr, target, chosen, index - 1, what(index))
        end
      end)
    end
    if kind then
      if not vim.tbl_contains(kinds, kind) then
        notify(('no IR %s for this kernel; it has %s'):format(kind, table.concat(kinds, ', ')), vim.log.levels.ERROR)
        return
      end
      return with_kind(kind)
    end
    vim.ui.select(kinds, {
      prompt = 'tensorlens: which IR',
      kind = 'tensorlens.ir',
      format_item = function(item)
        return ir_descriptions[item] or item
      end,
    }, with_kind)
  end
  if vim.bo[bufnr].filetype ~= 'python' then
    return with_kernel(nil)
  end
  commands.execute(client, commands.ANALYZE_KERNEL, { target }, bufnr, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
      return
    end
    if type(result) ~= 'table' then
      notify('the server gave no analysis', vim.log.levels.ERROR)
      return
    end
    local configs = type(result.configs) == 'table' and result.configs or nil
    if result.error and not (configs and #configs > 0) then
      M.show_analysis(client, bufnr, result)
      return
    end
    M.update_lenses(client, bufnr, function(lenses)
      M.set_virtual_text(bufnr, lenses, result)
    end)
    with_kernel(configs, result.name)
  end)
end

--- Times the kernel `target` names on the GPU (through the server's worker) and shows the result: a
--- notification, the lens, virtual text. Without a GPU the message says what is missing.
---@param client vim.lsp.Client
---@param bufnr integer
---@param target table
function M.time(client, bufnr, target)
  notify('timing the kernel...')
  commands.execute(client, commands.TIME_KERNEL, { target }, bufnr, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
      return
    end
    if type(result) ~= 'table' then
      notify('the server gave no timing', vim.log.levels.ERROR)
      return
    end
    local lines = { ('%s: %s'):format(result.kernel or '?', result.error or result.summary or '') }
    for _, warning in ipairs(result.warnings or {}) do
      table.insert(lines, '  ' .. warning)
    end
    notify(table.concat(lines, '\n'), result.error and vim.log.levels.ERROR or vim.log.levels.INFO)
    M.update_lenses(client, bufnr, function(lenses)
      M.set_virtual_text(bufnr, lenses, {
        qualified_name = result.kernel,
        error = result.error,
        summary = result.summary,
      }, 'timing')
    end)
  end)
end

--- A kernel's timing history, one line per run, in the message area.
---@param client vim.lsp.Client
---@param bufnr integer
---@param target table
function M.show_timing(client, bufnr, target)
  commands.execute(client, commands.SHOW_TIMING, { target }, bufnr, function(err, result)
    if err or type(result) ~= 'table' then
      notify(err and err.message or 'no timing history', vim.log.levels.ERROR)
      return
    end
    local lines = {}
    for _, kernel in ipairs(result.kernels or {}) do
      table.insert(lines, kernel.kernel .. ':')
      for _, run in ipairs(kernel.history or {}) do
        table.insert(lines, '  ' .. os.date('%H:%M:%S', math.floor(run.at)) .. '  ' .. (run.error or run.summary))
      end
    end
    notify(#lines > 0 and table.concat(lines, '\n') or 'no timing runs yet')
  end)
end

--- Compiles the kernel `target` names to PTX and shows it.
---@param client vim.lsp.Client
---@param bufnr integer
---@param target table
function M.show_ptx(client, bufnr, target)
  commands.execute(client, commands.SHOW_PTX, { target }, bufnr, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
    elseif type(result) ~= 'table' or result.error or type(result.text) ~= 'string' then
      notify(type(result) == 'table' and result.error or 'the server gave no PTX', vim.log.levels.ERROR)
    else
      M.open_ptx(result)
    end
  end)
end

--- Client-side handler of the commands the server puts in code lenses (registered in
--- `vim.lsp.commands`), so that `vim.lsp.codelens.run()` on a lens analyses the kernel or opens its PTX
--- instead of sending the command and dropping the answer.
---@param command lsp.Command
---@param ctx {client_id: integer, bufnr: integer}
function M.run_lens_command(command, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return
  end
  local bufnr = ctx.bufnr or vim.api.nvim_get_current_buf()
  local target = command.arguments and command.arguments[1]
  if client.name ~= 'tensorlens' then
    -- Another server naming the same command: pass it through untouched.
    client:request('workspace/executeCommand', { command = command.command, arguments = command.arguments }, nil, bufnr)
  elseif command.command == commands.SHOW_PTX then
    M.show_ptx(client, bufnr, target)
  elseif command.command == commands.SHOW_IR then
    M.show_ir_of(client, bufnr, target, target.ir, target.config)
  elseif command.command == commands.TIME_KERNEL then
    M.time(client, bufnr, target)
  elseif command.command == commands.SHOW_TIMING then
    M.show_timing(client, bufnr, target)
  else
    M.analyze(client, bufnr, target)
  end
end

return M
