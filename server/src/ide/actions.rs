//! Code actions: open documentation, replace deprecated APIs, check ignored status codes.

use std::ops::Range;

use super::{fixes, TextEdit};
use crate::catalog::schema::is_safe_link;
use crate::catalog::Catalog;
use crate::documents::Document;
use crate::recognize::Reference;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// Edits the document; `preferred` marks the obvious fix.
    QuickFix { edits: Vec<TextEdit>, preferred: bool },
    /// Opens a web page in the user's browser.
    OpenUrl(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub title: String,
    pub kind: ActionKind,
}

pub fn code_actions(doc: &Document, catalog: &Catalog, range: Range<usize>) -> Vec<Action> {
    let mut res = Vec::new();
    let overlaps = |r: &Range<usize>| r.start <= range.end && range.start <= r.end;
    for call in doc.recognition.discarded_calls().filter(|c| overlaps(&c.call_range)) {
        if let Some(action) = status_check_fix(doc, catalog, call.symbol, call.call_range.clone()) {
            res.push(action);
        }
    }
    let references: Vec<Reference> = doc.recognition.references().filter(|r| overlaps(&r.range)).collect();
    for reference in &references {
        if let Some(action) = deprecation_fix(doc, catalog, reference) {
            res.push(action);
        }
    }
    let mut opened_systems = Vec::new();
    let mut open = |title: String, url: &str| {
        // Only plain https pages open; a user catalog's other links were refused when it loaded.
        if is_safe_link(url) {
            res.push(Action { title, kind: ActionKind::OpenUrl(url.to_string()) });
        }
    };
    for reference in references {
        if let Some(symbol) = reference.symbol.map(|idx| catalog.symbol(idx)) {
            open(format!("Open documentation for {}", symbol.name), &symbol.docs);
        }
        if let Some(system_idx) = reference.system {
            if opened_systems.contains(&system_idx) {
                continue;
            }
            opened_systems.push(system_idx);
            let system = catalog.system(system_idx);
            match system.guide.as_deref().filter(|guide| is_safe_link(guide)) {
                Some(guide) => open(format!("Open {} guide", system.name), guide),
                None => open(format!("Open {} documentation", system.name), &system.docs),
            }
        }
    }
    res
}

/// The automatic fix of a deprecated reference, when `fixes` finds one for this use.
fn deprecation_fix(doc: &Document, catalog: &Catalog, reference: &Reference) -> Option<Action> {
    match fixes::plan(doc, catalog, reference)? {
        fixes::Plan::Rewrite { title, mut edits, preferred, .. } => {
            fixes::drop_unused_from_import(doc, reference, &mut edits);
            Some(Action { title, kind: ActionKind::QuickFix { edits, preferred } })
        }
        fixes::Plan::Manual(_) => None,
    }
}

/// How to check one status type: macro name, success value, and how to print the error.
struct StatusCheck {
    status: &'static str,
    macro_name: &'static str,
    success: &'static str,
    describe: &'static str,
    /// Text that shows an existing macro handles this status type.
    markers: &'static [&'static str],
}

const STATUS_CHECKS: &[StatusCheck] = &[
    StatusCheck {
        status: "cudaError_t",
        macro_name: "CUDA_CHECK",
        success: "cudaSuccess",
        describe: "cudaGetErrorString(status_)",
        markers: &["cudaSuccess", "cudaGetErrorString", "cudaError_t"],
    },
    StatusCheck {
        status: "CUresult",
        macro_name: "CU_CHECK",
        success: "CUDA_SUCCESS",
        describe: "\"driver error\"",
        markers: &["CUDA_SUCCESS", "cuGetErrorString", "cuGetErrorName", "CUresult"],
    },
    StatusCheck {
        status: "cublasStatus_t",
        macro_name: "CUBLAS_CHECK",
        success: "CUBLAS_STATUS_SUCCESS",
        describe: "cublasGetStatusString(status_)",
        markers: &["CUBLAS_STATUS_SUCCESS", "cublasStatus_t"],
    },
    StatusCheck {
        status: "cudnnStatus_t",
        macro_name: "CUDNN_CHECK",
        success: "CUDNN_STATUS_SUCCESS",
        describe: "cudnnGetErrorString(status_)",
        markers: &["CUDNN_STATUS_SUCCESS", "cudnnGetErrorString", "cudnnStatus_t"],
    },
    StatusCheck {
        status: "cufftResult",
        macro_name: "CUFFT_CHECK",
        success: "CUFFT_SUCCESS",
        describe: "\"cuFFT error\"",
        markers: &["CUFFT_SUCCESS", "cufftResult"],
    },
    StatusCheck {
        status: "hipError_t",
        macro_name: "HIP_CHECK",
        success: "hipSuccess",
        describe: "hipGetErrorString(status_)",
        markers: &["hipSuccess", "hipGetErrorString", "hipError_t"],
    },
    StatusCheck {
        status: "nvrtcResult",
        macro_name: "NVRTC_CHECK",
        success: "NVRTC_SUCCESS",
        describe: "nvrtcGetErrorString(status_)",
        markers: &["NVRTC_SUCCESS", "nvrtcGetErrorString", "nvrtcResult"],
    },
    StatusCheck {
        status: "cl_int",
        macro_name: "CL_CHECK",
        success: "CL_SUCCESS",
        describe: "\"OpenCL error\"",
        markers: &["CL_SUCCESS"],
    },
];

fn status_check_fix(
    doc: &Document,
    catalog: &Catalog,
    symbol: crate::catalog::SymbolIdx,
    call: Range<usize>,
) -> Option<Action> {
    let symbol = catalog.symbol(symbol);
    let status = symbol.returns.as_deref()?;
    let check = STATUS_CHECKS.iter().find(|c| c.status == status)?;
    let text = doc.text();
    let mut edits = Vec::new();
    let macro_name = match existing_check_macro(&text, check) {
        Some(name) => name,
        None => {
            let (offset, definition) = macro_definition(&text, check);
            edits.push(TextEdit { range: offset..offset, new_text: definition });
            check.macro_name.to_string()
        }
    };
    edits.push(TextEdit { range: call.start..call.start, new_text: format!("{macro_name}(") });
    edits.push(TextEdit { range: call.end..call.end, new_text: ")".to_string() });
    Some(Action {
        title: format!("Check the {status} of {} with {macro_name}", symbol.name),
        kind: ActionKind::QuickFix { edits, preferred: true },
    })
}

/// A one-argument macro defined in the file whose body handles this status type.
fn existing_check_macro(text: &str, check: &StatusCheck) -> Option<String> {
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let Some(rest) = trimmed.strip_prefix('#').map(str::trim_start).and_then(|r| r.strip_prefix("define")) else {
            continue;
        };
        let rest = rest.trim_start();
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if name.is_empty() || !rest[name.len()..].starts_with('(') {
            continue;
        }
        // The body runs on while lines end in a backslash.
        let mut body = line.to_string();
        let mut current = line;
        while current.trim_end().ends_with('\\') {
            let Some(next) = lines.next() else { break };
            body.push_str(next);
            current = next;
        }
        if check.markers.iter().any(|m| body.contains(m)) {
            return Some(name);
        }
    }
    // cuda-samples' helper header defines the classic checker.
    if check.status == "cudaError_t" && text.contains("helper_cuda.h") {
        return Some("checkCudaErrors".to_string());
    }
    None
}

/// Where to put a new check macro (after the last `#include`) and its text, with the C headers
/// it needs when the file lacks them.
fn macro_definition(text: &str, check: &StatusCheck) -> (usize, String) {
    let mut offset = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        pos += line.len();
        if line.trim_start().starts_with("#include") {
            offset = pos;
        }
    }
    let mut out = String::new();
    if offset > 0 && !text[..offset].ends_with('\n') {
        out.push('\n');
    }
    for (needed, header) in [("stdio", "#include <cstdio>\n"), ("stdlib", "#include <cstdlib>\n")] {
        let present = text.contains(&format!("<{needed}.h>")) || text.contains(&format!("<c{needed}>"));
        if !present {
            out.push_str(header);
        }
    }
    let status = check.status;
    let success = check.success;
    let describe = check.describe;
    let name = check.macro_name;
    out.push_str(&format!(
        "\n// Added by tensorlens: stops with a message when a {status} call fails.\n\
         #define {name}(call)                                                     \\\n\
         \x20 do {{                                                                   \\\n\
         \x20   {status} status_ = (call);                                           \\\n\
         \x20   if (status_ != {success}) {{                                          \\\n\
         \x20     fprintf(stderr, \"%s failed at %s:%d: %s (%d)\\n\", #call,        \\\n\
         \x20                  __FILE__, __LINE__, {describe}, (int)status_);         \\\n\
         \x20     exit(EXIT_FAILURE);                                            \\\n\
         \x20   }}                                                                    \\\n\
         \x20 }} while (0)\n\n"
    ));
    (offset, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ide::test_support::{catalog, fixture};

    fn apply(text: &str, edits: &[TextEdit]) -> String {
        let mut edits = edits.to_vec();
        edits.sort_by_key(|e| std::cmp::Reverse(e.range.start));
        let mut text = text.to_string();
        for edit in edits {
            text.replace_range(edit.range.clone(), &edit.new_text);
        }
        text
    }

    fn quick_fix(path: &str, src: &str) -> (String, Action) {
        let (doc, offset) = fixture(path, src);
        let actions = code_actions(&doc, catalog(), offset..offset);
        let action = actions.into_iter().find(|a| matches!(a.kind, ActionKind::QuickFix { .. })).expect("a quick fix");
        let ActionKind::QuickFix { edits, .. } = &action.kind else { unreachable!() };
        (apply(&doc.text(), edits), action)
    }

    #[test]
    fn reuses_existing_check_macro() {
        let src = "#include <cstdio>\n#define CHECK(x) do { cudaError_t e = (x); if (e != cudaSuccess) printf(\"%s\", cudaGetErrorString(e)); } while (0)\nvoid f(float* d) {\n  cudaMa$0lloc(&d, 4);\n}\n";
        let (text, action) = quick_fix("a.cu", src);
        assert!(text.contains("  CHECK(cudaMalloc(&d, 4));\n"), "{text}");
        assert_eq!(action.title, "Check the cudaError_t of cudaMalloc with CHECK");
    }

    #[test]
    fn inserts_check_macro_when_missing() {
        let src = "#include <cublas_v2.h>\nvoid f(cublasHandle_t h) {\n  cublasCre$0ate(&h);\n}\n";
        let (text, _) = quick_fix("a.cu", src);
        assert!(text.starts_with("#include <cublas_v2.h>\n#include <cstdio>\n#include <cstdlib>\n"), "{text}");
        assert!(text.contains("#define CUBLAS_CHECK(call)"), "{text}");
        assert!(text.contains("  CUBLAS_CHECK(cublasCreate(&h));\n"), "{text}");
    }

    #[test]
    fn rewrites_deprecated_autocast_with_the_device_first() {
        let src = "import torch\nwith torch.cuda.amp.auto$0cast(dtype=torch.bfloat16):\n    pass\n";
        let (text, action) = quick_fix("a.py", src);
        // The old API passed its own defaults; the new one reads unset ones from global settings
        // (torch.set_autocast_dtype), so the rewrite passes them.
        assert_eq!(
            text,
            "import torch\nwith torch.amp.autocast(\"cuda\", dtype=torch.bfloat16, cache_enabled=True):\n    pass\n"
        );
        assert_eq!(action.title, "Rewrite as torch.amp.autocast(\"cuda\", dtype=torch.bfloat16, cache_enabled=True)");
        assert!(matches!(action.kind, ActionKind::QuickFix { preferred: true, .. }));
        // Positional arguments of the old signature become keywords of the new one.
        let (text, _) = quick_fix("a.py", "import torch as th\nctx = th.cuda.amp.auto$0cast(False)\n");
        assert_eq!(
            text,
            "import torch as th\nctx = th.amp.autocast(\"cuda\", enabled=False, dtype=th.float16, cache_enabled=True)\n"
        );
    }

    #[test]
    fn rewrites_a_call_through_a_from_import_adding_the_module() {
        let src = "from torch.cuda.amp import autocast\n\ndef f():\n    with auto$0cast(enabled=True):\n        pass\n";
        let (text, _) = quick_fix("a.py", src);
        assert_eq!(
            text,
            "import torch.amp\n\ndef f():\n    with torch.amp.autocast(\"cuda\", enabled=True, dtype=torch.float16, cache_enabled=True):\n        pass\n"
        );
    }

    #[test]
    fn no_fix_for_a_call_the_template_cannot_map() {
        for src in [
            "import tensorflow as tf\nok = tf.test.is_gpu_av$0ailable(cuda_only=True)\n",
            "import torch\nn = torch.no$0rm(x, p=1)\n",
            "import torch\nargs = {}\nwith torch.cuda.amp.auto$0cast(**args):\n    pass\n",
            "import torch\nmake = torch.cuda.amp.auto$0cast\n",
        ] {
            let (doc, offset) = fixture("a.py", src);
            let actions = code_actions(&doc, catalog(), offset..offset);
            assert!(!actions.iter().any(|a| matches!(a.kind, ActionKind::QuickFix { .. })), "{src}: {actions:?}");
        }
    }

    #[test]
    fn wraps_and_renames_through_aliases() {
        let (text, action) =
            quick_fix("a.py", "import tensorflow as tf\nif not tf.test.is_gpu_av$0ailable():\n    pass\n");
        assert_eq!(
            text,
            "import tensorflow as tf\nif not len(tf.config.list_physical_devices(\"GPU\")) > 0:\n    pass\n"
        );
        assert!(matches!(action.kind, ActionKind::QuickFix { preferred: false, .. }));
        let (text, _) = quick_fix("a.py", "import tensorflow as tf\nx = 1 == tf.test.is_gpu_av$0ailable()\n");
        assert_eq!(text, "import tensorflow as tf\nx = 1 == (len(tf.config.list_physical_devices(\"GPU\")) > 0)\n");
        let (text, _) = quick_fix("a.py", "from jax import tree_map\ny = tree_m$0ap(f, x)\n");
        assert_eq!(text, "import jax.tree\ny = jax.tree.map(f, x)\n");
        // Another use keeps the import; a name imported beside it stays.
        let (text, _) = quick_fix("a.py", "from jax import tree_map, jit\ny = tree_m$0ap(f, x)\nz = tree_map(g, y)\n");
        assert_eq!(
            text,
            "from jax import tree_map, jit\nimport jax.tree\ny = jax.tree.map(f, x)\nz = tree_map(g, y)\n"
        );
        let (text, _) = quick_fix("a.py", "import jax\nfrom jax import jit, tree_map\ny = tree_m$0ap(f, x)\n");
        assert_eq!(text, "import jax\nfrom jax import jit\ny = jax.tree.map(f, x)\n");
    }

    #[test]
    fn moves_the_mask_first_in_cuda() {
        let src = "__device__ float f(float v, int lane) {\n  return __sh$0fl(v, lane);\n}\n";
        let (text, action) = quick_fix("a.cu", src);
        assert!(text.contains("return __shfl_sync(0xffffffff, v, lane);"), "{text}");
        assert!(matches!(action.kind, ActionKind::QuickFix { preferred: false, .. }));
    }

    #[test]
    fn an_aliased_from_import_goes_with_its_only_use() {
        let src = "import torch\nfrom torch.cuda.amp import GradScaler, autocast as ac\nwith a$0c(dtype=torch.bfloat16):\n    pass\n";
        let (text, _) = quick_fix("a.py", src);
        assert_eq!(
            text,
            "import torch\nfrom torch.cuda.amp import GradScaler\nwith torch.amp.autocast(\"cuda\", dtype=torch.bfloat16, cache_enabled=True):\n    pass\n"
        );
    }

    #[test]
    fn no_fix_in_a_macro_body_or_on_the_import_itself() {
        for (path, src) in [
            ("a.cu", "#define SHFL(v, l) __sh$0fl\n__device__ float f(float v) { return SHFL(v, 0); }\n"),
            ("a.py", "from torch.cuda.amp import auto$0cast\nwith autocast():\n    pass\n"),
        ] {
            let (doc, offset) = fixture(path, src);
            let actions = code_actions(&doc, catalog(), offset..offset);
            assert!(!actions.iter().any(|a| matches!(a.kind, ActionKind::QuickFix { .. })), "{src}: {actions:?}");
        }
    }

    #[test]
    fn rewrites_a_call_in_a_member_function() {
        let src = "struct Warp {\n  __device__ int bcast(int v) const { return __shfl_d$0own(v, 1, 16); }\n};\n";
        let (text, _) = quick_fix("a.cu", src);
        assert!(text.contains("return __shfl_down_sync(0xffffffff, v, 1, 16);"), "{text}");
    }

    #[test]
    fn rewrites_a_call_in_a_macro_body() {
        let src = "#define WARP_BCAST(v, l) \\\n  __sh$0fl((v), (l), f(1, 2))\n";
        let (text, _) = quick_fix("a.cu", src);
        assert_eq!(text, "#define WARP_BCAST(v, l) \\\n  __shfl_sync(0xffffffff, (v), (l), f(1, 2))\n");
        for src in ["#define A __sh$0fl(v, \"a)\"\n", "#define A __sh$0fl(v,\n l)\n"] {
            let (doc, offset) = fixture("a.cu", src);
            let _ = code_actions(&doc, catalog(), offset..offset);
        }
    }

    #[test]
    fn no_fix_for_a_replacement_that_is_not_a_substitute() {
        let (doc, offset) = fixture("a.cu", "void f(CUcontext* c) { cuCtxAtt$0ach(c, 0); }\n");
        let actions = code_actions(&doc, catalog(), offset..offset);
        assert!(!actions.iter().any(|a| a.title.contains("cuDevicePrimaryCtxRetain")), "{actions:?}");
    }

    #[test]
    fn offers_docs_and_guide() {
        let (doc, offset) = fixture("a.py", "import jax\njax.ji$0t(f)\n");
        let titles: Vec<String> = code_actions(&doc, catalog(), offset..offset).into_iter().map(|a| a.title).collect();
        assert!(titles.contains(&"Open documentation for jax.jit".to_string()), "{titles:?}");
        assert!(titles.iter().any(|t| t.starts_with("Open JAX")), "{titles:?}");
    }
}
