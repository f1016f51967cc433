-- CUDA kernels: the analyze and show-PTX commands, their answers shown as notifications, code lenses
-- and virtual text, and the PTX in a read-only scratch buffer.

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

--- Shows an analysis: a notification, the lens, the virtual text.
---@param client vim.lsp.Client
---@param bufnr integer
---@param result table
function M.show_analysis(client, bufnr, result)
  if type(result) ~= 'table' then
    notify('the server gave no analysis', vim.log.levels.ERROR)
    return
  end
  if result.error then
    local lines = { result.error }
    for index, message in ipairs(result.messages or {}) do
      if index > 5 then
        table.insert(lines, ('  ... and %d more (see the diagnostics)'):format(#result.messages - 5))
        break
      end
      table.insert(lines, ('  line %d: %s: %s'):format(message.line, message.severity, message.message))
    end
    notify(table.concat(lines, '\n'), vim.log.levels.ERROR)
  else
    notify(('%s: %s'):format(result.qualified_name or result.name, result.summary or ''))
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

--- The PTX of a kernel in a read-only scratch buffer named `tensorlens://ptx/<kernel>.ptx`, opened in
--- a vertical split (or focused where it is already shown).
---@param result {kernel: string, text: string}
---@return integer bufnr
function M.open_ptx(result)
  local name = 'tensorlens://ptx/' .. result.kernel:gsub('[^%w_]', '_') .. '.ptx'
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
  local lines = vim.split(result.text, '\n', { plain = true })
  if lines[#lines] == '' then
    table.remove(lines)
  end
  vim.bo[buf].readonly = false
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].readonly = true
  vim.bo[buf].modified = false
  vim.bo[buf].filetype = 'ptx'
  local win = vim.fn.bufwinid(buf)
  if win == -1 then
    vim.cmd('vertical sbuffer ' .. buf)
  else
    vim.api.nvim_set_current_win(win)
  end
  return buf
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
  elseif command.command == commands.TIME_KERNEL then
    M.time(client, bufnr, target)
  elseif command.command == commands.SHOW_TIMING then
    M.show_timing(client, bufnr, target)
  else
    M.analyze(client, bufnr, target)
  end
end

return M
