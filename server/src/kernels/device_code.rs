//! Kernels in CUDA source, and the device code one of them needs to compile on its own.
//!
//! The compiled unit is the source with everything the kernel does not need blanked out (spaces,
//! newlines kept), so every line and column of the unit is the same line and column of the
//! source: error positions need no mapping table, `#if` blocks and namespaces keep their shape.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tree_sitter::{Node, Tree};

use super::annotation::Annotation;
use crate::parse::{parse_str, Language};

/// A `__global__` function found in CUDA source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelDef {
    pub name: String,
    /// With enclosing namespaces: `ops::reduce`.
    pub qualified_name: String,
    /// The whole definition, its `template <...>` included.
    pub range: Range<usize>,
    pub name_range: Range<usize>,
    /// `typename T, int B = 128` for a template kernel.
    pub template_params: Option<String>,
    /// Every template parameter has a default, so `k<>` instantiates it.
    pub template_defaults_complete: bool,
    /// Parameters as written: `const float* __restrict__ in`.
    pub params: Vec<String>,
    #[serde(skip)]
    pub annotation: Annotation,
}

/// A parsed CUDA source (a file, or a string held in Python).
pub struct CudaSource {
    pub text: String,
    tree: Option<Tree>,
}

impl CudaSource {
    pub fn new(text: String) -> CudaSource {
        let tree = parse_str(Language::Cuda, &text);
        CudaSource { text, tree }
    }

    /// A source already parsed with the CUDA grammar (an open .cu document's own tree).
    pub fn with_tree(text: String, tree: Tree) -> CudaSource {
        CudaSource { text, tree: Some(tree) }
    }

    pub fn kernels(&self) -> Vec<KernelDef> {
        let mut kernels = Vec::new();
        if let Some(tree) = &self.tree {
            let mut scope = Vec::new();
            collect_kernels(tree.root_node(), &self.text, &mut scope, &mut kernels);
        }
        kernels
    }

    /// The kernel whose definition holds `range`, or that `range` covers (the first when it covers
    /// several).
    pub fn kernel_at(&self, range: Range<usize>) -> Option<KernelDef> {
        let kernels = self.kernels();
        kernels
            .iter()
            .find(|k| k.range.start <= range.start && range.end <= k.range.end)
            .or_else(|| kernels.iter().find(|k| range.start <= k.range.start && k.range.end <= range.end))
            .cloned()
    }

    /// The source of `kernel` with everything it does not need blanked, and what was left out.
    pub fn unit_for(&self, kernel: &KernelDef, includes: &IncludeResolver) -> Unit {
        let mut items = Vec::new();
        if let Some(tree) = &self.tree {
            classify_items(tree.root_node(), &self.text, kernel, includes, &mut items);
        }
        let mut keep: Vec<bool> = items.iter().map(|item| matches!(item.class, Class::Keep)).collect();
        // Names defined by items that are kept only if used.
        let mut definers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (idx, item) in items.iter().enumerate() {
            if let Class::IfUsed(names) = &item.class {
                for name in names {
                    definers.entry(name.as_str()).or_default().push(idx);
                }
            }
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut pending: Vec<&str> = Vec::new();
        for (idx, item) in items.iter().enumerate() {
            if keep[idx] {
                pending.extend(identifiers(&self.text[item.range.clone()]));
            }
        }
        while let Some(name) = pending.pop() {
            if !seen.insert(name) {
                continue;
            }
            for &idx in definers.get(name).into_iter().flatten() {
                if !keep[idx] {
                    keep[idx] = true;
                    pending.extend(identifiers(&self.text[items[idx].range.clone()]));
                }
            }
        }
        let mut text = self.text.clone().into_bytes();
        let mut dropped_includes = Vec::new();
        for (item, kept) in items.iter().zip(&keep) {
            if *kept {
                continue;
            }
            if let Class::DropInclude(header) = &item.class {
                dropped_includes.push(header.clone());
            }
            for byte in &mut text[item.range.clone()] {
                if *byte != b'\n' && *byte != b'\r' {
                    *byte = b' ';
                }
            }
        }
        // Blanking replaced whole items, and items end on character boundaries.
        let text = String::from_utf8(text).unwrap_or_default();
        Unit { text, dropped_includes }
    }
}

/// The device code of one kernel, line for line with its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub text: String,
    /// Headers NVRTC cannot compile (host headers, the C library) that were left out.
    pub dropped_includes: Vec<String>,
}

/// Decides which `#include`s NVRTC can follow.
#[derive(Debug, Clone, Default)]
pub struct IncludeResolver {
    /// The CUDA include folders, then the user's.
    pub dirs: Vec<PathBuf>,
    /// The folder of the file being compiled, for `#include "local.cuh"`.
    pub file_dir: Option<PathBuf>,
}

/// Headers that exist in the CUDA include folder but only make sense on the host; NVRTC gives
/// kernels what they need from them (built-in vector types, launch parameters) on its own.
const HOST_HEADERS: &[&str] = &[
    "cuda_runtime.h",
    "cuda_runtime_api.h",
    "cuda.h",
    "cudaTypedefs.h",
    "cuda_profiler_api.h",
    "device_launch_parameters.h",
    "driver_types.h",
    "vector_types.h",
    "builtin_types.h",
];

impl IncludeResolver {
    fn can_include(&self, header: &str, quoted: bool) -> bool {
        if HOST_HEADERS.contains(&header) {
            return false;
        }
        let host_library = ["cublas", "cudnn", "cufft", "curand.h", "cusparse", "cusolver", "nccl", "nvml"];
        if host_library.iter().any(|prefix| header.starts_with(prefix)) {
            return false;
        }
        // Anything that is there is kept, so that `includes::confine` checks it and says why a
        // device file or a folder is not read, instead of calling it a host header.
        let local = quoted.then_some(self.file_dir.as_deref()).flatten();
        local.into_iter().chain(self.dirs.iter().map(PathBuf::as_path)).any(|dir| dir.join(header).exists())
    }
}

enum Class {
    Keep,
    /// Kept when the kernel (or something kept) uses one of these names.
    IfUsed(Vec<String>),
    Drop,
    DropInclude(String),
}

struct Item {
    range: Range<usize>,
    class: Class,
}

/// Walks the containers (namespaces, `extern "C"` blocks, `#if` blocks) and classifies each item.
fn classify_items(node: Node, text: &str, kernel: &KernelDef, includes: &IncludeResolver, items: &mut Vec<Item>) {
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        let range = child.byte_range();
        let class = match child.kind() {
            "namespace_definition" | "linkage_specification" => {
                match child.child_by_field_name("body") {
                    Some(body) if body.kind() == "declaration_list" => {
                        classify_items(body, text, kernel, includes, items);
                    }
                    Some(body) => classify_one(body, text, kernel, items),
                    None => {}
                }
                continue;
            }
            "preproc_if" | "preproc_ifdef" | "preproc_else" | "preproc_elif" | "preproc_elifdef" => {
                classify_items(child, text, kernel, includes, items);
                continue;
            }
            "preproc_include" => {
                let Some(path) = child.child_by_field_name("path") else { continue };
                let written = &text[path.byte_range()];
                let header = written.trim_matches(|c| c == '"' || c == '<' || c == '>');
                if includes.can_include(header, written.starts_with('"')) {
                    Class::Keep
                } else {
                    Class::DropInclude(header.to_string())
                }
            }
            "preproc_call" if text[range.clone()].trim_start().starts_with("#pragma once") => Class::Drop,
            "preproc_def" | "preproc_function_def" | "preproc_call" | "comment" => Class::Keep,
            "using_declaration" | "namespace_alias_definition" => Class::Keep,
            _ => {
                classify_one(child, text, kernel, items);
                continue;
            }
        };
        items.push(Item { range, class });
    }
}

/// A declaration or definition at namespace scope.
fn classify_one(node: Node, text: &str, kernel: &KernelDef, items: &mut Vec<Item>) {
    let range = node.byte_range();
    let inner = if node.kind() == "template_declaration" { last_named_child(node).unwrap_or(node) } else { node };
    let qualifiers = qualifiers(inner, text);
    let class = match inner.kind() {
        "function_definition" if qualifiers.contains(&"__global__") => {
            if range.start <= kernel.name_range.start && kernel.name_range.end <= range.end {
                Class::Keep
            } else {
                Class::Drop
            }
        }
        "function_definition" | "declaration"
            if qualifiers.iter().any(|q| matches!(*q, "__device__" | "constexpr"))
                || (inner.kind() == "declaration" && is_constant_data(inner, text, &qualifiers)) =>
        {
            Class::IfUsed(declared_names(inner, text))
        }
        "function_definition" | "declaration" => Class::Drop,
        "struct_specifier" | "class_specifier" | "union_specifier" | "enum_specifier" | "type_definition"
        | "alias_declaration" => Class::IfUsed(declared_names(inner, text)),
        _ => Class::Drop,
    };
    items.push(Item { range, class });
}

/// `const int N = 4;` and `static const float K = 2.f;` are constants device code can read; other
/// unannotated namespace-scope variables live on the host only.
fn is_constant_data(node: Node, text: &str, qualifiers: &[&str]) -> bool {
    qualifiers.iter().any(|q| matches!(*q, "__constant__" | "__shared__" | "__managed__"))
        || (qualifiers.contains(&"const")
            && !has_descendant(node, "function_declarator")
            && text[node.byte_range()].contains('='))
}

/// The execution-space, storage and cv qualifiers written before a declaration's name.
fn qualifiers<'t>(node: Node, text: &'t str) -> Vec<&'t str> {
    let mut cursor = node.walk();
    node.children(&mut cursor)
        .take_while(|child| child.kind() != "function_declarator" && child.kind() != "compound_statement")
        .filter(|child| {
            matches!(child.kind(), "type_qualifier" | "storage_class_specifier" | "virtual")
                || child.kind().starts_with("__")
                || !child.is_named()
        })
        .map(|child| &text[child.byte_range()])
        .collect()
}

fn last_named_child(node: Node) -> Option<Node> {
    let count = node.named_child_count();
    (count > 0).then(|| node.named_child(count as u32 - 1)).flatten()
}

fn has_descendant(node: Node, kind: &str) -> bool {
    let mut cursor = node.walk();
    let found = node.named_children(&mut cursor).any(|child| child.kind() == kind || has_descendant(child, kind));
    found
}

/// What a declaration defines: a function's or variable's name, a type's name, enumerators.
fn declared_names(node: Node, text: &str) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(name) = node.child_by_field_name("name") {
        names.push(text[name.byte_range()].to_string());
    }
    match node.kind() {
        "enum_specifier" => {
            if let Some(body) = node.child_by_field_name("body") {
                let mut cursor = body.walk();
                for enumerator in body.named_children(&mut cursor) {
                    if let Some(name) = enumerator.child_by_field_name("name") {
                        names.push(text[name.byte_range()].to_string());
                    }
                }
            }
        }
        "type_definition" | "declaration" | "function_definition" => {
            let mut cursor = node.walk();
            let declarators: Vec<Node> = node.children_by_field_name("declarator", &mut cursor).collect();
            for declarator in declarators {
                if let Some(name) = declarator_name(declarator, text) {
                    names.push(name);
                }
            }
            // `struct S {...} s;` and `typedef struct {...} T;` also define the struct's own name.
            if let Some(ty) = node.child_by_field_name("type") {
                if let Some(name) = ty.child_by_field_name("name") {
                    names.push(text[name.byte_range()].to_string());
                }
            }
        }
        _ => {}
    }
    names
}

/// The identifier a declarator declares, through pointers, arrays, initialisers and qualification.
fn declarator_name(mut node: Node, text: &str) -> Option<String> {
    loop {
        match node.kind() {
            "identifier" | "field_identifier" | "type_identifier" | "operator_name" | "destructor_name" => {
                return Some(text[node.byte_range()].to_string())
            }
            "qualified_identifier" => node = node.child_by_field_name("name")?,
            _ => node = node.child_by_field_name("declarator").or_else(|| node.named_child(0))?,
        }
    }
}

/// Every identifier-like word in `text`. Over-inclusive (comments, strings) on purpose: keeping a
/// device function too many is harmless, missing one fails the compile.
fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

fn collect_kernels(node: Node, text: &str, scope: &mut Vec<String>, kernels: &mut Vec<KernelDef>) {
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        match child.kind() {
            "namespace_definition" => {
                let name = child.child_by_field_name("name").map(|n| text[n.byte_range()].to_string());
                if let Some(body) = child.child_by_field_name("body") {
                    let pushed = name.is_some();
                    scope.extend(name);
                    collect_kernels(body, text, scope, kernels);
                    if pushed {
                        scope.pop();
                    }
                }
            }
            "linkage_specification" => match child.child_by_field_name("body") {
                Some(body) if body.kind() == "declaration_list" => collect_kernels(body, text, scope, kernels),
                Some(body) => kernels.extend(kernel_def(body, None, text, scope)),
                None => {}
            },
            "preproc_if" | "preproc_ifdef" | "preproc_else" | "preproc_elif" | "preproc_elifdef" => {
                collect_kernels(child, text, scope, kernels)
            }
            "template_declaration" => {
                if let Some(inner) = last_named_child(child) {
                    kernels.extend(kernel_def(inner, Some(child), text, scope));
                }
            }
            "function_definition" => kernels.extend(kernel_def(child, None, text, scope)),
            _ => {}
        }
    }
}

fn kernel_def(node: Node, template: Option<Node>, text: &str, scope: &[String]) -> Option<KernelDef> {
    if node.kind() != "function_definition" || !qualifiers(node, text).contains(&"__global__") {
        return None;
    }
    let mut declarator = node.child_by_field_name("declarator")?;
    while declarator.kind() != "function_declarator" {
        declarator = declarator.child_by_field_name("declarator")?;
    }
    let name_node = declarator.child_by_field_name("declarator")?;
    let name = text[name_node.byte_range()].to_string();
    let params = declarator
        .child_by_field_name("parameters")
        .map(|list| {
            let mut cursor = list.walk();
            let params: Vec<String> = list
                .named_children(&mut cursor)
                .filter(|p| p.kind() != "comment")
                .map(|p| collapse_space(&text[p.byte_range()]))
                .collect();
            params
        })
        .unwrap_or_default();
    let (template_params, template_defaults_complete) = match template.and_then(|t| t.child_by_field_name("parameters"))
    {
        Some(list) => {
            let mut cursor = list.walk();
            let complete = list.named_children(&mut cursor).all(|p| p.kind().starts_with("optional_"));
            let written = &text[list.byte_range()];
            (Some(collapse_space(written.trim_start_matches('<').trim_end_matches('>'))), complete)
        }
        None => (None, false),
    };
    let start = template.unwrap_or(node).start_byte();
    let qualified_name = scope.iter().map(String::as_str).chain([name.as_str()]).collect::<Vec<_>>().join("::");
    Some(KernelDef {
        name,
        qualified_name,
        range: start..node.end_byte(),
        name_range: name_node.byte_range(),
        template_params,
        template_defaults_complete,
        params,
        annotation: Annotation::before(text, start),
    })
}

fn collapse_space(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The folder of a file URI or path, for local `#include "..."`.
pub fn file_dir(path: &Path) -> Option<PathBuf> {
    path.parent().filter(|p| p.is_dir()).map(Path::to_path_buf)
}

/// A launch `k<<<grid, block, shared, stream>>>(...)` in the source, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchConfig {
    /// Zero-based line of the launch.
    pub line: u32,
    pub grid: Option<String>,
    pub block: Option<String>,
    pub shared: Option<String>,
    /// `float, 4` from `scan<float, 4><<<...>>>`.
    pub template_args: Option<String>,
}

impl CudaSource {
    /// The launches of the kernel called `name` (with or without namespace and template arguments).
    pub fn launches_of(&self, name: &str) -> Vec<LaunchConfig> {
        let mut launches = Vec::new();
        if let Some(tree) = &self.tree {
            collect_launches(tree.root_node(), &self.text, name, &mut launches);
        }
        launches
    }
}

fn collect_launches(node: Node, text: &str, name: &str, launches: &mut Vec<LaunchConfig>) {
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        if child.kind() == "kernel_call_syntax" {
            let Some(function) = node.child_by_field_name("function") else { continue };
            let mut called = function;
            if called.kind() == "qualified_identifier" {
                called = called.child_by_field_name("name").unwrap_or(called);
            }
            let (called_name, template_args) = if called.kind() == "template_function" {
                let args = called.child_by_field_name("arguments").map(|a| {
                    let written = &text[a.byte_range()];
                    collapse_space(written.trim_start_matches('<').trim_end_matches('>'))
                });
                (called.child_by_field_name("name").map_or("", |n| &text[n.byte_range()]), args)
            } else {
                (&text[called.byte_range()], None)
            };
            if called_name != name {
                continue;
            }
            let mut config_cursor = child.walk();
            let args: Vec<String> =
                child.named_children(&mut config_cursor).map(|a| text[a.byte_range()].to_string()).collect();
            launches.push(LaunchConfig {
                line: node.start_position().row as u32,
                grid: args.first().cloned(),
                block: args.get(1).cloned(),
                shared: args.get(2).cloned(),
                template_args,
            });
        } else {
            collect_launches(child, text, name, launches);
        }
    }
}
