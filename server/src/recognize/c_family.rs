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
            name => found.push((node, name)),
        }
    }
    let device_code = language == Language::Cuda && is_device_function(chunk, source);
    for (node, capture_name) in found {
        let context = Context { call: called.contains(&node.id()), skip: skipped.contains(&node.id()), device_code };
        match capture_name {
            captures::INCLUDE => {
                let header = source.text(node).trim_matches(|c| c == '<' || c == '>' || c == '"');
                if let Some(system) = catalog.header_system(header) {
                    let symbol = catalog.lookup(header);
                    push(&mut res, node.byte_range(), header, Role::Include, symbol, Some(system));
                }
            }
            captures::NAME if !context.skip => name_reference(node, context, source, catalog, &mut res),
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
                            res.discarded_calls.push(DiscardedCall { symbol, call_range: node.byte_range() });
                        }
                    }
                }
            }
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
    /// Inside a `__global__` or `__device__` function.
    device_code: bool,
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

fn name_reference(node: Node, context: Context, source: &Source, catalog: &Catalog, res: &mut ChunkData) {
    let role = role_of(node, context);
    let text = source.text(node);
    if let Some(symbol) = catalog.lookup(text) {
        let system = catalog.system_of(symbol);
        let device_only =
            catalog.system(system).id == "cuda" && matches!(catalog.kind_of(symbol), "function" | "builtin");
        if device_only && !context.device_code {
            return;
        }
        push(res, node.byte_range(), text, role, Some(symbol), Some(system));
    } else if matches!(role, Role::Call | Role::Type) {
        // An API call or type the catalog has no entry for yet still belongs to its library.
        if let Some(system) = catalog.c_system(text) {
            push(res, node.byte_range(), text, role, None, Some(system));
        }
    }
}

fn qualified_reference(node: Node, context: Context, source: &Source, catalog: &Catalog, res: &mut ChunkData) {
    // Written forms vary (`thrust :: sort`, `cub::BlockReduce<float, 128>`): normalise first.
    let text: String = source.text(node).chars().filter(|c| !c.is_whitespace()).collect();
    let name = strip_template_arguments(&text);
    let name = name.trim_start_matches("::");
    let role = role_of(node, context);
    if let Some(symbol) = catalog.lookup(name) {
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
