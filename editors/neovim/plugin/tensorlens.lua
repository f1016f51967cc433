-- tensorlens: user commands, <Plug> mappings and the hooks that run when the server attaches.
-- Starting the server is vim.lsp.enable('tensorlens') (lsp/tensorlens.lua); everything heavy is
-- required inside callbacks.

if vim.g.loaded_tensorlens then
  return
end
vim.g.loaded_tensorlens = true

if vim.fn.has('nvim-0.11') == 0 then
  vim.notify_once('tensorlens needs Neovim 0.11 or newer', vim.log.levels.WARN)
  return
end

local command = vim.api.nvim_create_user_command

command('TensorlensAnalyze', function(opts)
  require('tensorlens').analyze(opts)
end, { range = true, desc = 'tensorlens: analyze the CUDA kernel at the cursor or in the selection' })

command('TensorlensPtx', function(opts)
  require('tensorlens').ptx(opts)
end, { range = true, desc = 'tensorlens: show the PTX of the CUDA kernel at the cursor' })

command('TensorlensIr', function(opts)
  require('tensorlens').ir(opts)
end, {
  range = true,
  nargs = '*',
  complete = function(lead, line)
    -- The kind, first; Triton's kinds only in Python buffers.
    if #vim.split(vim.trim(line), '%s+') > (line:match('%s$') and 1 or 2) then
      return {}
    end
    local kernels = require('tensorlens.kernels')
    local kinds = vim.bo.filetype == 'python' and kernels.triton_ir or kernels.cuda_ir
    return vim.tbl_filter(function(kind)
      return vim.startswith(kind, lead)
    end, kinds)
  end,
  desc = 'tensorlens: show the IR (TTIR, TTGIR, LLVM IR, PTX, SASS) of the kernel at the cursor',
})

command('TensorlensTime', function(opts)
  require('tensorlens').time(opts)
end, { range = true, desc = 'tensorlens: time the CUDA kernel at the cursor or in the selection on the GPU' })

command('TensorlensSearch', function(opts)
  require('tensorlens').search(opts.args)
end, { nargs = '*', desc = 'tensorlens: search the catalog and open a symbol’s documentation' })

command('TensorlensToolchain', function()
  require('tensorlens').toolchain()
end, { desc = 'tensorlens: show the NVRTC, ptxas, CUDA headers and GPU the server uses' })

command('TensorlensRestart', function()
  require('tensorlens').restart()
end, { desc = 'tensorlens: restart the server with the current vim.g.tensorlens' })

vim.keymap.set('n', '<Plug>(TensorlensAnalyze)', '<Cmd>TensorlensAnalyze<CR>', { desc = 'tensorlens: analyze kernel' })
vim.keymap.set('x', '<Plug>(TensorlensAnalyze)', ':TensorlensAnalyze<CR>', { desc = 'tensorlens: analyze kernel' })
vim.keymap.set('n', '<Plug>(TensorlensTime)', '<Cmd>TensorlensTime<CR>', { desc = 'tensorlens: time kernel' })
vim.keymap.set('x', '<Plug>(TensorlensTime)', ':TensorlensTime<CR>', { desc = 'tensorlens: time kernel' })
vim.keymap.set('n', '<Plug>(TensorlensPtx)', '<Cmd>TensorlensPtx<CR>', { desc = 'tensorlens: show PTX' })
vim.keymap.set('x', '<Plug>(TensorlensPtx)', ':TensorlensPtx<CR>', { desc = 'tensorlens: show PTX' })
vim.keymap.set('n', '<Plug>(TensorlensIr)', '<Cmd>TensorlensIr<CR>', { desc = 'tensorlens: show kernel IR' })
vim.keymap.set('x', '<Plug>(TensorlensIr)', ':TensorlensIr<CR>', { desc = 'tensorlens: show kernel IR' })

vim.api.nvim_set_hl(0, 'TensorlensAnalysis', { link = 'DiagnosticVirtualTextInfo', default = true })
vim.api.nvim_set_hl(0, 'TensorlensAnalysisError', { link = 'DiagnosticVirtualTextError', default = true })

local group = vim.api.nvim_create_augroup('tensorlens', { clear = true })

vim.api.nvim_create_autocmd('LspAttach', {
  group = group,
  desc = 'tensorlens: code lenses and lens commands',
  callback = function(args)
    local client = vim.lsp.get_client_by_id(args.data.client_id)
    if client and client.name == 'tensorlens' then
      require('tensorlens').on_attach(client, args.buf)
    end
  end,
})

vim.api.nvim_create_autocmd('LspDetach', {
  group = group,
  desc = 'tensorlens: forget analyses of a stopped server',
  callback = function(args)
    local client = vim.lsp.get_client_by_id(args.data.client_id)
    if client and client.name == 'tensorlens' then
      require('tensorlens').on_detach(client.id, args.buf)
    end
  end,
})
