//! C, C++ and CUDA: catalog functions, types and built-ins by name, C++ names by namespace,
//! `#include`s by header, plus kernels and their launches.

use std::collections::HashSet;

use tree_sitter::{Node, QueryCursor, StreamingIterator};

use super::{captures, finish_references, query, ChunkData, DiscardedCall, Kernel, Launch, Reference, Role, Source};
use crate::catalog::{Catalog, SymbolIdx, SystemIdx};
use crate::parse::Language;

/// Everything in one top-level chunk, with ranges relative to its start.
pub(super) fn collect(
    language: Language,
    chunk: Node,
    source: &Source,
    catalog: &Catalog,
    cursor: &mut QueryCursor,
) -> ChunkData {
    let query = query(language);
    let names = query.capture_names();
    let mut res = ChunkData::default();
    // Captures first, then their meaning: the context captures (call, skip, launch) of a node may
    // come after its own capture, and asking a node for its parent costs a walk from the root.
    let mut found: Vec<(Node, &str)> = Vec::new();
    let mut called: HashSet<usize> = HashSet::new();
    let mut skipped: HashSet<usize> = HashSet::new();
    // Functions and lambdas compiled for the GPU, at any depth: member functions of structs,
    // `[=] __device__ (...)` lambdas in host code.
    let mut device_ranges: Vec<std::ops::Range<usize>> = Vec::new();
    let mut captures = cursor.captures(query, chunk, source.provider());
    while let Some((m, capture_idx)) = captures.next() {
        let capture = m.captures()[*capture_idx];
        let node = capture.node;
        match names[capture.index as usize] {
            captures::USE_CALL => {
                called.insert(node.id());
            }
            captures::NAME_SKIP | captures::QUALIFIED_INNER | captures::LAUNCH_KERNEL => {
                skipped.insert(node.id());
            }
            captures::LAMBDA => {
                if language == Language::Cuda && has_device_head(node, source) {
                    device_ranges.push(node.byte_range());
                }
            }
            name => {
                if name == captures::FUNCTION && language == Language::Cuda && has_device_head(node, source) {
                    device_ranges.push(node.byte_range());
                }
                found.push((node, name));
            }
        }
    }
    let chunk_is_device = language == Language::Cuda && is_device_function(chunk, source);
    let in_device_code = |range: std::ops::Range<usize>| {
        chunk_is_device || device_ranges.iter().any(|d| d.start <= range.start && range.end <= d.end)
    };
    for (node, capture_name) in found {
        let context = Context {
            call: called.contains(&node.id()),
            skip: skipped.contains(&node.id()),
            device_code: in_device_code(node.byte_range()),
            cuda: language == Language::Cuda,
        };
        match capture_name {
            captures::INCLUDE => {
                let header = source.text(node).trim_matches(|c| c == '<' || c == '>' || c == '"');
                if let Some(system) = catalog.header_system(header) {
                    let symbol = catalog.lookup(header);
                    push(&mut res, node.byte_range(), header, Role::Include, symbol, Some(system));
                }
            }
            captures::NAME if !context.skip => {
                let role = role_of(node, context);
                name_reference(node.byte_range(), source.text(node), role, context, catalog, &mut res)
            }
            captures::QUALIFIED if !context.skip => qualified_reference(node, context, source, catalog, &mut res),
            captures::QUALIFIER => {
                let text = source.text(node);
                if let Some(symbol) = catalog.lookup(text) {
                    push(
                        &mut res,
                        node.byte_range(),
                        text,
                        Role::Qualifier,
                        Some(symbol),
                        Some(catalog.system_of(symbol)),
                    );
                }
            }
            captures::CALL_DISCARDED => {
                let function = node.child_by_field_name("function");
                if let Some(function) = function.filter(|f| f.kind() == "identifier") {
                    if let Some(symbol) = catalog.lookup(source.text(function)) {
                        if catalog.returns_status(symbol) {
                            let name = source.text(function).into();
                            res.discarded_calls.push(DiscardedCall { symbol, name, call_range: node.byte_range() });
                        }
                    }
                }
            }
            captures::DEFINITION => {
                let name = source.text(node);
                if catalog.lookup(name).is_some() || catalog.c_system(name).is_some() {
                    res.defines.push(name.into());
                }
            }
            captures::MACRO => macro_references(node, context, source, catalog, &mut res),
            captures::FUNCTION => {
                if let Some(kernel) = kernel_of(node, source) {
                    res.references.push(Reference {
                        range: kernel.name_range.clone(),
                        name: kernel.name.clone(),
                        role: Role::KernelDefinition,
                        symbol: None,
                        system: catalog.system_by_id("cuda"),
                    });
                    res.kernels.push(kernel);
                }
            }
            captures::LAUNCH => {
                let Some(function) = node.child_by_field_name("function") else { continue };
                let mut walker = node.walk();
                let config = node
                    .named_children(&mut walker)
                    .find(|c| c.kind() == "kernel_call_syntax")
                    .map(|syntax| {
                        let mut walker = syntax.walk();
                        syntax
                            .named_children(&mut walker)
                            .map(|arg| source.text(arg).into())
                            .collect::<Vec<std::sync::Arc<str>>>()
                    })
                    .unwrap_or_default();
                let kernel: std::sync::Arc<str> = source.text(function).into();
                res.references.push(Reference {
                    range: function.byte_range(),
                    name: kernel.clone(),
                    role: Role::Launch,
                    symbol: None,
                    system: catalog.system_by_id("cuda"),
                });
                res.launches.push(Launch {
                    kernel,
                    kernel_range: function.byte_range(),
                    range: node.byte_range(),
                    config,
                });
            }
            _ => {}
        }
    }
    // Ranges so far are absolute; the chunk keeps them relative to its start.
    let base = chunk.start_byte();
    let rel = |r: &mut std::ops::Range<usize>| *r = r.start - base..r.end - base;
    res.references.iter_mut().for_each(|r| rel(&mut r.range));
    res.kernels.iter_mut().for_each(|k| {
        rel(&mut k.name_range);
        rel(&mut k.range);
    });
    res.launches.iter_mut().for_each(|l| {
        rel(&mut l.kernel_range);
        rel(&mut l.range);
    });
    res.discarded_calls.iter_mut().for_each(|d| rel(&mut d.call_range));
    finish_references(&mut res.references);
    res
}

fn push(
    res: &mut ChunkData,
    range: std::ops::Range<usize>,
    name: &str,
    role: Role,
    symbol: Option<SymbolIdx>,
    system: Option<SystemIdx>,
) {
    res.references.push(Reference { range, name: name.into(), role, symbol, system });
}

/// Facts about a node's parent, from the query, and about the code around it.
#[derive(Clone, Copy)]
struct Context {
    /// The function of a call expression.
    call: bool,
    /// Looked at as part of something larger (`ns::name`, a launch).
    skip: bool,
    /// Inside a `__global__` or `__device__` function or lambda.
    device_code: bool,
    /// In a CUDA file.
    cuda: bool,
}

/// Whether a function definition or lambda is marked for the GPU, before its body starts.
fn has_device_head(node: Node, source: &Source) -> bool {
    let Some(body) = node.child_by_field_name("body") else { return false };
    let text = source.text(node);
    let head = text.get(..body.start_byte() - node.start_byte()).unwrap_or("");
    head.contains("__global__") || head.contains("__device__")
}

/// Whether a top-level chunk is a function compiled for the GPU. Device functions of the CUDA
/// language (`printf`, `atomicAdd`, `__expf`) are only recognized there: in host code `printf`
/// is the C library's.
fn is_device_function(chunk: Node, source: &Source) -> bool {
    if !matches!(chunk.kind(), "function_definition" | "template_declaration") {
        return false;
    }
    let text = source.text(chunk);
    let head = text.split('{').next().unwrap_or(text);
    head.contains("__global__") || head.contains("__device__")
}

fn role_of(node: Node, context: Context) -> Role {
    if context.call {
        Role::Call
    } else if node.kind() == "type_identifier" {
        Role::Type
    } else {
        Role::Access
    }
}

fn name_reference(
    range: std::ops::Range<usize>,
    text: &str,
    role: Role,
    context: Context,
    catalog: &Catalog,
    res: &mut ChunkData,
) {
    if let Some(symbol) = catalog.lookup(text) {
        if !device_name_allowed(catalog, symbol, text, context) {
            return;
        }
        push(res, range, text, role, Some(symbol), Some(catalog.system_of(symbol)));
    } else if matches!(role, Role::Call | Role::Type) {
        // An API call or type the catalog has no entry for yet still belongs to its library.
        if let Some(system) = catalog.c_system(text) {
            push(res, range, text, role, None, Some(system));
        }
    }
}

/// Whether a catalogued name may be CUDA's device function or built-in here. A name of the
/// ordinary kind (`printf`, `atomicAdd`) is CUDA's only in device code: in host code `printf` is the
/// C library's. A name starting with `__` is reserved to the implementation by C and C++, and in a
/// CUDA file the implementation is CUDA, so `__syncthreads` is CUDA's wherever it is written: in a
/// macro body, in a function qualified by a macro (`DINLINE`), in code the parser could not place.
/// A file that defines such a name itself is handled apart (`Recognition::shadowed`).
fn device_name_allowed(catalog: &Catalog, symbol: SymbolIdx, text: &str, context: Context) -> bool {
    let device_only = catalog.system(catalog.system_of(symbol)).id == "cuda"
        && matches!(catalog.kind_of(symbol), "function" | "builtin");
    !device_only || context.device_code || (context.cuda && text.starts_with("__"))
}

/// Calls in the body of a `#define`, which tree-sitter keeps as raw text: found by a small lexer and
/// looked up like any other called name. A macro's own name goes to `defines`.
fn macro_references(node: Node, context: Context, source: &Source, catalog: &Catalog, res: &mut ChunkData) {
    if let Some(name) = node.child_by_field_name("name") {
        let name = source.text(name);
        if catalog.lookup(name).is_some() || catalog.c_system(name).is_some() {
            res.defines.push(name.into());
        }
    }
    let Some(body) = node.child_by_field_name("value") else { return };
    let params: Vec<&str> = node
        .child_by_field_name("parameters")
        .map(|p| source.text(p).trim_matches(|c| c == '(' || c == ')').split(',').map(str::trim).collect())
        .unwrap_or_default();
    let text = source.text(body);
    for (range, name) in macro_calls(text) {
        if params.contains(&name) {
            continue;
        }
        let start = body.start_byte() + range.start;
        name_reference(start..start + name.len(), name, Role::Call, context, catalog, res);
    }
}

/// Words after which `name(` is still a call, not the declarator of a declaration.
const BEFORE_CALL: &[&str] =
    &["return", "else", "do", "case", "throw", "co_return", "co_yield", "co_await", "new", "delete"];

/// The names called in macro body text: identifiers followed by `(`, leaving out comments, strings,
/// member calls (`.f(`, `->f(`), qualified ones (`ns::f(`, though `::f(` counts), names pasted
/// together (`a##f(`) or stringized (`#f`) and declarators (`float f(`). Ranges are byte offsets into `text`.
fn macro_calls(text: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Tok<'a> {
        Ident(&'a str),
        Punct(&'a str),
    }
    let bytes = text.as_bytes();
    let mut toks: Vec<(usize, Tok)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() || c == b'\\' {
            i += 1;
        } else if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
        } else if text[i..].starts_with("/*") {
            i = text[i + 2..].find("*/").map_or(bytes.len(), |n| i + 2 + n + 2);
        } else if c == b'"' || c == b'\'' {
            // A string or character literal, escapes included; a raw string is rare enough in a macro
            // to be read as an ordinary one.
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_digit() {
            // Numbers with their suffixes and hex digits (`0x1fu`, `1e-3f`) are not names.
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b'\'')) {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            toks.push((start, Tok::Ident(&text[start..i])));
        } else {
            let len = if ["::", "->", "##"].iter().any(|p| text[i..].starts_with(p)) { 2 } else { 1 };
            // Past ASCII, a whole character: never split one.
            let len = if c.is_ascii() { len } else { text[i..].chars().next().map_or(1, char::len_utf8) };
            toks.push((i, Tok::Punct(&text[i..i + len])));
            i += len;
        }
    }
    let mut res = Vec::new();
    for (k, &(start, tok)) in toks.iter().enumerate() {
        let Tok::Ident(name) = tok else { continue };
        if toks.get(k + 1).map(|t| t.1) != Some(Tok::Punct("(")) {
            continue;
        }
        let before = k.checked_sub(1).map(|p| toks[p].1);
        let called = match before {
            None => true,
            Some(Tok::Punct("." | "->" | "##" | "#")) => false,
            Some(Tok::Punct("::")) => {
                !matches!(k.checked_sub(2).map(|p| toks[p].1), Some(Tok::Ident(_) | Tok::Punct(">")))
            }
            Some(Tok::Ident(word)) => BEFORE_CALL.contains(&word),
            Some(Tok::Punct(_)) => true,
        };
        if called {
            res.push((start..start + name.len(), name));
        }
    }
    res
}

fn qualified_reference(node: Node, context: Context, source: &Source, catalog: &Catalog, res: &mut ChunkData) {
    // Written forms vary (`thrust :: sort`, `cub::BlockReduce<float, 128>`): normalise first.
    let text: String = source.text(node).chars().filter(|c| !c.is_whitespace()).collect();
    let name = strip_template_arguments(&text);
    let name = name.trim_start_matches("::");
    let role = role_of(node, context);
    if let Some(symbol) = catalog.lookup(name) {
        // `::__syncthreads()` names the same built-in; `::printf` in host code is still C's.
        if !device_name_allowed(catalog, symbol, name, context) {
            return;
        }
        push(res, node.byte_range(), name, role, Some(symbol), Some(catalog.system_of(symbol)));
    } else if let Some(system) = name.split("::").next().and_then(|root| catalog.namespace_system(root)) {
        push(res, node.byte_range(), name, role, None, Some(system));
    }
}

/// `cub::BlockReduce<float,128>::TempStorage` -> `cub::BlockReduce::TempStorage`.
fn strip_template_arguments(text: &str) -> String {
    let mut res = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => res.push(c),
            _ => {}
        }
    }
    res
}

/// A `__global__` function definition's name and range.
fn kernel_of(node: Node, source: &Source) -> Option<Kernel> {
    let mut walker = node.walk();
    let is_kernel = node.children(&mut walker).any(|child| {
        child.kind() == "__global__"
            || (child.kind() == "type_qualifier" && source.text(child) == "__global__")
            || (child.kind() == "storage_class_specifier" && source.text(child) == "__global__")
    });
    if !is_kernel {
        return None;
    }
    let mut declarator = node.child_by_field_name("declarator")?;
    // Pointer and reference declarators wrap the function declarator.
    while declarator.kind() != "function_declarator" {
        declarator = declarator.child_by_field_name("declarator")?;
    }
    let name = declarator.child_by_field_name("declarator")?;
    Some(Kernel { name: source.text(name).into(), name_range: name.byte_range(), range: node.byte_range() })
}

#[cfg(test)]
mod tests {
    use super::strip_template_arguments;

    #[test]
    fn strips_template_arguments() {
        assert_eq!(
            strip_template_arguments("cub::BlockReduce<float,128>::TempStorage"),
            "cub::BlockReduce::TempStorage"
        );
        assert_eq!(strip_template_arguments("thrust::device_vector<std::pair<int,int>>"), "thrust::device_vector");
    }
}
