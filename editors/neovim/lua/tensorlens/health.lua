-- :checkhealth tensorlens: the options, the server binary, and the CUDA pieces kernel analysis needs,
-- found by the binary itself (`tensorlens kernel toolchain --json` with the configured paths), so the
-- report is what the server would use and can be re-run after changing vim.g.tensorlens.

local M = {}

local health = vim.health

local PIP_CUDA = 'pip install nvidia-cuda-nvrtc nvidia-cuda-nvcc nvidia-cuda-runtime'

--- Runs a command to its end or the time-out.
---@param args string[]
---@param timeout integer milliseconds
---@param env? table<string, string>
---@return {code: integer, stdout: string, stderr: string}
local function run(args, timeout, env)
  local ok, process = pcall(vim.system, args, { text = true, env = env })
  if not ok then
    return { code = -1, stdout = '', stderr = tostring(process) }
  end
  local result = process:wait(timeout)
  if result.signal ~= 0 and result.code == 124 then
    result.stderr = ('no answer within %d s'):format(timeout / 1000)
  end
  return { code = result.code, stdout = result.stdout or '', stderr = vim.trim(result.stderr or '') }
end

local function check_options()
  health.start('tensorlens: options (vim.g.tensorlens)')
  local config, problems = require('tensorlens.config').resolve(vim.g.tensorlens)
  if #problems == 0 then
    health.ok(
      vim.g.tensorlens == nil and 'vim.g.tensorlens is not set: the defaults are used' or 'vim.g.tensorlens is valid'
    )
  end
  for _, problem in ipairs(problems) do
    health.error(problem, { 'the default is used instead; see :help tensorlens-options' })
  end
  return config
end

---@param config tensorlens.Config
---@return string? exe
local function check_binary(config)
  health.start('tensorlens: server')
  local root = vim.fs.root(0, require('tensorlens').root_markers)
  local cmd, source, skipped = require('tensorlens').server_cmd(root)
  for _, note in ipairs(skipped) do
    health.warn(note)
  end
  local exe = cmd and vim.fn.exepath(cmd[1]) or ''
  if exe == '' then
    health.error(('the server binary `%s` was not found'):format(cmd and cmd[1] or 'tensorlens'), {
      '`pip install tensorlens` into the virtual environment you activate, or `cargo install --path server` in the tensorlens repository, puts `tensorlens` on PATH',
      "or name it: vim.g.tensorlens = { cmd = { '/path/to/tensorlens', 'serve' } }",
    })
    return nil
  end
  health.info(('binary from %s'):format(source))
  local version = run({ exe, '--version' }, 5000, config.cmd_env)
  if version.code ~= 0 then
    health.error(('`%s --version` failed: %s'):format(exe, version.stderr), { 'reinstall or rebuild tensorlens' })
    return nil
  end
  health.ok(('%s (%s)'):format(vim.trim(version.stdout), exe))
  if vim.lsp.is_enabled('tensorlens') then
    health.ok("enabled (vim.lsp.enable('tensorlens'))")
  else
    health.warn('not enabled, so it starts for no buffer', { "add vim.lsp.enable('tensorlens') to your config" })
  end
  local clients = vim.lsp.get_clients({ name = 'tensorlens' })
  for _, client in ipairs(clients) do
    health.info(
      ('client %d is running, attached to %d buffer(s), root %s'):format(
        client.id,
        vim.tbl_count(client.attached_buffers),
        client.root_dir or 'none (single files)'
      )
    )
  end
  return exe
end

---@param config tensorlens.Config
---@param exe string
local function check_toolchain(config, exe)
  health.start('tensorlens: CUDA kernel analysis (NVRTC, ptxas, headers, GPU)')
  local settings = require('tensorlens.config').server_settings(config)
  local args = { exe, 'kernel', 'toolchain', '--json' }
  if settings.nvrtcPath then
    vim.list_extend(args, { '--nvrtc-path', settings.nvrtcPath })
  end
  if settings.ptxasPath then
    vim.list_extend(args, { '--ptxas-path', settings.ptxasPath })
  end
  for _, dir in ipairs(settings.cudaIncludePaths or {}) do
    vim.list_extend(args, { '--include', dir })
  end
  local answer = run(args, 30000, config.cmd_env)
  local ok, toolchain = pcall(vim.json.decode, answer.stdout, { luanil = { object = true, array = true } })
  if answer.code ~= 0 or not ok or type(toolchain) ~= 'table' then
    health.error(
      ('`%s` failed: %s'):format(table.concat(args, ' '), answer.stderr ~= '' and answer.stderr or answer.stdout)
    )
    return
  end

  local nvrtc = toolchain.nvrtc or {}
  if nvrtc.Ok then
    health.ok(('NVRTC %s: %s'):format(nvrtc.Ok.version, nvrtc.Ok.path))
  else
    local advice = {
      ('Install the CUDA compiler wheels: %s'):format(PIP_CUDA),
      'or set vim.g.tensorlens.nvrtcPath to libnvrtc.so or its folder (a CUDA toolkit, or the wheels’ nvidia/cu13)',
    }
    -- A wrong setting is an error in the configuration; nothing found at all is a missing install.
    local report = settings.nvrtcPath and health.error or health.warn
    report(('NVRTC: %s'):format(nvrtc.Err), advice)
  end

  local ptxas = toolchain.ptxas or {}
  if ptxas.Ok then
    health.ok(('ptxas: %s'):format(ptxas.Ok))
  else
    local advice = {
      'Install it: pip install nvidia-cuda-nvcc',
      'or set vim.g.tensorlens.ptxasPath to the ptxas binary or its folder',
    }
    local report = settings.ptxasPath and health.error or health.warn
    report(('ptxas: %s'):format(ptxas.Err), advice)
  end

  local include_dirs = toolchain.include_dirs or {}
  if #include_dirs > 0 then
    health.ok('CUDA headers: ' .. table.concat(include_dirs, ', '))
  else
    health.warn(
      'no CUDA include folder: kernels that include cuda_fp16.h, cooperative_groups.h or mma.h will not compile',
      {
        'pip install nvidia-cuda-runtime nvidia-cuda-cccl beside NVRTC, or set vim.g.tensorlens.cudaIncludePaths',
      }
    )
  end

  local gpu = toolchain.gpu
  local arch = settings.cudaArch or 'sm_90'
  if type(gpu) == 'table' then
    health.ok(('GPU: %s (%s); kernels are compiled for it'):format(gpu.name, gpu.arch))
  else
    health.warn(('no GPU found: kernels are analysed for %s'):format(arch), {
      'Analysis and PTX need no GPU; set vim.g.tensorlens.cudaArch to the architecture you target',
      'On a machine with an NVIDIA GPU, install its driver (libcuda.so.1) for the GPU’s own architecture',
    })
  end
end

function M.check()
  local config = check_options()
  local exe = check_binary(config)
  if exe then
    check_toolchain(config, exe)
  end
end

return M
