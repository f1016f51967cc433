-- The plugin's options: the `vim.g.tensorlens` table merged over the defaults and checked field by
-- field, so that no `setup()` call is needed. A bad field is reported with its path and replaced by
-- its default; the rest of the table still applies.

local M = {}

---@class tensorlens.Config
---@field cmd string[] How to start the server.
---@field cmd_env? table<string, string> Extra environment for the server (`TENSORLENS_LOG = 'debug'`).
---@field virtual_text boolean Show analysis results as virtual text at the kernel's name.
---@field codelens boolean Request and show the server's code lenses (Analyze, the kernel's resources).
---@field catalogPaths? string[] Extra folders of catalog TOML files.
---@field shapeHints? boolean Inlay hints with the shape of each tensor a line assigns (default true).
---@field cudaArch? string Target architecture when no GPU says otherwise (`sm_90`).
---@field nvrtcPath? string libnvrtc.so, or a folder holding it.
---@field ptxasPath? string The ptxas binary, or its folder.
---@field pythonPath? string The Python, with triton installed, that compiles Triton kernels.
---@field cudaIncludePaths? string[] Extra include folders for kernel compiles.
---@field nvrtcFlags? string[] Extra NVRTC options (`-DTILE=32`).
---@field kernelBlockSize? integer Block size for occupancy when no launch or annotation gives one.
---@field kernelTemplateArgs? table<string, string> Template arguments per kernel name.
---@field timingLauncher? string[] Command prefix that runs the timing worker on a GPU host (`{ 'ssh', 'gpu-host' }`).
---@field timingWorker? string The tensorlens binary on the far side of the launcher.
---@field timingSeconds? number Time budget of one measurement (15 s).
---@field timingNoise? number Relative noise at which sampling stops (0.005).
---@field timingHot? boolean Keep L2 warm between samples.

--- The server's own settings, sent under the same camelCase names: the ones users set from the table
--- in server/src/settings.rs (`tensorlens settings` lists them), whose tests check this list, the
--- schema below and path_keys against it.
M.server_keys = {
  'catalogPaths',
  'shapeHints',
  'cudaArch',
  'nvrtcPath',
  'ptxasPath',
  'pythonPath',
  'cudaIncludePaths',
  'nvrtcFlags',
  'kernelBlockSize',
  'kernelTemplateArgs',
  'timingLauncher',
  'timingWorker',
  'timingSeconds',
  'timingNoise',
  'timingHot',
}

--- Settings that name files or folders: `~` and `$VARS` are expanded before the server sees them.
local path_keys = {
  catalogPaths = true,
  nvrtcPath = true,
  ptxasPath = true,
  pythonPath = true,
  cudaIncludePaths = true,
}

---@return tensorlens.Config
function M.defaults()
  return { cmd = { 'tensorlens', 'serve' }, virtual_text = true, codelens = true }
end

local function is_string_list(value, non_empty)
  if type(value) ~= 'table' or (non_empty and #value == 0) then
    return false
  end
  for key, item in pairs(value) do
    if type(key) ~= 'number' or type(item) ~= 'string' or item == '' then
      return false
    end
  end
  return #value == vim.tbl_count(value)
end

local function is_string_map(value)
  if type(value) ~= 'table' then
    return false
  end
  for key, item in pairs(value) do
    if type(key) ~= 'string' or type(item) ~= 'string' then
      return false
    end
  end
  return true
end

local function non_empty_string(value)
  return type(value) == 'string' and value ~= ''
end

--- One entry per option: a check and what the message says was expected. Later options add a line.
---@type table<string, {check: fun(value: any): boolean, expected: string}>
M.schema = {
  cmd = {
    check = function(value)
      return is_string_list(value, true)
    end,
    expected = "a non-empty list of strings, like { 'tensorlens', 'serve' }",
  },
  cmd_env = { check = is_string_map, expected = 'a table of environment variables (strings to strings)' },
  virtual_text = {
    check = function(value)
      return type(value) == 'boolean'
    end,
    expected = 'true or false',
  },
  codelens = {
    check = function(value)
      return type(value) == 'boolean'
    end,
    expected = 'true or false',
  },
  catalogPaths = { check = is_string_list, expected = 'a list of folders' },
  shapeHints = {
    check = function(value)
      return type(value) == 'boolean'
    end,
    expected = 'true or false',
  },
  cudaArch = {
    check = function(value)
      return type(value) == 'string' and value:match('^sm_%d+%a?$') ~= nil
    end,
    expected = "an architecture like 'sm_90'",
  },
  nvrtcPath = { check = non_empty_string, expected = 'the path of libnvrtc.so or of a folder holding it' },
  ptxasPath = { check = non_empty_string, expected = 'the path of ptxas or of its folder' },
  pythonPath = { check = non_empty_string, expected = 'the path of a Python that has triton' },
  cudaIncludePaths = { check = is_string_list, expected = 'a list of folders' },
  nvrtcFlags = { check = is_string_list, expected = "a list of strings, like { '-DTILE=32' }" },
  kernelBlockSize = {
    check = function(value)
      return type(value) == 'number' and value == math.floor(value) and value >= 1 and value <= 1024
    end,
    expected = 'a whole number from 1 to 1024',
  },
  kernelTemplateArgs = {
    check = is_string_map,
    expected = "a table of kernel names to template arguments, like { scan = 'float, 256' }",
  },
  timingLauncher = { check = is_string_list, expected = "a command prefix, like { 'ssh', 'gpu-host' }" },
  timingWorker = { check = non_empty_string, expected = 'the tensorlens binary on the GPU host' },
  timingSeconds = {
    check = function(value)
      return type(value) == 'number' and value >= 0.5
    end,
    expected = 'a number of seconds, at least 0.5',
  },
  timingNoise = {
    check = function(value)
      return type(value) == 'number' and value > 0 and value < 0.5
    end,
    expected = 'a fraction like 0.005 (0.5%)',
  },
  timingHot = {
    check = function(value)
      return type(value) == 'boolean'
    end,
    expected = 'true or false',
  },
}

local function show(value)
  return vim.inspect(value, { newline = ' ', indent = '' })
end

--- Merges `user` (the value of `vim.g.tensorlens`) over the defaults.
---@param user any
---@return tensorlens.Config config
---@return string[] problems One message per bad field, naming it as `vim.g.tensorlens.<field>`.
function M.resolve(user)
  local config = M.defaults()
  local problems = {}
  if type(user) == 'function' then
    local ok, value = pcall(user)
    if not ok then
      return config, { ('vim.g.tensorlens: the function raised an error: %s'):format(value) }
    end
    user = value
  end
  if user == nil then
    return config, problems
  end
  if type(user) ~= 'table' then
    return config, { ('vim.g.tensorlens: expected a table, got %s'):format(show(user)) }
  end
  local lower = {}
  for name in pairs(M.schema) do
    lower[name:lower()] = name
  end
  for key, value in vim.spairs(user) do
    local field = 'vim.g.tensorlens.' .. tostring(key)
    local spec = M.schema[key]
    if not spec then
      local near = type(key) == 'string' and lower[key:lower()]
      local hint = near and (' (did you mean %s?)'):format(near) or ''
      table.insert(problems, ('%s is not a tensorlens option%s'):format(field, hint))
    elseif value == vim.NIL then
      config[key] = nil
    elseif not spec.check(value) then
      table.insert(problems, ('%s: expected %s, got %s'):format(field, spec.expected, show(value)))
    else
      config[key] = vim.deepcopy(value)
    end
  end
  return config, problems
end

local reported = {}

--- The options in force now: `vim.g.tensorlens` is read on every call, so a change applies to the
--- next server start without reloading anything. Problems are notified once each.
---@return tensorlens.Config config
---@return string[] problems
function M.get()
  local config, problems = M.resolve(vim.g.tensorlens)
  local fresh = vim.tbl_filter(function(problem)
    return not reported[problem]
  end, problems)
  if #fresh > 0 then
    for _, problem in ipairs(fresh) do
      reported[problem] = true
    end
    vim.notify(
      'tensorlens: ' .. table.concat(fresh, '\n') .. '\n(the defaults are used for these; see :help tensorlens-options)',
      vim.log.levels.WARN
    )
  end
  return config, problems
end

--- What the server is sent (initializationOptions and workspace/didChangeConfiguration): only the
--- settings that are set, with paths expanded.
---@param config tensorlens.Config
---@return table<string, any>
function M.server_settings(config)
  local settings = {}
  for _, key in ipairs(M.server_keys) do
    local value = config[key]
    if value ~= nil and path_keys[key] then
      if type(value) == 'table' then
        value = vim.tbl_map(vim.fs.normalize, value)
      else
        value = vim.fs.normalize(value)
      end
    end
    -- An empty Lua table would be sent as a JSON array, which the server rejects as a map.
    if key == 'kernelTemplateArgs' and value ~= nil and next(value) == nil then
      value = nil
    end
    settings[key] = value
  end
  return settings
end

return M
