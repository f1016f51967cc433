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
