---@brief
---
--- https://github.com/tensorlens/tensorlens (editors/neovim)
---
--- tensorlens, a language server for deep-learning and GPU code: hovers, links and quick fixes for
--- PyTorch, JAX, TensorFlow, CUDA, cuBLAS and more, and CUDA kernel analysis (registers, spills, shared
--- memory, occupancy) with NVRTC and ptxas, without a GPU.
---
--- Needs the `tensorlens` binary (`cargo install --path server` in the repository), or set
--- `vim.g.tensorlens = { cmd = { '/path/to/tensorlens', 'serve' } }`. Options, including the server's
--- settings (`nvrtcPath`, `cudaArch`, ...), are read from `vim.g.tensorlens` when the server starts:
--- see `:help tensorlens-options`. Then:
---
--- ```lua
--- vim.lsp.enable('tensorlens')
--- ```
---
--- TOML buffers are only attached when they are catalog files under `.tensorlens/catalog/`.

---@type vim.lsp.Config
return {
  cmd = function(dispatchers, config)
    return require('tensorlens').start_server(dispatchers, config)
  end,
  filetypes = { 'python', 'cuda', 'c', 'cpp', 'toml' },
  -- The root is the nearest folder holding one of these (root_dir applies them, and the TOML rule).
  root_markers = vim.deepcopy(require('tensorlens').root_markers),
  root_dir = function(bufnr, on_dir)
    require('tensorlens').root_dir(bufnr, on_dir)
  end,
  -- Filled in by before_init from vim.g.tensorlens; Neovim sends it in workspace/didChangeConfiguration.
  settings = {},
  before_init = function(params, config)
    require('tensorlens').before_init(params, config)
  end,
  capabilities = { workspace = { codeLens = { refreshSupport = true } } },
  handlers = {
    ['workspace/codeLens/refresh'] = function(err, result, ctx)
      return require('tensorlens').on_codelens_refresh(err, result, ctx)
    end,
  },
}
