//! The `@triton.jit` helpers a kernel imports from other files (`from .utils import _gelu`,
//! `from mypkg.ops.utils import tanh`): found beside the kernel's file, blanked as the kernel's own
//! file is, and sent to the worker as modules of their own, with the import line pointed at them.
//! Real projects keep shared helpers in one file, so without this their kernels do not compile.
//! Reads files (the caller runs it off the request loop); never imports or runs the user's code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tree_sitter::{Node, Tree};

use super::triton::TritonFile;
use crate::parse::{parse_str, Language};

/// One helper module for the worker: imported by the kernel's source under `name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct HelperModule {
    pub name: String,
    pub filename: String,
    pub source: String,
}

/// What the worker compiles for one kernel: its file's source, the helper modules it imports
/// (each after the ones it imports itself), and what could not be followed, for people.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelSources {
    pub source: String,
    pub modules: Vec<HelperModule>,
    pub notes: Vec<String>,
}

/// Imports are followed this deep (kernel → helpers → their helpers ...).
const MAX_DEPTH: usize = 4;
/// Larger files are not helper modules worth reading.
const MAX_BYTES: u64 = 2 << 20;

/// The sources for compiling `kernel` of `file` (the text of the file at `path`).
pub fn kernel_sources(file: &TritonFile, text: &str, path: &Path, kernel: &str) -> KernelSources {
    let mut builder = Builder::default();
    let imports = builder.rewrites(file, path, &[kernel.to_string()], 1);
    KernelSources {
        source: file.source_with(text, &[kernel], &imports),
        modules: builder.modules,
        notes: builder.notes,
    }
}

#[derive(Default)]
struct Builder {
    modules: Vec<HelperModule>,
    by_key: HashMap<(PathBuf, Vec<String>), String>,
    notes: Vec<String>,
}

impl Builder {
    /// The import statements of `file` that bring the helpers `functions` call, each with the
    /// name of the helper module made for it.
    fn rewrites(&mut self, file: &TritonFile, path: &Path, functions: &[String], depth: usize) -> Vec<(usize, String)> {
        let mut by_import: Vec<(usize, Vec<String>)> = Vec::new();
        for function in functions {
            for (import, name) in file.imported_helpers(function) {
                match by_import.iter_mut().find(|(i, _)| *i == import) {
                    Some((_, names)) if !names.contains(&name) => names.push(name),
                    Some(_) => {}
                    None => by_import.push((import, vec![name])),
                }
            }
        }
        let mut out = Vec::new();
        for (import, names) in by_import {
            let module = &file.imports[import].module;
            match module_file(path, module) {
                Some(found) => {
                    if let Some(name) = self.module_for(&found, names, depth) {
                        out.push((import, name));
                    }
                }
                None => self.notes.push(format!(
                    "{} imports {} from `{module}`, which was not found beside it; the compile sees no such names",
                    path.display(),
                    names.join(", ")
                )),
            }
        }
        out
    }

    fn module_for(&mut self, path: &Path, mut names: Vec<String>, depth: usize) -> Option<String> {
        names.sort();
        let key = (path.to_path_buf(), names.clone());
        if let Some(name) = self.by_key.get(&key) {
            return Some(name.clone());
        }
        if depth > MAX_DEPTH {
            self.notes.push(format!("{}: imports nested deeper than {MAX_DEPTH} were not followed", path.display()));
            return None;
        }
        let text = match std::fs::metadata(path) {
            Ok(meta) if meta.len() > MAX_BYTES => {
                self.notes.push(format!("{}: too large to read as a helper module", path.display()));
                return None;
            }
            _ => match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(err) => {
                    self.notes.push(format!("{}: cannot be read: {err}", path.display()));
                    return None;
                }
            },
        };
        let tree = parse_str(Language::Python, &text)?;
        let names_at = import_resolver(&tree, &text);
        let file = TritonFile::find(&text, &tree, &|end| names_at.get(&end).cloned());
        let (jit, other): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| file.function(n).is_some());
        if !other.is_empty() {
            self.notes.push(format!(
                "{}: {} not a @triton.jit function there",
                path.display(),
                if other.len() == 1 { format!("`{}` is", other[0]) } else { format!("`{}` are", other.join("`, `")) }
            ));
        }
        if jit.is_empty() {
            return None;
        }
        let imports = self.rewrites(&file, path, &jit, depth + 1);
        let roots: Vec<&str> = jit.iter().map(String::as_str).collect();
        let source = file.source_with(&text, &roots, &imports);
        let name = format!("_tensorlens_helper_{}", self.modules.len());
        self.modules.push(HelperModule { name: name.clone(), filename: path.display().to_string(), source });
        self.by_key.insert(key, name.clone());
        Some(name)
    }
}

/// The file a `from MODULE import ...` in `from_file` reads: relative to its package for
/// `.utils` / `..ops.utils`, else looked for from each folder above it (the project's root is one
/// of them, `src/` layouts included); `a/b.py` before `a/b/__init__.py`.
pub fn module_file(from_file: &Path, module: &str) -> Option<PathBuf> {
    let dots = module.chars().take_while(|c| *c == '.').count();
    let parts: Vec<&str> = module[dots..].split('.').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|p| !p.chars().all(|c| c.is_alphanumeric() || c == '_')) {
        return None;
    }
    let candidates = |base: &Path| {
        let mut stem = base.to_path_buf();
        stem.extend(&parts);
        [stem.with_extension("py"), stem.join("__init__.py")]
    };
    let folder = from_file.parent()?;
    if dots > 0 {
        let base = folder.ancestors().nth(dots - 1)?;
        return candidates(base).into_iter().find(|c| c.is_file());
    }
    folder.ancestors().take(10).flat_map(candidates).find(|c| c.is_file())
}

/// The dotted names (`triton.jit`, `triton.language.constexpr`) of a file's references by the
/// byte where each ends, from its imports alone: enough to find its jit functions without the
/// catalog.
fn import_resolver(tree: &Tree, text: &str) -> HashMap<usize, String> {
    let mut aliases: HashMap<String, String> = HashMap::new();
    let root = tree.root_node();
    let mut cursor = root.walk();
    for stmt in root.named_children(&mut cursor) {
        let mut names = stmt.walk();
        match stmt.kind() {
            "import_statement" => {
                for name in stmt.children_by_field_name("name", &mut names) {
                    match name.kind() {
                        "dotted_name" => {
                            let full = &text[name.byte_range()];
                            let head = full.split('.').next().unwrap_or(full);
                            aliases.insert(head.to_string(), head.to_string());
                        }
                        "aliased_import" => {
                            if let (Some(n), Some(a)) =
                                (name.child_by_field_name("name"), name.child_by_field_name("alias"))
                            {
                                aliases.insert(text[a.byte_range()].to_string(), text[n.byte_range()].to_string());
                            }
                        }
                        _ => {}
                    }
                }
            }
            "import_from_statement" => {
                let Some(module) = stmt.child_by_field_name("module_name") else { continue };
                let module = &text[module.byte_range()];
                for name in stmt.children_by_field_name("name", &mut names) {
                    let (original, local) = match name.kind() {
                        "dotted_name" => (name, name),
                        "aliased_import" => match (name.child_by_field_name("name"), name.child_by_field_name("alias"))
                        {
                            (Some(n), Some(a)) => (n, a),
                            _ => continue,
                        },
                        _ => continue,
                    };
                    aliases.insert(
                        text[local.byte_range()].to_string(),
                        format!("{module}.{}", &text[original.byte_range()]),
                    );
                }
            }
            _ => {}
        }
    }
    let mut out = HashMap::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if matches!(node.kind(), "identifier" | "attribute") {
            if let Some(dotted) = dotted(node, text) {
                let (head, rest) = dotted.split_once('.').map_or((dotted.as_str(), ""), |(h, r)| (h, r));
                if let Some(full) = aliases.get(head) {
                    let name = if rest.is_empty() { full.clone() } else { format!("{full}.{rest}") };
                    // The whole chain wins over its last identifier, which ends at the same byte.
                    out.entry(node.end_byte())
                        .and_modify(|n: &mut String| {
                            if name.len() > n.len() {
                                *n = name.clone()
                            }
                        })
                        .or_insert(name);
                }
            }
        }
        let mut cursor = node.walk();
        stack.extend(node.named_children(&mut cursor));
    }
    out
}

/// `a.b.c` for an attribute chain of plain names.
fn dotted(node: Node, text: &str) -> Option<String> {
    match node.kind() {
        "identifier" => Some(text[node.byte_range()].to_string()),
        "attribute" => {
            let object = dotted(node.child_by_field_name("object")?, text)?;
            let attribute = node.child_by_field_name("attribute")?;
            Some(format!("{object}.{}", &text[attribute.byte_range()]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    const HELPERS: &str = "import triton\nimport triton.language as tl\nfrom .deeper import _sigmoid2\n\n\n@triton.jit\ndef _gelu(x):\n    return x * _sigmoid2(1.702 * x)\n\n\ndef host_only():\n    return 1\n\nSCALE = 2.0\n";
    const DEEPER: &str = "from triton import jit\n\n@jit\ndef _sigmoid2(x):\n    return 1.0 / (1.0 + tl.exp(-x))\n";
    const KERNEL: &str = "import torch\nimport triton\nimport triton.language as tl\nfrom .helpers import _gelu as gelu, host_only\nfrom .missing import _nowhere\n\n\n@triton.jit\ndef k(x_ptr, n, BLOCK: tl.constexpr):\n    offs = tl.arange(0, BLOCK)\n    x = tl.load(x_ptr + offs)\n    tl.store(x_ptr + offs, gelu(x) + _nowhere(x))\n";

    fn kernel_file(dir: &Path) -> (TritonFile, PathBuf) {
        let path = dir.join("pkg/ops/kern.py");
        let tree = parse_str(Language::Python, KERNEL).unwrap();
        let names = import_resolver(&tree, KERNEL);
        (TritonFile::find(KERNEL, &tree, &|end| names.get(&end).cloned()), path)
    }

    #[test]
    fn helpers_come_from_the_files_the_imports_name_with_their_own_helpers_first() {
        let dir = std::env::temp_dir().join(format!("tensorlens-triton-modules-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write(&dir, &[("pkg/ops/kern.py", KERNEL), ("pkg/ops/helpers.py", HELPERS), ("pkg/ops/deeper.py", DEEPER)]);
        let (file, path) = kernel_file(&dir);
        let sources = kernel_sources(&file, KERNEL, &path, "k");
        let names: Vec<(&str, &str)> =
            sources.modules.iter().map(|m| (m.name.as_str(), m.filename.rsplit('/').next().unwrap())).collect();
        assert_eq!(names, [("_tensorlens_helper_0", "deeper.py"), ("_tensorlens_helper_1", "helpers.py")]);
        // Lines keep their numbers; the import line points at the module made for it.
        assert_eq!(sources.source.lines().count(), KERNEL.lines().count());
        assert_eq!(sources.source.lines().nth(3), Some("from _tensorlens_helper_1 import _gelu as gelu, host_only"));
        assert!(!sources.source.contains("import torch"), "{}", sources.source);
        let helpers = &sources.modules[1].source;
        assert!(helpers.contains("from _tensorlens_helper_0 import _sigmoid2") && helpers.contains("def _gelu"));
        assert!(!helpers.contains("host_only"), "only what the kernel calls: {helpers}");
        // What could not be followed says so.
        assert_eq!(sources.notes.len(), 1, "{:?}", sources.notes);
        assert!(
            sources.notes[0].contains("imports _nowhere from `.missing`, which was not found"),
            "{:?}",
            sources.notes
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn module_names_map_to_files_the_way_python_finds_them() {
        let dir = std::env::temp_dir().join(format!("tensorlens-module-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write(
            &dir,
            &[
                ("src/pkg/a/k.py", ""),
                ("src/pkg/util.py", ""),
                ("src/pkg/b/__init__.py", ""),
                ("src/pkg/a/near.py", ""),
            ],
        );
        let from = dir.join("src/pkg/a/k.py");
        assert_eq!(module_file(&from, ".near"), Some(dir.join("src/pkg/a/near.py")));
        assert_eq!(module_file(&from, "..util"), Some(dir.join("src/pkg/util.py")));
        assert_eq!(module_file(&from, "..b"), Some(dir.join("src/pkg/b/__init__.py")));
        assert_eq!(module_file(&from, "pkg.util"), Some(dir.join("src/pkg/util.py")));
        for nowhere in ["pkg.nope", ".", "...", "..util/../x", "os.path"] {
            assert_eq!(module_file(&from, nowhere), None, "{nowhere}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
