//! Hover: what the name under the cursor is, from the catalog.

use std::fmt::Write;
use std::ops::Range;

use crate::catalog::{Catalog, System, SystemIdx};
use crate::documents::Document;
use crate::recognize::{Reference, Role};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoverResult {
    pub range: Range<usize>,
    pub markdown: String,
}

pub fn hover(doc: &Document, catalog: &Catalog, offset: usize) -> Option<HoverResult> {
    let Some(reference) = doc.recognition.reference_at(offset) else {
        // Not a name reached through an import: perhaps a value's member, a keyword argument or a
        // variable of known type.
        return super::value_hover::hover(doc, catalog, offset);
    };
    let markdown = match reference.role {
        Role::Launch => launch_markdown(doc, &reference, catalog),
        Role::KernelDefinition => kernel_markdown(doc, &reference, catalog),
        _ => reference_markdown(&reference, catalog, code_language(doc)),
    };
    Some(HoverResult { range: reference.range, markdown })
}

fn code_language(doc: &Document) -> &'static str {
    match doc.language {
        Some(crate::parse::Language::Python) => "python",
        _ => "cpp",
    }
}

pub fn reference_markdown(reference: &Reference, catalog: &Catalog, code_lang: &str) -> String {
    let mut out = String::new();
    let system = reference.system.map(|idx| catalog.system(idx));
    // A system's root module (`torch`, `jax`) is best described by the system's card, unless we wrote
    // words for the module itself.
    let is_root_module = system.is_some_and(|s| s.python_modules.iter().any(|m| **m == *reference.name));
    let symbol = reference.symbol.filter(|&idx| !is_root_module || catalog.is_curated(idx));
    match symbol.map(|idx| (idx, catalog.symbol(idx))) {
        Some((idx, symbol)) => {
            let _ = write!(out, "**{}** · {}", symbol.name, symbol.kind);
            if let Some(system) = system {
                let _ = write!(out, " · {}", system.name);
            }
            out.push_str("\n\n");
            if let Some(signature) = &symbol.signature {
                let _ = write!(out, "```{code_lang}\n{signature}\n```\n\n");
            }
            if symbol.is_curated() {
                let _ = writeln!(out, "{}", symbol.summary);
            } else {
                let source = symbol.source.as_deref().unwrap_or("the package");
                let _ =
                    writeln!(out, "_Not described in the tensorlens catalog yet: signature and link from {source}._");
            }
            if let Some(note) = &symbol.deprecated {
                let _ = write!(out, "\n**Deprecated:** {note}");
                if let Some(replacement) = &symbol.replacement {
                    let _ = write!(out, " Use `{replacement}` instead.");
                }
                out.push('\n');
            }
            let equivalents = catalog.equivalents(idx);
            if !equivalents.is_empty() {
                out.push_str("\n**Equivalents:** ");
                let items: Vec<String> = equivalents
                    .iter()
                    .map(|&eq| {
                        let sym = catalog.symbol(eq);
                        let sys = catalog.system(catalog.system_of(eq));
                        format!("[`{}`]({}) ({})", sym.name, sym.docs, sys.name)
                    })
                    .collect();
                out.push_str(&items.join(" · "));
                out.push('\n');
            }
            if let (Some(system), "module") = (reference.system, symbol.kind.as_ref()) {
                // A module used in code (`nn`, `F`, `jnp`): its entry, then its system's card.
                let _ = write!(out, "\n[Documentation]({})\n\n---\n\n{}", symbol.docs, system_card(system, catalog));
                return out;
            }
            if let Some(system) = system {
                let _ = write!(out, "\n---\n{}\n", system_line(system));
            }
            let _ = write!(out, "\n[Documentation]({})", symbol.docs);
            if let Some(guide) = system.and_then(|s| s.guide.as_ref()) {
                let _ = write!(out, " · [{} guide]({guide})", system.map(|s| s.name.as_ref()).unwrap_or_default());
            }
            out.push('\n');
        }
        None => {
            let Some(system) = system else {
                let _ = write!(out, "**{}**", reference.name);
                return out;
            };
            let is_root =
                system.python_modules.iter().any(|m| **m == *reference.name) || reference.role == Role::Include;
            if is_root {
                out.push_str(&system_card(reference.system.unwrap(), catalog));
                if reference.role == Role::Include {
                    let _ = write!(out, "\nHeader `{}`.\n", reference.name);
                }
            } else {
                let _ = write!(out, "**{}** · {}\n\n", reference.name, system.name);
                out.push_str("Not described in the tensorlens catalog yet.\n");
                let _ =
                    write!(out, "\n---\n{}\n\n[{} documentation]({})\n", system_line(system), system.name, system.docs);
            }
        }
    }
    out
}

fn system_line(system: &System) -> String {
    format!("**{}**: {}", system.name, system.summary)
}

/// The full card: what a system is, who keeps it, how it connects to the others.
pub(crate) fn system_card(idx: SystemIdx, catalog: &Catalog) -> String {
    let system = catalog.system(idx);
    let mut out = String::new();
    let _ = write!(out, "**{}** · {} · {}\n\n{}\n", system.name, system.group, system.maintainer, system.summary);
    if let Some(about) = &system.about {
        let _ = write!(out, "\n{about}\n");
    }
    if let Some(parent) = system.part_of.as_deref().and_then(|id| catalog.system_by_id(id)) {
        let _ = write!(out, "\nPart of **{}**.\n", catalog.system(parent).name);
    }
    if !system.related.is_empty() {
        out.push_str("\n**Related:**\n");
        for related in &system.related {
            let name = catalog
                .system_by_id(&related.system)
                .map(|idx| catalog.system(idx).name.clone())
                .unwrap_or_else(|| related.system.clone());
            let _ = writeln!(out, "- **{name}**: {}", related.how);
        }
    }
    let _ = write!(out, "\n[Documentation]({})", system.docs);
    if let Some(guide) = &system.guide {
        let _ = write!(out, " · [Guide]({guide})");
    }
    out.push('\n');
    out
}

fn launch_markdown(doc: &Document, reference: &Reference, catalog: &Catalog) -> String {
    let mut out = format!("**{}** · kernel launch\n\n", reference.name);
    if let Some(launch) = doc.recognition.launches().find(|l| l.kernel_range == reference.range) {
        let labels = ["grid", "block", "dynamic shared memory (bytes)", "stream"];
        for (label, value) in labels.iter().zip(&launch.config) {
            let _ = writeln!(out, "- {label}: `{value}`");
        }
        if launch.config.len() < 3 {
            out.push_str("- dynamic shared memory: 0 bytes, default stream\n");
        }
    }
    if !doc.recognition.kernels().any(|k| *k.name == *reference.name) {
        out.push_str("\nThe kernel is not defined in this file.\n");
    }
    if let Some(cuda) = catalog.system_by_id("cuda") {
        let _ = write!(
            out,
            "\n[Execution configuration](https://docs.nvidia.com/cuda/cuda-c-programming-guide/index.html#execution-configuration) · [{}]({})\n",
            catalog.system(cuda).name,
            catalog.system(cuda).docs
        );
    }
    out
}

fn kernel_markdown(doc: &Document, reference: &Reference, _catalog: &Catalog) -> String {
    let launches = doc.recognition.launches().filter(|l| *l.kernel == *reference.name).count();
    let mut out = format!("**{}** · CUDA kernel (`__global__`)\n\n", reference.name);
    match launches {
        0 => out.push_str("Not launched in this file.\n"),
        1 => out.push_str("Launched once in this file.\n"),
        n => {
            let _ = writeln!(out, "Launched {n} times in this file.");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ide::test_support::{catalog, fixture};

    #[track_caller]
    fn check(path: &str, text: &str, expected_first_line: &str, contains: &[&str]) {
        let (doc, offset) = fixture(path, text);
        let res = hover(&doc, catalog(), offset).unwrap_or_else(|| panic!("no hover at {offset} in {text}"));
        assert_eq!(res.markdown.lines().next().unwrap(), expected_first_line, "{}", res.markdown);
        for needle in contains {
            assert!(res.markdown.contains(needle), "{needle:?} missing from\n{}", res.markdown);
        }
    }

    #[test]
    fn hovers_alias_chain() {
        check(
            "a.py",
            "import torch.nn.functional as F\ny = F.so$0ftmax(x, dim=-1)\n",
            "**torch.nn.functional.softmax** · function · PyTorch",
            &["```python\ntorch.nn.functional.softmax(", "[Documentation](https://"],
        );
    }

    #[test]
    fn hovers_decorator_and_import_card() {
        check(
            "a.py",
            "import torch\n@torch.com$0pile\ndef f(x): return x\n",
            "**torch.compile** · function · torch.compile / torch.export",
            &[],
        );
        check(
            "a.py",
            "import tor$0ch\n",
            "**PyTorch** · research · PyTorch Foundation (Linux Foundation); originally developed at Meta AI",
            &["**Related:**"],
        );
    }

    #[test]
    fn hovers_cuda_calls_and_launches() {
        let src = "#include <cublas_v2.h>\n__global__ void k(float* x) { x[threadIdx.x] = 0; }\nvoid f(float* d) {\n  cudaMa$0lloc(&d, 4);\n  k<<<1, 32>>>(d);\n}\n";
        check("k.cu", src, "**cudaMalloc** · function · CUDA Runtime API", &["cudaError_t cudaMalloc("]);
        check(
            "k.cu",
            &src.replace("$0", "").replace("k<<<", "$0k<<<"),
            "**k** · kernel launch",
            &["- grid: `1`", "- block: `32`"],
        );
        check(
            "k.cu",
            &src.replace("$0", "").replace("threadIdx", "thread$0Idx"),
            "**threadIdx** · builtin · CUDA",
            &[],
        );
    }

    #[test]
    fn module_names_in_code_show_their_entry_and_card() {
        check(
            "a.py",
            "import torch.nn as nn\nm = n$0n.Linear(2, 3)\n",
            "**torch.nn** · module · PyTorch",
            &["**PyTorch** · research", "**Related:**"],
        );
    }

    #[test]
    fn no_hover_on_shadowed_name() {
        let (doc, offset) = fixture("a.py", "import torch\ndef f(torch):\n    return torch.zer$0os(3)\n");
        assert_eq!(hover(&doc, catalog(), offset), None);
    }
}
