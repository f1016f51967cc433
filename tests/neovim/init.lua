-- The Neovim plugin in a real headless Neovim against the real server: run by tests/neovim/run as
--   nvim --headless --clean -u tests/neovim/init.lua
-- with TENSORLENS_REPO, TENSORLENS_BIN, TENSORLENS_TOOLKIT, TENSORLENS_PYTHON (a Python with triton,
-- outside the work folder) and TENSORLENS_WORK (a scratch copy of the fixtures) in the environment. Works as a user would (vim.lsp.enable, :commands, code lenses,
-- :checkhealth, :help), asserts on what Neovim shows, and exits non-zero on the first failed step
-- or a time-out.

local repo = assert(os.getenv('TENSORLENS_REPO'), 'TENSORLENS_REPO is not set')
local bin = assert(os.getenv('TENSORLENS_BIN'), 'TENSORLENS_BIN is not set')
local toolkit = assert(os.getenv('TENSORLENS_TOOLKIT'), 'TENSORLENS_TOOLKIT is not set')
local work = assert(os.getenv('TENSORLENS_WORK'), 'TENSORLENS_WORK is not set')
local python = assert(os.getenv('TENSORLENS_PYTHON'), 'TENSORLENS_PYTHON is not set')

vim.opt.runtimepath:prepend(repo .. '/editors/neovim')
vim.opt.runtimepath:append(repo .. '/tests/neovim')
vim.o.swapfile = false
vim.o.shadafile = 'NONE'

-- What a user puts in their config: options, then enable.
local options = { cmd = { bin, 'serve' }, nvrtcPath = toolkit, pythonPath = python }
vim.g.tensorlens = options
vim.lsp.enable('tensorlens')

local passed = 0
local started = vim.uv.hrtime()

local function say(line)
  io.stderr:write(line .. '\n')
  io.stderr:flush()
end

local function ok(what)
  passed = passed + 1
  say(('  ok %2d: %s'):format(passed, what))
end

local function fail(what)
  error({ failure = what }, 0)
end

--- Asserts and reports a check.
local function check(condition, what, detail)
  if not condition then
    fail(what .. (detail and ('\n    got: ' .. (type(detail) == 'string' and detail or vim.inspect(detail))) or ''))
  end
  ok(what)
end

--- Waits for `condition` to give a value (Neovim keeps running meanwhile); fails after `timeout` ms.
local function wait_for(what, condition, timeout, detail)
  local value
  local done = vim.wait(timeout or 10000, function()
    value = condition()
    return value ~= nil and value ~= false
  end, 20)
  if not done then
    fail(
      ('timed out after %d ms: %s'):format(timeout or 10000, what) .. (detail and ('\n    last: ' .. detail()) or '')
    )
  end
  ok(what)
  return value
end

-- Notifications, recorded (and still printed, for whoever reads the log).
local notifications = {}
vim.notify = function(message, level)
  table.insert(notifications, { message = message, level = level or vim.log.levels.INFO })
  say(('    [notify %s] %s'):format(level or vim.log.levels.INFO, message:gsub('\n', ' / ')))
end

local function notified(pattern, level)
  for _, n in ipairs(notifications) do
    if n.message:find(pattern) and (level == nil or n.level == level) then
      return n
    end
  end
end

-- The browser: recorded instead of opened. Returns what vim.system would, as vim.ui.open does.
local opened = {}
vim.ui.open = function(url)
  table.insert(opened, url)
  return {
    wait = function()
      return { code = 0, signal = 0, stdout = '', stderr = '' }
    end,
  }, nil
end

-- Pickers: answered by the step's `chooser` (a function of the items and their labels that returns
-- the index to pick), never by a prompt, which would wait for a keyboard.
local selects = {}
local chooser
vim.ui.select = function(items, opts, on_choice)
  local format = opts.format_item or tostring
  local labels = vim.tbl_map(format, items)
  table.insert(selects, { items = items, labels = labels, prompt = opts.prompt })
  local index = chooser and chooser(items, labels)
  on_choice(index and items[index] or nil, index)
end

--- The index of the first label matching `pattern`.
local function pick(pattern)
  return function(_, labels)
    for index, label in ipairs(labels) do
      if label:find(pattern) then
        return index
      end
    end
  end
end

--- The first line (1-based row) and byte column where `text` occurs, searching from `from`.
local function find(bufnr, text, from)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  for row = from or 1, #lines do
    local col = lines[row]:find(text, 1, true)
    if col then
      return row, col - 1
    end
  end
  fail(('`%s` is not in %s'):format(text, vim.api.nvim_buf_get_name(bufnr)))
end

local function buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
end

local function tensorlens_client(bufnr)
  return vim.lsp.get_clients({ name = 'tensorlens', bufnr = bufnr })[1]
end

--- Text of the floating windows open now.
local function floats_text()
  local texts = {}
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(win).relative ~= '' then
      table.insert(texts, buffer_text(vim.api.nvim_win_get_buf(win)))
    end
  end
  return table.concat(texts, '\n')
end

local function close_floats()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(win).relative ~= '' then
      vim.api.nvim_win_close(win, true)
    end
  end
end

--- Hovers with vim.lsp.buf.hover() at `text` in the buffer and returns the float's text once it
--- mentions `expected`.
local function hover_at(bufnr, text, offset, expected)
  if not vim.wait(10000, function()
    return tensorlens_client(bufnr) ~= nil
  end, 20) then
    fail(('no tensorlens client attached to %s'):format(vim.api.nvim_buf_get_name(bufnr)))
  end
  local row, col = find(bufnr, text)
  vim.api.nvim_set_current_buf(bufnr)
  vim.api.nvim_win_set_cursor(0, { row, col + offset })
  close_floats()
  vim.lsp.buf.hover()
  local shown = wait_for(('the hover at `%s` shows %s'):format(text, expected), function()
    local float = floats_text()
    return float:find(expected, 1, true) and float
  end, 10000, floats_text)
  close_floats()
  return shown
end

local function edit(path)
  vim.cmd.edit(vim.fn.fnameescape(path))
  return vim.api.nvim_get_current_buf()
end

--- Lines of a health report: `:checkhealth tensorlens` in a new tab, read, and the tab closed.
local function health_report()
  vim.cmd('silent checkhealth tensorlens')
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  vim.cmd('tabclose')
  return lines
end

local function has_line(lines, pattern)
  for _, line in ipairs(lines) do
    if line:find(pattern) then
      return line
    end
  end
end

local function virtual_texts(bufnr, ns)
  local texts = {}
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })) do
    local chunks = mark[4].virt_text or {}
    local text = table.concat(vim.tbl_map(function(chunk)
      return chunk[1]
    end, chunks))
    table.insert(texts, { row = mark[2], text = text })
  end
  return texts
end

--- Workspace files the fixtures do not have: a user catalog (one good file, one with a mistake)
--- and a script using the in-house library it describes.
local function write_workspace()
  local catalog = work .. '/.tensorlens/catalog'
  vim.fn.mkdir(catalog, 'p')
  vim.fn.writefile({
    '[system]',
    'id = "ourlib"',
    'name = "OurLib"',
    'group = "research"',
    'maintainer = "the team"',
    'summary = "Our in-house kernels."',
    'docs = "https://intranet.example.com/ourlib"',
    'python_modules = ["ourlib"]',
    '',
    '[[symbols]]',
    'name = "ourlib.fused_adam"',
    'kind = "function"',
    'signature = "fused_adam(params, lr)"',
    'summary = "Our fused Adam step."',
    'docs = "https://intranet.example.com/ourlib/fused_adam"',
  }, catalog .. '/ourlib.toml')
  vim.fn.writefile({
    '[system]',
    'id = "mine"',
    'name = "Mine"',
    'group = "research"',
    'maintainer = "me"',
    'summary = "Mine."',
    'docs = "https://example.com"',
    '',
    '[[symbols]]',
    'name = "mine.f"',
    'kind = "gizmo"',
    'summary = "F."',
    'docs = "https://example.com/f"',
  }, catalog .. '/mine.toml')
  vim.fn.writefile({ 'import ourlib', 'ourlib.fused_adam(params, 1e-3)' }, work .. '/use.py')
  vim.fn.mkdir(work .. '/config', 'p')
  vim.fn.writefile({ '[tool]', 'name = "not a catalog"' }, work .. '/config/settings.toml')
end

local steps = {}
local function step(name, fn)
  table.insert(steps, { name = name, fn = fn })
end

local buffers = {}

step('the plugin loads', function()
  check(vim.g.loaded_tensorlens == true, 'plugin/tensorlens.lua ran (vim.g.loaded_tensorlens)')
  local user_commands = vim.api.nvim_get_commands({})
  for _, name in ipairs({
    'TensorlensAnalyze',
    'TensorlensPtx',
    'TensorlensIr',
    'TensorlensTime',
    'TensorlensSearch',
    'TensorlensToolchain',
    'TensorlensRestart',
  }) do
    check(user_commands[name] ~= nil, (':%s exists'):format(name))
  end
  check(vim.fn.maparg('<Plug>(TensorlensAnalyze)', 'x') ~= '', '<Plug>(TensorlensAnalyze) is mapped in visual mode')
end)

step('vim.g.tensorlens is validated field by field', function()
  local config = require('tensorlens.config')
  local resolved, problems = config.resolve({ kernelBlockSize = 'big', nvrtcpath = '/x', virtual_text = false })
  check(#problems == 2, 'two problems for two bad fields', problems)
  check(
    vim.tbl_contains(problems, 'vim.g.tensorlens.kernelBlockSize: expected a whole number from 1 to 1024, got "big"'),
    'a bad value names its field and what was expected',
    problems
  )
  check(
    vim.tbl_contains(problems, 'vim.g.tensorlens.nvrtcpath is not a tensorlens option (did you mean nvrtcPath?)'),
    'a misspelt key is named, with the right spelling',
    problems
  )
  check(
    resolved.virtual_text == false and resolved.kernelBlockSize == nil and resolved.cmd[1] == 'tensorlens',
    'good fields apply, bad ones fall back to defaults',
    resolved
  )
  local _, not_table = config.resolve('tensorlens')
  check(not_table[1] == 'vim.g.tensorlens: expected a table, got "tensorlens"', 'a non-table is reported', not_table)
  vim.g.tensorlens = vim.tbl_extend('force', options, { cudaArch = 'volta' })
  local before = #notifications
  config.get()
  config.get()
  vim.g.tensorlens = options
  local warnings = vim.list_slice(notifications, before + 1)
  check(
    #warnings == 1
      and warnings[1].level == vim.log.levels.WARN
      and warnings[1].message:find('vim.g.tensorlens.cudaArch'),
    'problems are notified once, as a warning naming the field',
    warnings
  )
end)

step('the client attaches to Python and CUDA buffers', function()
  write_workspace()
  buffers.py = edit(work .. '/train.py')
  local client = wait_for('a client named tensorlens attaches to train.py', function()
    return tensorlens_client(buffers.py)
  end)
  buffers.cu = edit(work .. '/gemm.cu')
  check(vim.bo[buffers.cu].filetype == 'cuda', 'gemm.cu has filetype cuda')
  wait_for('the same tensorlens client attaches to gemm.cu', function()
    local on_cu = tensorlens_client(buffers.cu)
    return on_cu and on_cu.id == client.id
  end)
  check(
    client.root_dir == vim.fs.normalize(vim.uv.fs_realpath(work)),
    'the root is the folder holding .tensorlens',
    client.root_dir
  )
  check(
    client.settings.tensorlens and client.settings.tensorlens.nvrtcPath == toolkit,
    'vim.g.tensorlens.nvrtcPath went to the server as settings.tensorlens',
    client.settings
  )
  check(client.offset_encoding == 'utf-8', 'utf-8 positions were negotiated', client.offset_encoding)
end)

step('TOML buffers: only catalog files', function()
  local other = edit(work .. '/config/settings.toml')
  vim.wait(1500)
  check(tensorlens_client(other) == nil, 'a TOML file outside .tensorlens/catalog gets no client')
  local mine = edit(work .. '/.tensorlens/catalog/mine.toml')
  wait_for('a catalog file under .tensorlens/catalog gets the client', function()
    return tensorlens_client(mine)
  end)
  local diagnostic = wait_for('the catalog mistake is an error diagnostic on its line', function()
    for _, d in ipairs(vim.diagnostic.get(mine)) do
      if d.severity == vim.diagnostic.severity.ERROR and d.message:find('gizmo') then
        return d
      end
    end
  end)
  check(diagnostic.lnum == 10, 'at the line of kind = "gizmo"', diagnostic)
  buffers.use = edit(work .. '/use.py')
  hover_at(buffers.use, 'fused_adam', 2, 'Our fused Adam step.')
end)

step('hovers', function()
  local text = hover_at(buffers.py, 'F.gelu', 3, 'torch.nn.functional.gelu')
  check(text:find('PyTorch', 1, true) ~= nil, 'the PyTorch alias hover names the system', text)
  text = hover_at(buffers.cu, 'cudaMalloc(&a', 3, 'cudaMalloc')
  check(
    text:find('cudaError_t cudaMalloc(void **devPtr, size_t size)', 1, true) ~= nil,
    'the CUDA hover has the signature',
    text
  )
end)

step('document links', function()
  local client = tensorlens_client(buffers.cu)
  local params = { textDocument = { uri = vim.uri_from_bufnr(buffers.cu) } }
  local answer = client:request_sync('textDocument/documentLink', params, 10000, buffers.cu)
  check(answer and answer.err == nil and type(answer.result) == 'table', 'textDocument/documentLink answers', answer)
  local links = answer.result
  local all_https = #links > 0
  for _, link in ipairs(links) do
    all_https = all_https and link.target:match('^https://') ~= nil
  end
  check(all_https, ('all %d links are https'):format(#links), links)
  local cublas_row = find(buffers.cu, '#include <cublas_v2.h>')
  local on_include = vim.tbl_filter(function(link)
    return link.range.start.line == cublas_row - 1
  end, links)
  check(
    #on_include == 1 and on_include[1].target:find('docs.nvidia.com/cuda/cublas', 1, true),
    'the cublas_v2.h include links to the cuBLAS docs',
    on_include
  )
end)

step('code actions', function()
  vim.api.nvim_set_current_buf(buffers.cu)
  local row, col = find(buffers.cu, 'cudaMalloc(&a')
  wait_for('the unchecked cudaMalloc has a diagnostic', function()
    return #vim.diagnostic.get(buffers.cu, { lnum = row - 1 }) > 0
  end)
  vim.api.nvim_win_set_cursor(0, { row, col + 2 })
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action)
      return action.title:find('^Check the cudaError_t of cudaMalloc with') ~= nil
    end,
  })
  local fixed = wait_for(
    'the quick fix wraps the call in the check macro',
    function()
      local lines = vim.api.nvim_buf_get_lines(buffers.cu, 0, -1, false)
      for _, line in ipairs(lines) do
        if line == '    CUDA_CHECK(cudaMalloc(&a, n * n * sizeof(float)));' then
          return line
        end
      end
    end,
    10000,
    function()
      return buffer_text(buffers.cu)
    end
  )
  check(fixed ~= nil, 'the line is now `CUDA_CHECK(cudaMalloc(&a, ...));`')
  local text = buffer_text(buffers.cu)
  check(text:find('#define CUDA_CHECK', 1, true) ~= nil, 'the file had no check macro, so one was added')
  check(
    text:find('\n    cudaMalloc(&b, n * n * sizeof(float));', 1, true) ~= nil,
    'the other calls are untouched',
    text
  )

  row, col = find(buffers.cu, 'cudaMalloc(&b')
  vim.api.nvim_win_set_cursor(0, { row, col + 2 })
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action)
      return action.title == 'Open documentation for cudaMalloc'
    end,
  })
  wait_for(
    '"Open documentation" goes through window/showDocument to vim.ui.open',
    function()
      return vim.tbl_contains(opened, 'https://docs.nvidia.com/cuda/cuda-runtime-api/group__CUDART__MEMORY.html')
    end,
    10000,
    function()
      return vim.inspect(opened)
    end
  )
end)

local function lens_titles(bufnr)
  return vim.tbl_map(function(lens)
    return lens.command and lens.command.title or ''
  end, vim.lsp.codelens.get(bufnr))
end

step(':TensorlensAnalyze on a visual selection', function()
  local cu = buffers.cu
  vim.api.nvim_set_current_buf(cu)
  wait_for('an "Analyze" lens is shown on each kernel', function()
    return #vim.tbl_filter(function(title)
      return title == 'Analyze'
    end, lens_titles(cu)) == 2
  end)
  -- Outside any kernel: the server's message is shown.
  local main_row = find(cu, 'int main()')
  vim.api.nvim_win_set_cursor(0, { main_row + 1, 4 })
  vim.cmd('TensorlensAnalyze')
  wait_for('outside a kernel, an error says to put the cursor in one', function()
    return notified('not in a kernel', vim.log.levels.ERROR)
  end)

  local name_row = find(cu, 'sgemm_tiled(int n')
  local body_row = find(cu, 'float acc = 0.0f;')
  vim.api.nvim_win_set_cursor(0, { body_row, 0 })
  vim.cmd('normal! V2j\27')
  -- The cursor leaves the kernel: only the range can say which kernel is meant.
  vim.api.nvim_win_set_cursor(0, { main_row + 1, 4 })
  vim.cmd("'<,'>TensorlensAnalyze")
  local title = wait_for(
    'a code lens reads `sm_90 · N regs · ...`',
    function()
      for _, lens_title in ipairs(lens_titles(cu)) do
        if lens_title:find('^sm_90 · %d+ regs · ') then
          return lens_title
        end
      end
    end,
    30000,
    function()
      return vim.inspect(lens_titles(cu))
    end
  )
  check(title:find('occupancy %d+%%') ~= nil, 'the lens has the occupancy', title)
  -- The lens refresh and the command's reply race each other: wait for the reply too.
  wait_for('the result is notified', function()
    return notified('sgemm_tiled: sm_90 · %d+ regs', vim.log.levels.INFO)
  end)
  wait_for(
    'the result is virtual text at the end of the kernel name’s line',
    function()
      local marks = virtual_texts(cu, require('tensorlens.kernels').ns)
      return #marks == 1 and marks[1].row == name_row - 1 and marks[1].text == title
    end,
    10000,
    function()
      return vim.inspect(virtual_texts(cu, require('tensorlens.kernels').ns))
    end
  )
  local client = tensorlens_client(cu)
  local shown = virtual_texts(cu, vim.lsp.codelens.__namespaces[client.id])
  local on_name = vim.tbl_filter(function(mark)
    return mark.row == name_row - 1
  end, shown)
  check(
    #on_name == 1 and on_name[1].text:find(title, 1, true) ~= nil,
    'Neovim draws the lens on the kernel name’s line',
    shown
  )
end)

step('code lenses run through vim.lsp.codelens.run()', function()
  local cu = buffers.cu
  local name_row = find(cu, 'sgemm_tiled(int n')
  vim.api.nvim_set_current_buf(cu)
  vim.api.nvim_win_set_cursor(0, { name_row, 20 })
  chooser = pick('^sm_90 · %d+ regs')
  vim.lsp.codelens.run()
  local choices = selects[#selects] and selects[#selects].labels
  local result_choice = vim.tbl_filter(function(choice)
    return choice:find('^sm_90 · %d+ regs') ~= nil
  end, choices or {})
  check(
    vim.tbl_contains(choices or {}, 'Analyze') and #result_choice == 1,
    'the line’s lenses are offered: Analyze and the result',
    choices
  )
  local ptx = wait_for('the result lens opens the PTX', function()
    local buf = vim.api.nvim_get_current_buf()
    return vim.api.nvim_buf_get_name(buf):find('tensorlens://ptx/sgemm_tiled.ptx', 1, true) and buf
  end, 30000)
  check(buffer_text(ptx):find('.entry', 1, true) ~= nil, 'the PTX has an .entry')
  vim.cmd('close')

  local warp_row = find(cu, 'warp_sum(const float')
  vim.api.nvim_set_current_buf(cu)
  vim.api.nvim_win_set_cursor(0, { warp_row, 20 })
  -- One lens or several (a picker then): run "Analyze".
  chooser = pick('^Analyze$')
  vim.lsp.codelens.run()
  wait_for('the Analyze lens of warp_sum analyses it', function()
    return notified('warp_sum: sm_90 · %d+ regs')
  end, 30000)
  wait_for('and its lens and virtual text follow', function()
    local marks = virtual_texts(cu, require('tensorlens.kernels').ns)
    return #marks == 2
      and vim.tbl_contains(
        vim.tbl_map(function(mark)
          return mark.row
        end, marks),
        warp_row - 1
      )
  end)
end)

step(':TensorlensPtx', function()
  local cu = buffers.cu
  vim.api.nvim_set_current_buf(cu)
  local row = find(cu, 'atomicAdd(out, v)')
  vim.api.nvim_win_set_cursor(0, { row, 8 })
  vim.cmd('TensorlensPtx')
  local ptx = wait_for('a PTX buffer opens for warp_sum', function()
    local buf = vim.api.nvim_get_current_buf()
    return vim.api.nvim_buf_get_name(buf):find('tensorlens://ptx/warp_sum.ptx', 1, true) and buf
  end, 30000)
  local text = buffer_text(ptx)
  check(text:find('.entry', 1, true) ~= nil and text:find('warp_sum', 1, true) ~= nil, 'it holds the kernel’s .entry')
  check(vim.bo[ptx].filetype == 'ptx', 'filetype=ptx')
  check(vim.bo[ptx].modifiable == false, 'nomodifiable')
  check(vim.bo[ptx].buftype == 'nofile', 'a scratch buffer (buftype=nofile)')
  check(tensorlens_client(ptx) == nil, 'no language server attaches to it')
  vim.cmd('close')
end)

step(':TensorlensTime', function()
  local cu = buffers.cu
  vim.api.nvim_set_current_buf(cu)
  local row = find(cu, 'atomicAdd(out, v)')
  vim.api.nvim_win_set_cursor(0, { row, 8 })
  vim.cmd('TensorlensTime')
  -- This machine has no GPU: the answer names what is missing and the launcher setting. (On a GPU
  -- machine the run succeeds and the notification carries the time instead.)
  local message = wait_for('the timing answer is notified', function()
    return notified('warp_sum: no NVIDIA driver') or notified('warp_sum: ⏱ ')
  end, 60000)
  if message.message:find('no NVIDIA driver', 1, true) then
    local names = message.message:find('timingLauncher', 1, true) ~= nil
    check(names, 'without a GPU it names the timingLauncher setting', message.message)
  end
  wait_for('and the timing is virtual text at the kernel', function()
    for _, mark in ipairs(virtual_texts(cu, require('tensorlens.kernels').ns)) do
      if mark.text:find('no NVIDIA driver', 1, true) or mark.text:find('⏱', 1, true) then
        return mark
      end
    end
  end)
  wait_for('and a timing lens', function()
    for _, lens in ipairs(vim.lsp.codelens.get(cu)) do
      if lens.command and lens.command.title:find('⏱', 1, true) then
        return lens
      end
    end
  end)
end)

--- Restarts the server (with vim.g.tensorlens and the vim.lsp.config as they are now) and returns the
--- new client once it is attached to `bufnr`.
local function restart_for(bufnr)
  local old = tensorlens_client(bufnr)
  local restarted = false
  require('tensorlens').restart(function()
    restarted = true
  end)
  return wait_for('the server restarts', function()
    local new = restarted and tensorlens_client(bufnr)
    return new and new.id ~= old.id and new.initialized and new
  end, 15000)
end

--- The first notification since the `from`-th matching `pattern`.
local function notified_since(from, pattern, level)
  for index = from + 1, #notifications do
    local n = notifications[index]
    if n.message:find(pattern) and (level == nil or n.level == level) then
      return n
    end
  end
end

step('a Triton kernel: the Analyze lens, run, and its result', function()
  local py = edit(work .. '/vector_add.py')
  buffers.triton = py
  wait_for('the client attaches to vector_add.py', function()
    return tensorlens_client(py)
  end)
  local name_row = find(py, 'def add_kernel')
  wait_for('an "Analyze" lens on the @triton.jit kernel’s name', function()
    for _, lens in ipairs(vim.lsp.codelens.get(py)) do
      if lens.command and lens.command.title == 'Analyze' and lens.range.start.line == name_row - 1 then
        return lens
      end
    end
  end)
  vim.api.nvim_set_current_buf(py)
  vim.api.nvim_win_set_cursor(0, { name_row, 4 })
  chooser = pick('^Analyze$')
  vim.lsp.codelens.run()
  local note = wait_for('the real Triton compiles it: its registers and occupancy are notified', function()
    return notified('^tensorlens: add_kernel: sm_90 · %d+ regs · 0 B spill · ')
  end, 60000)
  check(note.message:find('occupancy %d+%%') ~= nil and note.level == vim.log.levels.INFO, 'with the occupancy', note)
  local title = wait_for('the result lens reads the same', function()
    for _, lens_title in ipairs(lens_titles(py)) do
      if lens_title:find('^sm_90 · %d+ regs') then
        return lens_title
      end
    end
  end)
  check(note.message == 'tensorlens: add_kernel: ' .. title, 'one config: the notification is the lens', note)
  wait_for('and it is virtual text on the kernel name’s line', function()
    for _, mark in ipairs(virtual_texts(py, require('tensorlens.kernels').ns)) do
      if mark.row == name_row - 1 and mark.text == title then
        return mark
      end
    end
  end)
  local hover = hover_at(py, 'add_kernel(x_ptr', 2, '(Triton)')
  check(
    hover:find('| BLOCK_SIZE=1024 num_warps=4 num_stages=3 | %d+ | 0 B / 0 B |') ~= nil,
    'the hover has the configuration’s row: registers and spills',
    hover
  )
end)

step('a second launch, saved, is a second Triton configuration', function()
  local py = buffers.triton
  local launch = find(py, 'BLOCK_SIZE=1024)')
  local second = '    add_kernel[(triton.cdiv(n, 256),)](x, y, out, n, BLOCK_SIZE=256, num_warps=2)'
  vim.api.nvim_buf_set_lines(py, launch, launch, false, { second })
  vim.api.nvim_buf_call(py, function()
    vim.cmd('silent write')
  end)
  check(vim.fn.readfile(work .. '/vector_add.py')[launch + 1] == second, 'the file is saved with it')
  local title = wait_for(
    'the server analyses the kernel again on save, and the lens compares both',
    function()
      for _, lens_title in ipairs(lens_titles(py)) do
        if lens_title:find('^2 configs · best %d+%%') then
          return lens_title
        end
      end
    end,
    60000,
    function()
      return vim.inspect(lens_titles(py))
    end
  )
  check(
    title:find('(BLOCK_SIZE=256 num_warps=2 num_stages=3)', 1, true) ~= nil
      and title:find('(BLOCK_SIZE=1024 num_warps=4 num_stages=3)', 1, true) ~= nil,
    'naming the best and the worst',
    title
  )
  local before = #notifications
  vim.api.nvim_set_current_buf(py)
  vim.api.nvim_win_set_cursor(0, { find(py, 'tl.store'), 4 })
  vim.cmd('TensorlensAnalyze')
  local note = wait_for(':TensorlensAnalyze notifies a line per configuration', function()
    return notified_since(before, '^tensorlens: add_kernel: 2 configs')
  end, 30000)
  local lines = vim.split(note.message, '\n')
  check(
    #lines == 3
      and lines[2]:find('^  BLOCK_SIZE=1024 num_warps=4 num_stages=3: sm_90 · %d+ regs · ') ~= nil
      and lines[3]:find('^  BLOCK_SIZE=256 num_warps=2 num_stages=3: sm_90 · %d+ regs · ') ~= nil,
    'each with its registers',
    lines
  )
end)

step(':TensorlensIr on a Triton kernel: the kind, then which configuration', function()
  local py = buffers.triton
  vim.api.nvim_set_current_buf(py)
  vim.api.nvim_win_set_cursor(0, { find(py, 'tl.store'), 4 })
  local before = #selects
  chooser = function(items, labels)
    return items[1] == 'ttir' and pick('^TTGIR')(items, labels) or pick('BLOCK_SIZE=256')(items, labels)
  end
  vim.cmd('TensorlensIr')
  local name = 'tensorlens://ir/add_kernel (BLOCK_SIZE=256 num_warps=2 num_stages=3).ttgir'
  local ir = wait_for(
    'the TTGIR of the second configuration opens',
    function()
      local buf = vim.api.nvim_get_current_buf()
      return vim.api.nvim_buf_get_name(buf) == name and buf
    end,
    60000,
    function()
      return vim.api.nvim_buf_get_name(0)
    end
  )
  local kinds, configs = selects[before + 1], selects[before + 2]
  check(
    kinds and vim.deep_equal(kinds.items, { 'ttir', 'ttgir', 'llir', 'ptx', 'sass' }),
    'the five kinds of a Triton kernel were offered',
    kinds
  )
  check(
    configs
      and #configs.labels == 2
      and configs.labels[1]:find('^1: BLOCK_SIZE=1024 num_warps=4 num_stages=3  sm_90 · %d+ regs') ~= nil
      and configs.labels[2]:find('^2: BLOCK_SIZE=256 num_warps=2 num_stages=3  sm_90 · %d+ regs') ~= nil,
    'then its two configurations, with their registers',
    configs
  )
  local text = buffer_text(ir)
  check(
    text:find('tt.func', 1, true) ~= nil and text:find('#ttg', 1, true) ~= nil,
    'it is TTGIR: tt.func, #ttg layouts'
  )
  check(text:find('"ttg.num-warps" = 2', 1, true) ~= nil, 'compiled for that configuration: num-warps 2')
  check(vim.bo[ir].filetype == 'mlir', 'filetype=mlir', vim.bo[ir].filetype)
  check(vim.bo[ir].modifiable == false and vim.bo[ir].buftype == 'nofile', 'a read-only scratch buffer')
  check(tensorlens_client(ir) == nil, 'no language server attaches to it')
  vim.cmd('close')

  vim.api.nvim_set_current_buf(buffers.cu)
  vim.api.nvim_win_set_cursor(0, { find(buffers.cu, 'atomicAdd(out, v)'), 8 })
  vim.cmd('TensorlensIr ttgir')
  wait_for('a CUDA kernel has no TTGIR, and the message says what it has', function()
    return notified('no IR ttgir for this kernel; it has ptx, sass', vim.log.levels.ERROR)
  end)
  vim.cmd('TensorlensIr sass')
  local sass = wait_for('its SASS opens', function()
    local buf = vim.api.nvim_get_current_buf()
    return vim.api.nvim_buf_get_name(buf) == 'tensorlens://ir/warp_sum.sass' and buf
  end, 60000)
  text = buffer_text(sass)
  check(text:find('SHFL.DOWN', 1, true) ~= nil and text:find('EXIT', 1, true) ~= nil, 'machine code: SHFL.DOWN, EXIT')
  check(vim.bo[sass].filetype == 'nvidia-sass', 'filetype=nvidia-sass (not Vim’s sass, the CSS one)')
  vim.cmd('close')
end)

step('an untrusted project: a Python outside it compiles Triton kernels, one inside it is refused', function()
  local py = buffers.triton
  -- What :help tensorlens-trust tells users to write for a project they do not trust.
  vim.lsp.config('tensorlens', { settings = { tensorlens = { workspaceTrusted = false } } })
  local client = restart_for(py)
  check(client.settings.tensorlens.workspaceTrusted == false, 'the server is told the project is not trusted')
  local before = #notifications
  vim.api.nvim_set_current_buf(py)
  vim.api.nvim_win_set_cursor(0, { find(py, 'tl.store'), 4 })
  vim.cmd('TensorlensAnalyze')
  wait_for('the venv outside the project compiles the kernel', function()
    return notified_since(before, '^tensorlens: add_kernel: 2 configs')
  end, 60000)

  local inside = work .. '/.venv/bin/python'
  vim.fn.mkdir(work .. '/.venv/bin', 'p')
  assert(vim.uv.fs_symlink(python, inside))
  vim.g.tensorlens = vim.tbl_extend('force', options, { pythonPath = inside })
  restart_for(py)
  before = #notifications
  vim.api.nvim_set_current_buf(py)
  vim.api.nvim_win_set_cursor(0, { find(py, 'tl.store'), 4 })
  vim.cmd('TensorlensAnalyze')
  local refused = wait_for('a Python inside the project is not run', function()
    return notified_since(before, 'was not used', vim.log.levels.ERROR)
  end, 30000)
  check(
    refused.message:find(inside .. ' was not used: it lies inside the workspace folder', 1, true) ~= nil,
    'and the message says which and why',
    refused.message
  )
  vim.g.tensorlens = options
  vim.lsp.config('tensorlens', { settings = { tensorlens = { workspaceTrusted = true } } })
  restart_for(py)
end)

step(':TensorlensSearch', function()
  chooser = function(entries)
    for index, entry in ipairs(entries) do
      if entry.name == 'torch.matmul' then
        return index
      end
    end
  end
  local before = #selects
  vim.cmd('TensorlensSearch matmul')
  local shown = wait_for('the results are offered with vim.ui.select', function()
    return selects[before + 1]
  end)
  local items, labels, prompt = shown.items, shown.labels, shown.prompt
  local names = vim.tbl_map(function(entry)
    return entry.name
  end, items)
  check(vim.tbl_contains(names, 'torch.matmul'), 'torch.matmul is among them', names)
  check(vim.tbl_contains(names, 'jax.numpy.matmul'), 'and jax.numpy.matmul', names)
  check(prompt:find(('%d catalog symbols'):format(#items), 1, true) ~= nil, 'the prompt counts them', prompt)
  check(
    vim.tbl_contains(
      labels,
      'torch.matmul  (PyTorch · function)  ' .. items[vim.fn.index(names, 'torch.matmul') + 1].summary
    ),
    'each item shows name, system, kind and summary',
    labels
  )
  wait_for('choosing torch.matmul opens its documentation with vim.ui.open', function()
    return opened[#opened] == 'https://pytorch.org/docs/stable/generated/torch.matmul.html'
  end)
  vim.cmd('TensorlensSearch zzqqxxnothing')
  wait_for('a search with no results says so', function()
    return notified('no catalog symbols for', vim.log.levels.WARN)
  end)
end)

step(':TensorlensToolchain', function()
  vim.cmd('TensorlensToolchain')
  local note = wait_for('it reports the toolchain', function()
    return notified('^tensorlens: NVRTC 13%.')
  end)
  check(note.level == vim.log.levels.INFO, 'as information, since nothing is missing', note)
  check(note.message:find('ptxas: ' .. toolkit .. '/bin/ptxas', 1, true) ~= nil, 'it names ptxas', note.message)
  check(note.message:find('GPU: none; compiling for sm_90', 1, true) ~= nil, 'and the GPU state', note.message)
  -- What an untrusted workspace's answer adds: each path passed over, on a line of its own.
  local lines = require('tensorlens').toolchain_lines({
    nvrtc = { Err = 'not found' },
    ptxas = { Ok = '/usr/bin/ptxas' },
    ignored = { 'the `ptxasPath` setting /ws/ptxas was not used' },
  })
  check(lines[#lines] == 'ignored: the `ptxasPath` setting /ws/ptxas was not used', 'ignored paths are listed', lines)
end)

step(':checkhealth tensorlens', function()
  local lines = health_report()
  local report = table.concat(lines, '\n')
  for _, line in ipairs(lines) do
    if line:find('^%- ') or line:find('~$') then
      say('    | ' .. line)
    end
  end
  check(has_line(lines, 'OK vim.g.tensorlens is valid'), 'OK: the options', report)
  check(
    has_line(lines, 'OK tensorlens %d+%.%d+%.%d+ %(' .. vim.pesc(bin) .. '%)'),
    'OK: the binary and its version',
    report
  )
  check(has_line(lines, 'OK NVRTC 13%.%d+: ' .. vim.pesc(toolkit)), 'OK: NVRTC', report)
  check(has_line(lines, 'OK ptxas: ' .. vim.pesc(toolkit)), 'OK: ptxas', report)
  check(has_line(lines, 'WARNING no GPU found'), 'WARNING: no GPU', report)
  check(not has_line(lines, 'ERROR'), 'no errors', report)

  vim.g.tensorlens = vim.tbl_extend('force', options, { nvrtcPath = '/nonexistent', kernelBlockSize = 0 })
  lines = health_report()
  vim.g.tensorlens = options
  report = table.concat(lines, '\n')
  check(has_line(lines, 'ERROR NVRTC: .*/nonexistent'), 'ERROR: NVRTC when nvrtcPath names nothing', report)
  check(has_line(lines, 'pip install nvidia%-cuda%-nvrtc'), 'with the pip command as advice', report)
  check(has_line(lines, 'ERROR vim.g.tensorlens.kernelBlockSize'), 'ERROR: a bad option, by name', report)

  -- No nvrtcPath and no CUDA anywhere the server looks (tests/neovim/run clears CUDA_HOME and friends):
  -- a missing install, so a warning with the pip command.
  local bare = vim.system({ bin, 'kernel', 'toolchain', '--json' }, { text = true }):wait()
  if vim.json.decode(bare.stdout).nvrtc.Err then
    vim.g.tensorlens = { cmd = options.cmd }
    lines = health_report()
    vim.g.tensorlens = options
    report = table.concat(lines, '\n')
    check(has_line(lines, 'WARNING NVRTC: .*not found'), 'WARNING: NVRTC when none is installed', report)
    check(has_line(lines, 'pip install nvidia%-cuda%-nvrtc'), 'with the pip command as advice', report)
    check(not has_line(lines, 'ERROR'), 'and no error, since nothing is misconfigured', report)
  else
    say('    skipped: the warning for a missing NVRTC (this machine has one where the server looks)')
  end
end)

step(':help tensorlens', function()
  -- Tags are made for a scratch copy of doc/, so the repository gets no doc/tags.
  local help_root = vim.fn.tempname()
  vim.fn.mkdir(help_root .. '/doc', 'p')
  vim.fn.writefile(vim.fn.readfile(repo .. '/editors/neovim/doc/tensorlens.txt'), help_root .. '/doc/tensorlens.txt')
  local made, err = pcall(vim.cmd.helptags, help_root .. '/doc')
  check(made, ':helptags accepts the doc (no duplicate tags)', err)
  vim.opt.runtimepath:append(help_root)
  vim.cmd('help tensorlens')
  check(vim.bo.buftype == 'help' and vim.api.nvim_buf_get_name(0):find('tensorlens.txt$'), ':help tensorlens opens it')
  check(vim.api.nvim_get_current_line():find('*tensorlens*', 1, true) ~= nil, 'at the *tensorlens* tag')
  local unresolved = {}
  for reference in buffer_text(0):gmatch('|([^|%s]+)|') do
    if #vim.fn.taglist('^' .. vim.fn.escape(reference, '\\^$.*[]~') .. '$') == 0 then
      table.insert(unresolved, reference)
    end
  end
  check(#unresolved == 0, 'every |link| in it resolves to a tag', unresolved)
  for _, topic in ipairs({
    ':TensorlensAnalyze',
    ':TensorlensIr',
    'tensorlens-options',
    'g:tensorlens',
    'tensorlens-health',
    'tensorlens-trust',
  }) do
    vim.cmd.help(topic)
    check(vim.api.nvim_buf_get_name(0):find('tensorlens.txt$') ~= nil, (':help %s'):format(topic))
  end
  vim.cmd('helpclose')
end)

step(':TensorlensRestart', function()
  local old = tensorlens_client(buffers.cu)
  local restarted = false
  require('tensorlens').restart(function()
    restarted = true
  end)
  wait_for('the old client stops', function()
    return restarted and vim.lsp.get_client_by_id(old.id) == nil
  end)
  local new = wait_for('a new client attaches to gemm.cu and train.py', function()
    local on_cu, on_py = tensorlens_client(buffers.cu), tensorlens_client(buffers.py)
    return on_cu and on_py and on_cu.id ~= old.id and on_cu.id == on_py.id and on_cu.initialized and on_cu
  end)
  check(#virtual_texts(buffers.cu, require('tensorlens.kernels').ns) == 0, 'the old analyses’ virtual text is gone')
  hover_at(buffers.py, 'F.gelu', 3, 'torch.nn.functional.gelu')
  check(new.settings.tensorlens.nvrtcPath == toolkit, 'the new client has the settings')
end)

step('the server crashes', function()
  local old = tensorlens_client(buffers.cu)
  local servers = vim.api.nvim_get_proc_children(vim.fn.getpid())
  check(#servers == 1, 'one server process runs, a child of Neovim', servers)
  vim.uv.kill(servers[1], 'sigkill')
  wait_for('Neovim drops the client', function()
    return vim.lsp.get_client_by_id(old.id) == nil and tensorlens_client(buffers.cu) == nil
  end)
  vim.cmd('TensorlensRestart')
  wait_for(':TensorlensRestart starts a new one for the buffers', function()
    local client = tensorlens_client(buffers.cu)
    return client and client.initialized and tensorlens_client(buffers.py)
  end)
  hover_at(buffers.cu, 'cudaMalloc(&b', 3, 'cudaMalloc')
end)

step('virtual_text = false', function()
  vim.g.tensorlens = vim.tbl_extend('force', options, { virtual_text = false })
  local cu = buffers.cu
  vim.api.nvim_set_current_buf(cu)
  vim.api.nvim_win_set_cursor(0, { find(cu, 'float acc = 0.0f;'), 4 })
  vim.cmd('TensorlensAnalyze')
  wait_for('the lens still shows the result', function()
    for _, title in ipairs(lens_titles(cu)) do
      if title:find('^sm_90 · %d+ regs') then
        return true
      end
    end
  end, 30000)
  vim.wait(300)
  check(#virtual_texts(cu, require('tensorlens.kernels').ns) == 0, 'but no virtual text is drawn')
  vim.g.tensorlens = options
end)

--- The command line (argv) of the tensorlens server processes Neovim started.
local function server_argv0s()
  local found = {}
  for _, pid in ipairs(vim.api.nvim_get_proc_children(vim.fn.getpid())) do
    local file = io.open(('/proc/%d/cmdline'):format(pid), 'rb')
    if file then
      local argv = vim.split(file:read('*a'), '\0', { plain = true })
      file:close()
      if argv[2] == 'serve' then
        table.insert(found, argv[1])
      end
    end
  end
  return found
end

--- Waits until every tensorlens server Neovim runs was started as `argv0` (a stopped one may take a
--- moment to exit).
local function servers_run_from(argv0, what)
  wait_for(
    what,
    function()
      local argv0s = server_argv0s()
      return #argv0s > 0 and #vim.tbl_filter(function(a)
        return a ~= argv0
      end, argv0s) == 0
    end,
    5000,
    function()
      return vim.inspect(server_argv0s())
    end
  )
end

step('the tensorlens of the active virtual environment; not one inside an untrusted project', function()
  local py = buffers.py
  local saved_path = vim.env.PATH
  -- As `pip install tensorlens` lays out an environment outside the project, and no cmd given.
  local outside = vim.fn.tempname() .. '-venv'
  vim.fn.mkdir(outside .. '/bin', 'p')
  assert(vim.uv.fs_symlink(bin, outside .. '/bin/tensorlens'))
  local without_cmd = vim.deepcopy(options)
  without_cmd.cmd = nil
  vim.g.tensorlens = without_cmd
  vim.env.VIRTUAL_ENV = outside
  restart_for(py)
  servers_run_from(outside .. '/bin/tensorlens', 'the server runs from $VIRTUAL_ENV/bin/tensorlens')
  check(has_line(health_report(), 'binary from %$VIRTUAL_ENV'), ':checkhealth says where the binary came from')

  -- The same in a project not trusted, with the environment inside it (a `.venv` a cloned repository
  -- brought): passed over, with a warning, for the tensorlens on PATH.
  local inside = work .. '/.venv-cloned'
  vim.fn.mkdir(inside .. '/bin', 'p')
  assert(vim.uv.fs_symlink(bin, inside .. '/bin/tensorlens'))
  local path_dir = vim.fn.tempname() .. '-path'
  vim.fn.mkdir(path_dir, 'p')
  assert(vim.uv.fs_symlink(bin, path_dir .. '/tensorlens'))
  vim.env.PATH = path_dir .. ':' .. saved_path
  vim.env.VIRTUAL_ENV = inside
  vim.lsp.config('tensorlens', { settings = { tensorlens = { workspaceTrusted = false } } })
  local before = #notifications
  restart_for(py)
  local warned = notified_since(before, 'not trusted, so it was not run', vim.log.levels.WARN)
  check(
    warned ~= nil and warned.message:find(inside .. '/bin/tensorlens', 1, true) ~= nil,
    'the binary inside the untrusted project is named, with why',
    warned and warned.message or notifications
  )
  servers_run_from('tensorlens', 'and the one on PATH runs instead')

  -- Trusted, the project's environment is the user's choice.
  vim.lsp.config('tensorlens', { settings = { tensorlens = { workspaceTrusted = true } } })
  restart_for(py)
  servers_run_from(inside .. '/bin/tensorlens', 'a trusted project may run its own')

  vim.env.VIRTUAL_ENV = nil
  vim.env.PATH = saved_path
  vim.fn.delete(inside, 'rf')
  vim.g.tensorlens = options
  restart_for(py)
end)

step('a missing binary', function()
  vim.g.tensorlens = { cmd = { '/nonexistent/tensorlens', 'serve' } }
  local before = #notifications
  local restarted = false
  require('tensorlens').restart(function()
    restarted = true
  end)
  wait_for('the running client stops', function()
    return restarted and #vim.lsp.get_clients({ name = 'tensorlens' }) == 0
  end)
  edit(work .. '/missing.py')
  edit(work .. '/kernels/softmax.cu')
  vim.wait(1500)
  local fresh = vim.list_slice(notifications, before + 1)
  local errors = vim.tbl_filter(function(n)
    return n.level >= vim.log.levels.ERROR
  end, fresh)
  check(#errors == 1, 'exactly one error notification for all the buffers', fresh)
  local message = errors[1].message
  check(message:find('/nonexistent/tensorlens', 1, true) ~= nil, 'it names the binary', message)
  check(message:find('cargo install --path server', 1, true) ~= nil, 'says how to install it', message)
  check(
    message:find('vim.g.tensorlens = { cmd =', 1, true) ~= nil,
    'and how to point vim.g.tensorlens.cmd at it',
    message
  )
  check(#fresh == 1, 'and nothing else was notified (no spawn warning, no stack trace)', fresh)
  check(#vim.lsp.get_clients({ name = 'tensorlens' }) == 0, 'no client is left half-started')
  local lines = health_report()
  check(
    has_line(lines, 'ERROR the server binary `/nonexistent/tensorlens` was not found'),
    ':checkhealth tensorlens reports it as an error',
    lines
  )
end)

local function finish(code, message)
  if message then
    say(message)
  end
  -- Leave no server behind.
  for _, client in ipairs(vim.lsp.get_clients()) do
    client:stop(true)
  end
  vim.cmd(code == 0 and 'qall!' or ('cquit ' .. code))
end

-- A hung step must not hang the run.
local deadline = assert(vim.uv.new_timer())
deadline:start(100000, 0, function()
  io.stderr:write('FAILED: the Neovim tests did not finish within 100 s\n')
  os.exit(3)
end)

vim.api.nvim_create_autocmd('VimEnter', {
  once = true,
  callback = function()
    -- Outside the autocommand, so that :edit runs the FileType autocommands that start the server.
    vim.schedule(function()
      for _, current in ipairs(steps) do
        say(current.name)
        local done, err = xpcall(current.fn, function(e)
          return type(e) == 'table' and e.failure or debug.traceback(tostring(e), 2)
        end)
        if not done then
          return finish(1, ('FAILED in "%s": %s'):format(current.name, err))
        end
      end
      local seconds = (vim.uv.hrtime() - started) / 1e9
      finish(0, ('all %d Neovim checks passed in %.1f s'):format(passed, seconds))
    end)
  end,
})
