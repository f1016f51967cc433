//! Python: resolves names through imports and scopes, then looks the qualified names up.
//!
//! Scoping follows Python's rules closely enough for attribution: a function-local binding anywhere
//! in a function hides a module-level import of the same name in the whole function; class bodies
//! do not enclose their methods; `global`/`nonlocal` names go to the module.

use std::borrow::Cow;
use std::collections::HashMap;

use tree_sitter::{Node, QueryCursor, StreamingIterator, Tree};

use super::{captures, node_text, query, Recognition, Reference, Role};
use crate::catalog::Catalog;
use crate::parse::Language;

/// A name bound by an import at module level: `F` -> `torch.nn.functional`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportBinding {
    pub name: String,
    pub target: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ScopeKind {
    Module,
    Function,
    Class,
}

struct Scope {
    end: usize,
    kind: ScopeKind,
    parent: usize,
}

struct Binding {
    scope: usize,
    offset: usize,
    /// The qualified name for import bindings; `None` for any other binding.
    target: Option<String>,
}

struct Resolver<'a> {
    scopes: Vec<Scope>,
    /// Bindings per name, in every scope, in document order.
    bindings: HashMap<Cow<'a, str>, Vec<Binding>>,
    globals: HashMap<(usize, &'a str), ()>,
    outer: HashMap<&'a str, &'a str>,
}

impl<'a> Resolver<'a> {
    /// The qualified target of `name` used at `offset` in `scope`, when it is an import.
    fn resolve(&self, name: &str, scope: usize, offset: usize) -> Option<&str> {
        let mut scope_idx = scope;
        let mut nested = false;
        loop {
            let scope = &self.scopes[scope_idx];
            let visible = !(scope.kind == ScopeKind::Class && nested);
            if visible && self.globals.contains_key(&(scope_idx, name)) {
                scope_idx = 0;
                nested = true;
                continue;
            }
            if visible {
                let mut in_scope = self.bindings.get(name).into_iter().flatten().filter(|b| b.scope == scope_idx);
                if let Some(first) = in_scope.next() {
                    let before = std::iter::once(first).chain(in_scope).take_while(|b| b.offset <= offset).last();
                    return before.unwrap_or(first).target.as_deref();
                }
            }
            if scope_idx == 0 {
                return self.outer.get(name).copied();
            }
            nested = true;
            scope_idx = scope.parent;
        }
    }
}

pub(super) fn recognize(source: &[u8], tree: &Tree, catalog: &Catalog, outer_imports: &[ImportBinding]) -> Recognition {
    let query = query(Language::Python);
    let names = query.capture_names();
    let mut cursor = QueryCursor::new();
    let mut resolver = Resolver {
        scopes: vec![Scope { end: usize::MAX, kind: ScopeKind::Module, parent: 0 }],
        bindings: HashMap::new(),
        globals: HashMap::new(),
        outer: outer_imports.iter().map(|b| (b.name.as_str(), b.target.as_str())).collect(),
    };
    let mut stack = vec![0usize];
    let mut uses: Vec<(Node, usize)> = Vec::new();
    let mut imports: Vec<(Node, usize)> = Vec::new();
    let mut binding_nodes: std::collections::HashSet<usize> = Default::default();

    let mut captures = cursor.captures(query, tree.root_node(), source);
    while let Some((m, capture_idx)) = captures.next() {
        let capture = m.captures()[*capture_idx];
        let node = capture.node;
        let start = node.start_byte();
        while stack.len() > 1 && resolver.scopes[*stack.last().unwrap()].end <= start {
            stack.pop();
        }
        let current = *stack.last().unwrap();
        match names[capture.index as usize] {
            captures::SCOPE | captures::SCOPE_CLASS => {
                let kind = if names[capture.index as usize] == captures::SCOPE_CLASS {
                    ScopeKind::Class
                } else {
                    ScopeKind::Function
                };
                resolver.scopes.push(Scope { end: node.end_byte(), kind, parent: current });
                stack.push(resolver.scopes.len() - 1);
            }
            captures::IMPORT | captures::IMPORT_FROM => imports.push((node, current)),
            captures::BINDING | captures::BINDING_DEFINITION => {
                // A definition's name belongs to the scope around the definition.
                let scope = if names[capture.index as usize] == captures::BINDING_DEFINITION {
                    resolver.scopes[current].parent
                } else {
                    current
                };
                if binding_nodes.insert(node.id()) {
                    let name = node_text(node, source);
                    resolver.bindings.entry(Cow::Borrowed(name)).or_default().push(Binding {
                        scope,
                        offset: start,
                        target: None,
                    });
                }
            }
            captures::BINDING_GLOBAL => {
                binding_nodes.insert(node.id());
                resolver.globals.insert((current, node_text(node, source)), ());
            }
            captures::CHAIN | captures::NAME => uses.push((node, current)),
            _ => {}
        }
    }

    let mut res = Recognition::default();
    for (node, scope) in imports {
        import_references(node, scope, source, catalog, &mut resolver, &mut res);
    }
    // Imports were pushed after plain bindings; restore document order per name.
    for bindings in resolver.bindings.values_mut() {
        bindings.sort_by_key(|b| b.offset);
    }
    for (node, scope) in uses {
        if node.kind() == "attribute" {
            chain_references(node, scope, source, catalog, &resolver, &mut res);
        } else if is_plain_use(node) && !binding_nodes.contains(&node.id()) {
            let name = node_text(node, source);
            if let Some(target) = resolver.resolve(name, scope, node.start_byte()) {
                push_reference(&mut res, catalog, node.byte_range(), target.to_string(), role_of(node));
            }
        }
    }
    res.module_imports = resolver
        .bindings
        .iter()
        .filter_map(|(name, bindings)| {
            let last = bindings.iter().filter(|b| b.scope == 0).last()?;
            Some(ImportBinding { name: name.to_string(), target: last.target.clone()? })
        })
        .collect();
    res.module_imports.sort_by(|a, b| a.name.cmp(&b.name));
    res
}

/// Whether an identifier stands for a value here (not an attribute name, a keyword argument's name
/// or part of an import statement, which are handled elsewhere).
fn is_plain_use(node: Node) -> bool {
    let Some(parent) = node.parent() else { return true };
    match parent.kind() {
        "attribute"
        | "dotted_name"
        | "aliased_import"
        | "import_statement"
        | "import_from_statement"
        | "global_statement"
        | "nonlocal_statement" => false,
        "keyword_argument" => parent.child_by_field_name("name") != Some(node),
        _ => true,
    }
}

/// The role of a use by where it sits: called, decorating, or just referred to.
fn role_of(node: Node) -> Role {
    let Some(parent) = node.parent() else { return Role::Access };
    match parent.kind() {
        "decorator" => Role::Decorator,
        "call" if parent.child_by_field_name("function") == Some(node) => {
            if parent.parent().is_some_and(|p| p.kind() == "decorator") {
                Role::Decorator
            } else {
                Role::Call
            }
        }
        _ => Role::Access,
    }
}

fn push_reference(res: &mut Recognition, catalog: &Catalog, range: std::ops::Range<usize>, name: String, role: Role) {
    let symbol = catalog.lookup(&name);
    let system = match symbol {
        Some(idx) => Some(catalog.system_of(idx)),
        None => catalog.python_system(&name),
    };
    if system.is_some() {
        res.references.push(Reference { range, name: name.into_boxed_str(), role, symbol, system });
    }
}

/// Binds the names an import statement introduces and records references on its parts.
fn import_references<'a>(
    node: Node,
    scope: usize,
    source: &'a [u8],
    catalog: &Catalog,
    resolver: &mut Resolver<'a>,
    res: &mut Recognition,
) {
    let mut bind = |name: Cow<'a, str>, offset: usize, target: String| {
        resolver.bindings.entry(name).or_default().push(Binding { scope, offset, target: Some(target) });
    };
    // References on each segment of a dotted module name: torch, torch.nn, torch.nn.functional.
    let dotted = |dotted: Node, prefix: &str, res: &mut Recognition| -> String {
        let mut qualified = prefix.to_string();
        let mut walker = dotted.walk();
        for part in dotted.named_children(&mut walker).filter(|n| n.kind() == "identifier") {
            if !qualified.is_empty() {
                qualified.push('.');
            }
            qualified.push_str(node_text(part, source));
            push_reference(res, catalog, part.byte_range(), qualified.clone(), Role::Import);
        }
        qualified
    };
    let mut walker = node.walk();
    if node.kind() == "import_statement" {
        for item in node.children_by_field_name("name", &mut walker) {
            match item.kind() {
                "dotted_name" => {
                    let full = dotted(item, "", res);
                    // `import a.b.c` binds `a`.
                    if let Some(first) = item.named_child(0) {
                        let root = node_text(first, source);
                        bind(Cow::Borrowed(root), item.start_byte(), root.to_string());
                    }
                    let _ = full;
                }
                "aliased_import" => {
                    let (Some(name), Some(alias)) =
                        (item.child_by_field_name("name"), item.child_by_field_name("alias"))
                    else {
                        continue;
                    };
                    let full = dotted(name, "", res);
                    push_reference(res, catalog, alias.byte_range(), full.clone(), Role::Import);
                    bind(Cow::Borrowed(node_text(alias, source)), item.start_byte(), full);
                }
                _ => {}
            }
        }
        return;
    }
    // from MODULE import NAMES
    let Some(module) = node.child_by_field_name("module_name") else { return };
    if module.kind() != "dotted_name" {
        return; // Relative imports name the user's own package.
    }
    let module_name = dotted(module, "", res);
    let mut walker = node.walk();
    for child in node.named_children(&mut walker) {
        if child.kind() == "wildcard_import" {
            if catalog.knows_python_module(&module_name) {
                push_reference(res, catalog, child.byte_range(), module_name.clone(), Role::Import);
                for (member, _) in catalog.python_members(&module_name) {
                    bind(Cow::Owned(member.to_string()), child.start_byte(), format!("{module_name}.{member}"));
                }
            }
            continue;
        }
    }
    let mut walker = node.walk();
    for item in node.children_by_field_name("name", &mut walker) {
        let (name, alias) = match item.kind() {
            "dotted_name" => (item, None),
            "aliased_import" => match item.child_by_field_name("name") {
                Some(name) => (name, item.child_by_field_name("alias")),
                None => continue,
            },
            _ => continue,
        };
        let full = dotted(name, &module_name, res);
        let bound = alias.unwrap_or(name);
        if let Some(alias) = alias {
            push_reference(res, catalog, alias.byte_range(), full.clone(), Role::Import);
        }
        bind(Cow::Borrowed(node_text(bound, source)), item.start_byte(), full);
    }
}

/// References for an attribute chain `root.a.b.c` whose root is an imported name.
fn chain_references(
    node: Node,
    scope: usize,
    source: &[u8],
    catalog: &Catalog,
    resolver: &Resolver,
    res: &mut Recognition,
) {
    // Only the outermost attribute of a chain is handled; inner ones are its prefixes.
    if let Some(parent) = node.parent() {
        if parent.kind() == "attribute" && parent.child_by_field_name("object") == Some(node) {
            return;
        }
    }
    let mut segments = Vec::new();
    let mut current = node;
    while current.kind() == "attribute" {
        let Some(attr) = current.child_by_field_name("attribute") else { return };
        segments.push(attr);
        let Some(object) = current.child_by_field_name("object") else { return };
        current = object;
    }
    if current.kind() != "identifier" {
        return; // A method on some expression's value: its type is unknown here.
    }
    let Some(target) = resolver.resolve(node_text(current, source), scope, current.start_byte()) else { return };
    let mut qualified = target.to_string();
    push_reference(res, catalog, current.byte_range(), qualified.clone(), Role::Access);
    let leaf_role = role_of(node);
    for (idx, segment) in segments.iter().rev().enumerate() {
        qualified.push('.');
        qualified.push_str(node_text(*segment, source));
        let role = if idx + 1 == segments.len() { leaf_role } else { Role::Access };
        push_reference(res, catalog, segment.byte_range(), qualified.clone(), role);
    }
}
