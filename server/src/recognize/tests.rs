//! Recognition fixtures: source in, one line per reference out (`line:col role name`).

use expect_test::{expect, Expect};

use crate::ide::test_support::fixture;

#[track_caller]
fn check(path: &str, src: &str, expected: Expect) {
    let (doc, _) = fixture(path, src);
    let mut out = String::new();
    for r in doc.recognition.references() {
        let pos = doc.position(r.range.start, crate::text::PositionEncoding::Utf32);
        let known = if r.symbol.is_some() { "" } else { " ?" };
        out.push_str(&format!("{}:{} {} {}{known}\n", pos.line + 1, pos.col + 1, r.role.label(), r.name));
    }
    expected.assert_eq(&out);
}

#[test]
fn python_imports_and_aliases() {
    check(
        "a.py",
        "import torch.nn.functional as F\nfrom torch import nn\nfrom jax import numpy as jnp\nF.relu(x)\nnn.Linear(2, 3)\njnp.matmul(a, b)\n",
        expect![[r#"
            1:8 import torch
            1:14 import torch.nn
            1:17 import torch.nn.functional
            1:31 import torch.nn.functional
            2:6 import torch
            2:19 import torch.nn
            3:6 import jax
            3:17 import jax.numpy
            3:26 import jax.numpy
            4:1 reference torch.nn.functional
            4:3 call torch.nn.functional.relu
            5:1 reference torch.nn
            5:4 call torch.nn.Linear
            6:1 reference jax.numpy
            6:5 call jax.numpy.matmul
        "#]],
    );
}

#[test]
fn python_decorators() {
    check(
        "a.py",
        "import torch, triton, jax\n@torch.no_grad()\ndef a(): pass\n@triton.jit\ndef b(): pass\n@jax.jit\ndef c(): pass\n",
        expect![[r#"
            1:8 import torch
            1:15 import triton
            1:23 import jax
            2:2 reference torch
            2:8 decorator torch.no_grad
            4:2 reference triton
            4:9 decorator triton.jit
            6:2 reference jax
            6:6 decorator jax.jit
        "#]],
    );
}

#[test]
fn python_shadowing() {
    // A parameter, a local assignment and a loop variable hide the module; other functions still see it.
    check(
        "a.py",
        "import torch as t\ndef f(t):\n    t.zeros(1)\ndef g():\n    t = 3\n    t.zeros(1)\ndef h():\n    for t in x: t.ones(1)\ndef ok():\n    t.ones(1)\nclass C:\n    t = 1\n    def m(self):\n        t.ones(1)\n",
        expect![[r#"
            1:8 import torch
            1:17 import torch
            10:5 reference torch
            10:7 call torch.ones
            14:9 reference torch
            14:11 call torch.ones
        "#]],
    );
}

#[test]
fn python_rebinding_at_module_level_and_globals() {
    check(
        "a.py",
        "import numpy as np\nimport jax.numpy as np\nnp.zeros(1)\ndef f():\n    global torch\n    torch = None\nimport torch\ntorch.ones(1)\n",
        expect![[r#"
            2:8 import jax
            2:12 import jax.numpy
            2:21 import jax.numpy
            3:1 reference jax.numpy
            3:4 call jax.numpy.zeros
            7:8 import torch
            8:1 reference torch
            8:7 call torch.ones
        "#]],
    );
}

#[test]
fn python_wildcard_import() {
    check(
        "a.py",
        "from torch.nn.functional import *\nrelu(x)\nfrom unknown_lib import *\n",
        expect![[r#"
            1:6 import torch
            1:12 import torch.nn
            1:15 import torch.nn.functional
            1:33 import torch.nn.functional
            2:1 call torch.nn.functional.relu
        "#]],
    );
}

#[test]
fn cuda_calls_builtins_launches_and_includes() {
    check(
        "k.cu",
        "#include <cublas_v2.h>\n__global__ void k(float* x) {\n  __shared__ float s[32];\n  x[threadIdx.x] = s[0];\n  __syncthreads();\n}\nint main() {\n  float* d;\n  cudaMalloc(&d, 4);\n  k<<<1, 32, 0, 0>>>(d);\n  cublasHandle_t h;\n  cublasCreate(&h);\n  thrust::sort(a, b);\n}\n",
        expect![[r#"
            1:10 include cublas_v2.h ?
            2:1 qualifier __global__
            2:17 kernel k ?
            3:3 qualifier __shared__
            4:5 reference threadIdx
            5:3 call __syncthreads
            9:3 call cudaMalloc
            10:3 kernel launch k ?
            11:3 type cublasHandle_t
            12:3 call cublasCreate
            13:3 call thrust::sort
        "#]],
    );
}

#[test]
fn opencl_and_hip_in_cpp() {
    check(
        "host.cpp",
        "#include <CL/cl.h>\nint main() {\n  clEnqueueNDRangeKernel(q, k, 1, 0, g, l, 0, 0, 0);\n  hipMalloc(&p, 4);\n  cudaFooBarUnknown(1);\n}\n",
        expect![[r#"
            1:10 include CL/cl.h ?
            3:3 call clEnqueueNDRangeKernel
            4:3 call hipMalloc
            5:3 call cudaFooBarUnknown ?
        "#]],
    );
}

#[test]
fn references_are_sorted_and_disjoint() {
    let (doc, _) = fixture("a.py", "import torch as t, jax\nt.nn.functional.relu(jax.numpy.ones(3))\n");
    let refs: Vec<_> = doc.recognition.references().collect();
    assert!(refs.windows(2).all(|w| w[0].range.end <= w[1].range.start));
    assert!(doc.recognition.reference_at(refs[3].range.start + 1).is_some());
}

#[test]
fn queries_compile_and_use_known_captures() {
    use crate::parse::Language;
    use crate::recognize::{captures, query};
    let mut used = std::collections::HashSet::new();
    for language in [Language::Python, Language::Cuda, Language::Cpp] {
        for name in query(language).capture_names() {
            assert!(captures::ALL.contains(name), "{language:?} query uses unknown capture @{name}");
            used.insert(*name);
        }
    }
    let unused: Vec<_> = captures::ALL.iter().filter(|c| !used.contains(*c)).collect();
    assert!(unused.is_empty(), "captures no query uses: {unused:?}");
}

#[test]
fn every_query_file_is_embedded() {
    // A new grammars/<lang>/*.scm must be wired into recognition, not left lying around.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../grammars");
    let mut files: Vec<String> = walk(&dir).into_iter().filter(|p| p.ends_with(".scm")).collect();
    files.sort();
    assert_eq!(files, ["cpp/references.scm", "cuda/references.scm", "python/references.scm"]);

    fn walk(dir: &std::path::Path) -> Vec<String> {
        let mut res = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                let lang = path.file_name().unwrap().to_string_lossy().to_string();
                res.extend(walk(&path).into_iter().map(|f| format!("{lang}/{f}")));
            } else {
                res.push(path.file_name().unwrap().to_string_lossy().to_string());
            }
        }
        res
    }
}

#[test]
fn device_builtins_only_in_device_code() {
    // printf in host code is the C library's; in a kernel it is CUDA's device printf.
    check(
        "k.cu",
        "__device__ float twice(float x) { printf(\"%f\", x); return 2 * x; }\nint main() { printf(\"host\"); }\n",
        expect![[r#"
            1:1 qualifier __device__
            1:35 call printf
        "#]],
    );
}

/// The text and byte range of each reference to a CUDA system, for exact-range checks.
fn cuda_calls(path: &str, src: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let (doc, _) = fixture(path, src);
    let catalog = crate::ide::test_support::catalog();
    doc.recognition
        .references()
        .filter(|r| r.role == crate::recognize::Role::Call)
        .filter(|r| r.symbol.is_some_and(|s| catalog.system(catalog.system_of(s)).id.starts_with("cuda")))
        .map(|r| (src[r.range.clone()].to_string(), r.range))
        .collect()
}

#[test]
fn cuda_calls_in_macro_bodies() {
    // ggml-cuda and vLLM wrap warp shuffles and launches in macros; tree-sitter keeps a macro body as text.
    let src = "#define WARP_XOR(v, m) __shfl_xor_sync(0xffffffffu, (v), (m), 32) // __syncwarp()\n\
               #define SYNC() \\\n    do { __syncwarp(); __syncthreads(); } while (0)\n\
               #define HALF_MAX __float2half(65504.0f / 2)\n\
               #define LAUNCH(k, cfg) CUDA_CHECK(cudaLaunchKernelEx(&(cfg), k, \"__ballot_sync(\"))\n";
    // Each expected call by a needle that starts where it does: the comment and the string hold lookalikes.
    let expected: Vec<(String, std::ops::Range<usize>)> = [
        ("__shfl_xor_sync", "__shfl_xor_sync("),
        ("__syncwarp", "__syncwarp();"),
        ("__syncthreads", "__syncthreads"),
        ("__float2half", "__float2half"),
        ("cudaLaunchKernelEx", "cudaLaunchKernelEx"),
    ]
    .iter()
    .map(|(name, needle)| {
        let start = src.find(needle).unwrap();
        (name.to_string(), start..start + name.len())
    })
    .collect();
    assert_eq!(cuda_calls("k.cu", src), expected);
}

#[test]
fn macro_bodies_keep_to_calls_of_the_real_names() {
    // Member calls, qualified names, pasted and stringized names, macro parameters and declarators
    // in a macro body are not CUDA's built-ins; nor is printf, which a macro may use on the host.
    check(
        "k.cu",
        "#define A(obj) obj.__syncthreads(); obj->__syncwarp(); mine::__shfl_sync(1, 2, 3)\n\
         #define B(x) x##__syncwarp(); #__syncthreads; printf(\"%d\", x)\n\
         #define C(__ballot_sync) __ballot_sync(1)\n\
         #define D __device__ float __expf_mine(float); ::__syncwarp()\n",
        expect![[r#"
            4:50 call __syncwarp
        "#]],
    );
}

#[test]
fn cuda_builtins_in_member_functions_lambdas_and_namespaces() {
    // Device code is any function or lambda marked __device__ or __global__, at any depth.
    // tree-sitter-cuda does not know `[=] __device__ (...)` and leaves that `__device__` a plain name.
    check(
        "k.cu",
        "namespace ops {\ntemplate <typename T> struct Sum {\n  __device__ T operator()(T* p, T v) const {\n    atomicAdd(p, v);\n    return __shfl_xor_sync(0xffffffff, v, 1);\n  }\n  void host(int* p) { printf(\"%d\", *p); }\n};\n#if USE_WARP\n__device__ void w() { __syncwarp(); }\n#else\n__device__ void w() { __syncthreads(); }\n#endif\n}\nvoid launch(int* p) {\n  auto d = [=] __device__ (int i) { atomicAdd(p, i); };\n  auto h = [=](int i) { printf(\"%d\", i); };\n}\n",
        expect![[r#"
            3:3 qualifier __device__
            4:5 call atomicAdd
            5:12 call __shfl_xor_sync
            10:1 qualifier __device__
            10:23 call __syncwarp
            12:1 qualifier __device__
            12:23 call __syncthreads
            16:16 reference __device__
            16:37 call atomicAdd
        "#]],
    );
}

#[test]
fn reserved_cuda_names_need_no_device_qualifier_in_view() {
    // `DINLINE` expands to `__device__ __forceinline__` in a header: the `__` names are CUDA's
    // anyway, being reserved to the implementation; atomicAdd is not reserved and stays unknown.
    check(
        "k.cu",
        "DINLINE void barrier(int* c) {\n  __syncthreads();\n  atomicAdd(c, 1);\n  float h = __half2float(x);\n}\n",
        expect![[r#"
            2:3 call __syncthreads
            4:13 call __half2float
        "#]],
    );
}

#[test]
fn a_file_that_defines_a_builtin_name_owns_it() {
    // A HIP port or a test double defines the name itself: its calls are the file's, everywhere in it.
    check(
        "k.cu",
        "__device__ int __shfl_sync(unsigned m, int v, int l) { return v; }\n\
         #define __syncwarp() do {} while (0)\n\
         __device__ int f(int v) { __syncwarp(); return __shfl_sync(0u, v, 0) + __shfl_xor_sync(0u, v, 1); }\n\
         #define W(v) __shfl_sync(0u, v, 1)\n",
        expect![[r#"
            1:1 qualifier __device__
            3:1 qualifier __device__
            3:72 call __shfl_xor_sync
        "#]],
    );
}

#[test]
fn a_definition_added_by_an_edit_decides_for_untouched_chunks() {
    // Chunks the edit did not touch are reused; the file's own definitions are applied over them.
    use crate::documents::{Change, Document};
    use crate::text::{LineCol, PositionEncoding};
    let catalog = crate::ide::test_support::catalog();
    let text = "__device__ void f() { __syncwarp(); }\n";
    let mut doc = Document::new("file:///k.cu", "cuda", 0, text);
    doc.analyze(catalog, &[]).unwrap();
    let calls = |doc: &Document| doc.recognition.references().filter(|r| &*r.name == "__syncwarp").count();
    assert_eq!(calls(&doc), 1);
    let start = LineCol { line: 0, col: 0 };
    let definition = "__device__ void __syncwarp() {}\n";
    doc.apply(&Change { range: Some((start, start)), text: definition.into() }, PositionEncoding::Utf16).unwrap();
    doc.analyze(catalog, &[]).unwrap();
    assert_eq!(calls(&doc), 0);
    assert!(doc.recognition.reference_at(definition.len() + text.find("__syncwarp").unwrap()).is_none());
    let end = LineCol { line: 1, col: 0 };
    doc.apply(&Change { range: Some((start, end)), text: String::new() }, PositionEncoding::Utf16).unwrap();
    doc.analyze(catalog, &[]).unwrap();
    assert_eq!(calls(&doc), 1);
}
