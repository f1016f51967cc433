//! Snapshots of what users see: hover markdown, diagnostics, completion labels and signature help
//! on small fixtures, through the pure `ide` functions. A change in any of them shows up here as a
//! diff to review; `UPDATE_EXPECT=1 cargo test -p tensorlens --lib ide::snapshots` rewrites the
//! expectations in place once the new text is the one wanted.

use expect_test::{expect, Expect};

use super::test_support::{catalog, fixture};
use super::{completions, diagnostics, hover, signature_help};
use crate::documents::Document;
use crate::text::PositionEncoding;

fn check_hover(path: &str, text: &str, expected: Expect) {
    let (doc, offset) = fixture(path, text);
    let actual = match hover(&doc, catalog(), offset) {
        Some(res) => format!("{:?} {:?}\n{}", res.range, doc.slice(res.range.clone()), res.markdown),
        None => "no hover".to_string(),
    };
    expected.assert_eq(&actual);
}

/// `line:col-line:col` in UTF-16, as an editor shows a range.
fn at(doc: &Document, range: &std::ops::Range<usize>) -> String {
    let (start, end) = doc.range(range, PositionEncoding::Utf16);
    format!("{}:{}-{}:{}", start.line, start.col, end.line, end.col)
}

fn check_diagnostics(path: &str, text: &str, expected: Expect) {
    let (doc, _) = fixture(path, text);
    let actual: Vec<String> = diagnostics(&doc, catalog())
        .iter()
        .map(|d| {
            let tag = if d.deprecated { " (deprecated)" } else { "" };
            format!(
                "{} {:?}{tag} {} {:?}\n  {}",
                d.code,
                d.severity,
                at(&doc, &d.range),
                doc.slice(d.range.clone()),
                d.message
            )
        })
        .collect();
    expected.assert_eq(&actual.join("\n"));
}

#[test]
fn hover_on_a_torch_function() {
    check_hover(
        "a.py",
        "import torch\nx = torch.ze$0ros(2, 3)\n",
        expect![[r#"
            23..28 "zeros"
            **torch.zeros** · function · PyTorch

            ```python
            torch.zeros(*size, *, out=None, dtype=None, layout=torch.strided, device=None, requires_grad=False)
            ```

            Allocates a zero-initialised tensor of some shape; pass device= to create it directly on the GPU instead of copying later.

            **Equivalents:** [`cupy.zeros`](https://docs.cupy.dev/en/stable/reference/generated/cupy.zeros.html) (CuPy) · [`jax.numpy.zeros`](https://docs.jax.dev/en/latest/_autosummary/jax.numpy.zeros.html) (JAX) · [`mlx.core.zeros`](https://ml-explore.github.io/mlx/build/html/python/_autosummary/mlx.core.zeros.html) (MLX) · [`tensorflow.zeros`](https://www.tensorflow.org/api_docs/python/tf/zeros) (TensorFlow)

            ---
            **PyTorch**: Python-first tensor library with eager autograd, GPU kernels and a large neural-network toolkit, the default choice for DL research.

            [Documentation](https://pytorch.org/docs/stable/generated/torch.zeros.html) · [PyTorch guide](https://pytorch.org/tutorials/beginner/basics/intro.html)
        "#]],
    );
}

#[test]
fn hover_on_a_value_method() {
    check_hover(
        "a.py",
        "import torch\nx = torch.zeros(2, 3)\ny = x.vi$0ew(3, 2)\n",
        expect![[r#"
            41..45 "view"
            **torch.Tensor.view** · method · PyTorch

            *`x`: torch.Tensor, from `torch.zeros(…)` at line 2*

            ```python
            Tensor.view(*shape)
            ```

            Reinterprets the same storage with a new shape; fails on non-contiguous tensors, where reshape or contiguous().view() is needed.

            **Equivalents:** [`cupy.reshape`](https://docs.cupy.dev/en/stable/reference/generated/cupy.reshape.html) (CuPy) · [`jax.lax.bitcast_convert_type`](https://docs.jax.dev/en/latest/_autosummary/jax.lax.bitcast_convert_type.html) (JAX) · [`jax.numpy.reshape`](https://docs.jax.dev/en/latest/_autosummary/jax.numpy.reshape.html) (JAX) · [`mlx.core.reshape`](https://ml-explore.github.io/mlx/build/html/python/_autosummary/mlx.core.reshape.html) (MLX) · [`mlx.core.view`](https://ml-explore.github.io/mlx/build/html/python/_autosummary/mlx.core.view.html) (MLX) · [`tensorflow.bitcast`](https://www.tensorflow.org/api_docs/python/tf/bitcast) (TensorFlow) · [`tensorflow.reshape`](https://www.tensorflow.org/api_docs/python/tf/reshape) (TensorFlow) · [`torch.reshape`](https://pytorch.org/docs/stable/generated/torch.reshape.html) (PyTorch)

            ---
            **PyTorch**: Python-first tensor library with eager autograd, GPU kernels and a large neural-network toolkit, the default choice for DL research.

            [Documentation](https://pytorch.org/docs/stable/generated/torch.Tensor.view.html) · [PyTorch guide](https://pytorch.org/tutorials/beginner/basics/intro.html)
        "#]],
    );
}

#[test]
fn hover_on_a_keyword_argument() {
    check_hover(
        "a.py",
        "import torch\nx = torch.zeros(2, 3, dty$0pe=torch.float16)\n",
        expect![[r#"
            35..40 "dtype"
            **dtype** · parameter of torch.zeros

            ```python
            dtype: _dtype | None = None
            ```

            Element type of the result, e.g. torch.float32; the default dtype (or one inferred from the data) when left out.

            ---
            **torch.zeros** · function · PyTorch: Allocates a zero-initialised tensor of some shape; pass device= to create it directly on the GPU instead of copying later.

            [Documentation](https://pytorch.org/docs/stable/generated/torch.zeros.html)
        "#]],
    );
}

#[test]
fn hover_on_a_cuda_runtime_call() {
    check_hover(
        "k.cu",
        "#include <cuda_runtime.h>\nvoid f(float* d) {\n  cudaMa$0lloc(&d, 4);\n}\n",
        expect![[r#"
            47..57 "cudaMalloc"
            **cudaMalloc** · function · CUDA Runtime API

            ```cpp
            cudaError_t cudaMalloc(void **devPtr, size_t size)
            ```

            Allocates linear device memory (uninitialized, 256-byte aligned); synchronous and slowish, so frameworks pool it rather than calling per tensor.

            **Equivalents:** [`clCreateBuffer`](https://registry.khronos.org/OpenCL/sdk/3.0/docs/man/html/clCreateBuffer.html) (OpenCL) · [`cuMemAlloc`](https://docs.nvidia.com/cuda/cuda-driver-api/group__CUDA__MEM.html) (CUDA Driver API) · [`cupy.cuda.alloc`](https://docs.cupy.dev/en/stable/reference/generated/cupy.cuda.alloc.html) (CuPy) · [`hipMalloc`](https://rocm.docs.amd.com/projects/HIP/en/latest/reference/hip_runtime_api/modules/memory_management.html) (ROCm / HIP) · [`torch.cuda.caching_allocator_alloc`](https://pytorch.org/docs/stable/generated/torch.cuda.caching_allocator_alloc.html) (PyTorch)

            ---
            **CUDA Runtime API**: Host-side C API (cudart) for picking GPUs, allocating and copying memory, launching kernels, and ordering work with streams, events and graphs.

            [Documentation](https://docs.nvidia.com/cuda/cuda-runtime-api/group__CUDART__MEMORY.html) · [CUDA Runtime API guide](https://docs.nvidia.com/cuda/cuda-programming-guide/)
        "#]],
    );
}

#[test]
fn no_hover_on_an_unknown_name() {
    check_hover("a.py", "import torch\nfoo$0bar(1)\n", expect!["no hover"]);
}

#[test]
fn diagnostics_on_a_deprecated_api() {
    check_diagnostics(
        "a.py",
        "import torch\nwith torch.cuda.amp.autocast():\n    pass\n",
        expect![[r#"
            deprecated-api Hint (deprecated) 1:20-1:28 "autocast"
              torch.cuda.amp.autocast is deprecated: Deprecated since PyTorch 2.4; use torch.amp.autocast('cuda', ...) instead. Use torch.amp.autocast("cuda", dtype=torch.float16, cache_enabled=True)."#]],
    );
}

#[test]
fn diagnostics_say_what_to_change_where_no_fix_applies() {
    check_diagnostics(
        "a.py",
        "import tensorflow as tf\nimport torch\ntf.test.is_gpu_available(cuda_only=True)\nn = torch.norm(x, 2)\n",
        expect![[r#"
            deprecated-api Hint (deprecated) 2:8-2:24 "is_gpu_available"
              tensorflow.test.is_gpu_available is deprecated: Deprecated in TensorFlow 2.x; call tf.config.list_physical_devices('GPU') and test the list instead. No automatic fix for this call: the argument cuda_only=True has no counterpart in the rewrite; write it as len(tensorflow.config.list_physical_devices("GPU")) > 0 by hand. cuda_only and min_cuda_compute_capability need a loop over tf.config.experimental.get_device_details of each GPU.
            deprecated-api Hint (deprecated) 3:10-3:14 "norm"
              torch.norm is deprecated: Documented as deprecated and unmaintained; use torch.linalg.vector_norm or torch.linalg.matrix_norm. No automatic fix for this call: the argument p=2 has no counterpart in the rewrite; write it as torch.linalg.vector_norm(input, dim=dim, keepdim=keepdim, out=out, dtype=dtype) by hand. p= has no direct counterpart: pass a number as ord= to torch.linalg.vector_norm, or use torch.linalg.matrix_norm for 'fro' and 'nuc' over two dimensions."#]],
    );
}

#[test]
fn diagnostics_on_a_deprecated_intrinsic_in_a_macro_and_an_import() {
    check_diagnostics(
        "k.cu",
        "#define SHFL(v, l) __shfl(v, l)\n",
        expect![[r#"
            deprecated-api Hint (deprecated) 0:19-0:25 "__shfl"
              __shfl is deprecated: Deprecated since CUDA 9.0 and unsupported on sm_70+ because of independent thread scheduling; use __shfl_sync with an explicit mask. Use __shfl_sync(0xffffffff, v, l)."#]],
    );
    check_diagnostics(
        "a.py",
        "from torch.cuda.amp import autocast\n",
        expect![[r#"
        deprecated-api Hint (deprecated) 0:27-0:35 "autocast"
          torch.cuda.amp.autocast is deprecated: Deprecated since PyTorch 2.4; use torch.amp.autocast('cuda', ...) instead. The uses this import binds get the quick fix; a fix that rewrites the last of them takes the import out."#]],
    );
}

#[test]
fn diagnostics_on_a_replacement_that_is_not_a_substitute() {
    check_diagnostics(
        "k.cu",
        "void f(CUcontext* c) { CUresult r = cuCtxAttach(c, 0); }\n",
        expect![[r#"
        deprecated-api Hint (deprecated) 0:36-0:47 "cuCtxAttach"
          cuCtxAttach is deprecated: Deprecated; share the primary context with cuDevicePrimaryCtxRetain instead. No automatic fix: cuDevicePrimaryCtxRetain is not a drop-in substitute."#]],
    );
}

#[test]
fn diagnostics_on_a_dropped_cuda_error() {
    check_diagnostics(
        "k.cu",
        "void f(float* d) {\n  cudaMalloc(&d, 4);\n  cudaError_t e = cudaFree(d);\n  cudaThreadSynchronize();\n}\n",
        expect![[r#"
            unchecked-status Information 1:2-1:19 "cudaMalloc(&d, 4)"
              The cudaError_t returned by cudaMalloc is ignored; an error here would go unnoticed
            deprecated-api Hint (deprecated) 3:2-3:23 "cudaThreadSynchronize"
              cudaThreadSynchronize is deprecated: Deprecated since CUDA 4.0 and removed in CUDA 13.0; use cudaDeviceSynchronize. Use cudaDeviceSynchronize.
            unchecked-status Information 3:2-3:25 "cudaThreadSynchronize()"
              The cudaError_t returned by cudaThreadSynchronize is ignored; an error here would go unnoticed"#]],
    );
}

#[test]
fn completion_labels_after_torch_dot() {
    let (doc, offset) = fixture("a.py", "import torch\ntorch.$0\n");
    let items = completions(&doc, catalog(), offset);
    let first: Vec<String> = items
        .iter()
        .take(20)
        .map(|c| format!("{} {:?} {}", c.label, c.kind, c.detail.as_deref().unwrap_or("-")))
        .collect();
    expect![[r#"
        955 items; the first 20:
        AcceleratorError Class torch.AcceleratorError
        AggregationType Class torch.AggregationType
        AliasDb Class torch.AliasDb()
        AliasInfo Class torch.AliasInfo(is_write, before_set, after_set)
        AnyType Class torch.AnyType()
        Argument Class torch.Argument(name, type, N, default_value, kwarg_only, alias_info)
        AwaitType Class torch.AwaitType(a)
        BFloat16Tensor Class torch.BFloat16Tensor(*args, device=None)
        BatchNormBackend Class torch.BatchNormBackend
        BenchmarkConfig Class torch.BenchmarkConfig()
        BenchmarkExecutionStats Class torch.BenchmarkExecutionStats()
        Block Class torch.Block()
        BoolStorage Class torch.BoolStorage(*args, device=None, dtype=None, wrap_storage=None, _internal=False)
        BoolTensor Class torch.BoolTensor(*args, device=None)
        BoolType Class torch.BoolType()
        BufferDict Class torch.BufferDict(mod)
        ByteStorage Class torch.ByteStorage(*args, device=None, dtype=None, wrap_storage=None, _internal=False)
        ByteTensor Class torch.ByteTensor(*args, device=None)
        CONV_BN_FUSION Constant torch.CONV_BN_FUSION
        CallStack Class torch.CallStack(name, range)"#]]
    .assert_eq(&format!("{} items; the first 20:\n{}", items.len(), first.join("\n")));
}

#[test]
fn signature_help_text() {
    let (doc, offset) = fixture("a.py", "import torch\ntorch.zeros(3, 4, dtype=$0)\n");
    let help = signature_help(&doc, catalog(), offset).expect("signature help");
    let mut out = format!("{}\n", help.label);
    if let Some(docs) = &help.documentation {
        out.push_str(&format!("docs: {docs}\n"));
    }
    for (i, (range, summary)) in help.parameters.iter().enumerate() {
        let active = if help.active_parameter == Some(i) { "*" } else { " " };
        out.push_str(&format!("{active} {}: {}\n", &help.label[range.clone()], summary.as_deref().unwrap_or("-")));
    }
    expect![[r#"
        torch.zeros(*size, *, out=None, dtype=None, layout=torch.strided, device=None, requires_grad=False)
        docs: Allocates a zero-initialised tensor of some shape; pass device= to create it directly on the GPU instead of copying later.
          out: An existing tensor to write the result into instead of allocating one.
        * dtype: Element type of the result, e.g. torch.float32; the default dtype (or one inferred from the data) when left out.
          layout: Memory layout; torch.strided (dense) unless a sparse layout is wanted.
          device: Where the result is allocated, e.g. 'cuda' or torch.device('cuda', 1); the default device when left out.
          requires_grad: Whether autograd records operations on the result, making it a leaf that collects .grad.
    "#]].assert_eq(&out);
}
