//! Hover: what the name under the cursor is, from the catalog.

use std::fmt::Write;
use std::ops::Range;

use super::markdown::{code, code_block, escape_markdown as esc, link};
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
            let _ = write!(out, "**{}** · {}", esc(&symbol.name), esc(&symbol.kind));
            if let Some(system) = system {
                let _ = write!(out, " · {}", esc(&system.name));
            }
            out.push_str("\n\n");
            if let Some(signature) = &symbol.signature {
                out.push_str(&code_block(code_lang, signature));
                out.push('\n');
            }
            if symbol.is_curated() {
                let _ = writeln!(out, "{}", esc(&symbol.summary));
            } else {
                let source = esc(symbol.source.as_deref().unwrap_or("the package"));
                let _ =
                    writeln!(out, "*Not described in the tensorlens catalog yet: signature and link from {source}.*");
            }
            if let Some(note) = &symbol.deprecated {
                let _ = write!(out, "\n**Deprecated:** {}", esc(note));
                if let Some(replacement) = &symbol.replacement {
                    let _ = write!(out, " Use {} instead.", code(replacement));
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
                        let name = code(&sym.name);
                        format!("{} ({})", link(&name, &sym.docs).unwrap_or(name), esc(&sys.name))
                    })
                    .collect();
                out.push_str(&items.join(" · "));
                out.push('\n');
                if let Some(differences) = catalog.differences(idx) {
                    let _ = writeln!(out, "\n*Not quite the same:* {}", esc(&differences));
                }
            }
            if let (Some(system), "module") = (reference.system, symbol.kind.as_ref()) {
                // A module used in code (`nn`, `F`, `jnp`): its entry, then its system's card.
                if let Some(docs) = link("Documentation", &symbol.docs) {
                    let _ = write!(out, "\n{docs}\n");
                }
                let _ = write!(out, "\n---\n\n{}", system_card(system, catalog));
                return out;
            }
            if let Some(system) = system {
                let _ = write!(out, "\n---\n{}\n", system_line(system));
            }
            let guide = system.and_then(|s| link(&format!("{} guide", esc(&s.name)), s.guide.as_deref()?));
            let links: Vec<String> = link("Documentation", &symbol.docs).into_iter().chain(guide).collect();
            if !links.is_empty() {
                let _ = writeln!(out, "\n{}", links.join(" · "));
            }
        }
        None => {
            let Some(system) = system else {
                let _ = write!(out, "**{}**", esc(&reference.name));
                return out;
            };
            let is_root =
                system.python_modules.iter().any(|m| **m == *reference.name) || reference.role == Role::Include;
            if is_root {
                out.push_str(&system_card(reference.system.unwrap(), catalog));
                if reference.role == Role::Include {
                    let _ = write!(out, "\nHeader {}.\n", code(&reference.name));
                }
            } else {
                let _ = write!(out, "**{}** · {}\n\n", esc(&reference.name), esc(&system.name));
                out.push_str("Not described in the tensorlens catalog yet.\n");
                let _ = write!(out, "\n---\n{}\n", system_line(system));
                if let Some(docs) = link(&format!("{} documentation", esc(&system.name)), &system.docs) {
                    let _ = write!(out, "\n{docs}\n");
                }
            }
        }
    }
    out
}

fn system_line(system: &System) -> String {
    format!("**{}**: {}", esc(&system.name), esc(&system.summary))
}

/// The full card: what a system is, who keeps it, how it connects to the others.
pub(crate) fn system_card(idx: SystemIdx, catalog: &Catalog) -> String {
    let system = catalog.system(idx);
    let mut out = String::new();
    let _ = write!(
        out,
        "**{}** · {} · {}\n\n{}\n",
        esc(&system.name),
        esc(&system.group),
        esc(&system.maintainer),
        esc(&system.summary)
    );
    if let Some(about) = &system.about {
        let _ = write!(out, "\n{}\n", esc(about));
    }
    if let Some(parent) = system.part_of.as_deref().and_then(|id| catalog.system_by_id(id)) {
        let _ = write!(out, "\nPart of **{}**.\n", esc(&catalog.system(parent).name));
    }
    if !system.related.is_empty() {
        out.push_str("\n**Related:**\n");
        for related in &system.related {
            let name = catalog
                .system_by_id(&related.system)
                .map(|idx| catalog.system(idx).name.clone())
                .unwrap_or_else(|| related.system.clone());
            let _ = writeln!(out, "- **{}**: {}", esc(&name), esc(&related.how));
        }
    }
    let guide = system.guide.as_deref().and_then(|guide| link("Guide", guide));
    let links: Vec<String> = link("Documentation", &system.docs).into_iter().chain(guide).collect();
    if !links.is_empty() {
        let _ = writeln!(out, "\n{}", links.join(" · "));
    }
    out
}

fn launch_markdown(doc: &Document, reference: &Reference, catalog: &Catalog) -> String {
    let mut out = format!("**{}** · kernel launch\n\n", esc(&reference.name));
    if let Some(launch) = doc.recognition.launches().find(|l| l.kernel_range == reference.range) {
        let labels = ["grid", "block", "dynamic shared memory (bytes)", "stream"];
        for (label, value) in labels.iter().zip(&launch.config) {
            let _ = writeln!(out, "- {label}: {}", code(value));
        }
        if launch.config.len() < 3 {
            out.push_str("- dynamic shared memory: 0 bytes, default stream\n");
        }
    }
    if !doc.recognition.kernels().any(|k| *k.name == *reference.name) {
        out.push_str("\nThe kernel is not defined in this file.\n");
    }
    if let Some(cuda) = catalog.system_by_id("cuda").map(|idx| catalog.system(idx)) {
        out.push_str("\n[Execution configuration](https://docs.nvidia.com/cuda/cuda-c-programming-guide/index.html#execution-configuration)");
        if let Some(docs) = link(&esc(&cuda.name), &cuda.docs) {
            let _ = write!(out, " · {docs}");
        }
        out.push('\n');
    }
    out
}

fn kernel_markdown(doc: &Document, reference: &Reference, _catalog: &Catalog) -> String {
    let launches = doc.recognition.launches().filter(|l| *l.kernel == *reference.name).count();
    let mut out = format!("**{}** · CUDA kernel (`__global__`)\n\n", esc(&reference.name));
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
    fn equivalents_say_where_their_defaults_differ() {
        check(
            "a.py",
            "import jax
y = jax.nn.ge$0lu(x)
",
            "**jax.nn.gelu** · function · JAX",
            &["**Equivalents:**", "*Not quite the same:* The default formula differs"],
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
    fn user_catalog_text_cannot_add_links_or_markup() {
        let text = "[system]\nid = \"evil\"\nname = \"Evil <b>corp</b>\"\ngroup = \"research\"\nmaintainer = \"[m](command:x)\"\n\
                    summary = \"s\"\ndocs = \"https://example.com\"\nguide = \"command:workbench.action.terminal.new\"\n\
                    python_modules = [\"evil\"]\n\n[[symbols]]\nname = \"evil.run`](command:x)\"\nkind = \"function\"\n\
                    signature = \"run()\\n```\\n[y](command:y)\"\n\
                    summary = \"[run](command:workbench.action.terminal.new) <img src=x onerror=alert(1)> **now**\"\n\
                    docs = \"javascript:alert(1)\"\ndeprecated = \"Use [z](command:z).\"\nreplacement = \"evil.ok`x\"\n\n\
                    [[symbols]]\nname = \"evil.ok`x\"\nkind = \"function\"\nsummary = \"Fine.\"\ndocs = \"https://example.com/ok\"\n";
        let (file, problems) = crate::catalog::parse_user_file("evil", text);
        assert_eq!(problems.len(), 2, "{problems:?}");
        let catalog = Catalog::new(vec![file.expect("loads without its bad links")]);
        let symbol = catalog.lookup("evil.run`](command:x)").expect("loaded");
        let reference = Reference {
            range: 0..3,
            name: "evil.run`](command:x)".into(),
            role: Role::Access,
            symbol: Some(symbol),
            system: Some(catalog.system_of(symbol)),
        };
        let markdown = reference_markdown(&reference, &catalog, "python");
        // The signature is code, in a fence its own backticks cannot close; the rest is prose.
        let block = "````python\nrun()\n```\n[y](command:y)\n````\n";
        assert!(markdown.contains(block), "{markdown}");
        let prose = markdown.replace(block, "");
        // Markup only counts where no backslash escapes its first character.
        let unescaped = |needle: &str| prose.match_indices(needle).any(|(at, _)| !prose[..at].ends_with('\\'));
        for injected in ["](command:", "<img", "<b>", "[run", "**now", "[z", "[m"] {
            assert!(!unescaped(injected), "{injected:?} in\n{markdown}");
        }
        assert!(!prose.contains("javascript:"), "{markdown}");
        assert!(markdown.starts_with("**evil.run\\`\\](command:x)** · function · Evil \\<b>corp\\</b>"), "{markdown}");
        assert!(markdown.contains("\\[run\\](command:workbench.action.terminal.new) \\<img"), "{markdown}");
        assert!(markdown.contains("Use ``evil.ok`x`` instead."), "{markdown}");
        assert!(!markdown.contains("[Documentation]") && !markdown.contains("guide]"), "{markdown}");
    }

    #[test]
    fn no_hover_on_shadowed_name() {
        let (doc, offset) = fixture("a.py", "import torch\ndef f(torch):\n    return torch.zer$0os(3)\n");
        assert_eq!(hover(&doc, catalog(), offset), None);
    }
}
