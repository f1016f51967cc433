//! Python: resolves names through imports and scopes, then looks the qualified names up.
//!
//! Scoping follows Python's rules closely enough for attribution: a function-local binding anywhere
//! in a function hides a module-level import of the same name in the whole function; class bodies
//! do not enclose their methods; `global`/`nonlocal` names go to the module.
//!
//! Two passes. `collect` reads one top-level chunk and settles what it can alone: its imports, and
//! names bound inside its own functions. What is left (names the chunk uses but does not bind) is
//! resolved by `resolve` against the bindings of the whole module.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use tree_sitter::{Node, QueryCursor, StreamingIterator};

use super::{captures, finish_references, query, ChunkData, Recognition, Reference, Role, Source};
use crate::catalog::Catalog;
use crate::parse::Language;

/// A name bound by an import at module level: `F` -> `torch.nn.functional`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportBinding {
    pub name: String,
    pub target: String,
}

/// What one chunk binds at module level and uses without binding, offsets relative to its start.
#[derive(Clone, Debug, Default)]
pub(super) struct Facts {
    /// References settled inside the chunk: import statements, names of function-local imports.
    local_refs: Vec<Reference>,
    free_uses: Vec<FreeUse>,
    module_bindings: Vec<ModuleBinding>,
}

/// A use of a name the chunk does not bind: `root.seg1.seg2` (or just `root`).
#[derive(Clone, Debug)]
struct FreeUse {
    name: Arc<str>,
    range: Range<usize>,
    segments: Vec<(Range<usize>, Arc<str>)>,
    /// The role of the last part: called, decorating or referred to.
    role: Role,
}

#[derive(Clone, Debug)]
struct ModuleBinding {
    name: Arc<str>,
    offset: usize,
    /// The qualified module or symbol for imports; `None` for any other binding.
    target: Option<Arc<str>>,
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

struct LocalBinding {
    scope: usize,
    offset: usize,
    target: Option<Arc<str>>,
}

enum Resolution {
    Import(Arc<str>),
    Shadowed,
    /// Not bound inside the chunk: the module decides.
    Free,
}

/// Scopes and bindings inside one chunk; the module scope (index 0) is left to `resolve`.
struct ChunkScopes<'a> {
    scopes: Vec<Scope>,
    bindings: HashMap<&'a str, Vec<LocalBinding>>,
    globals: HashSet<(usize, &'a str)>,
}

impl ChunkScopes<'_> {
    fn resolve(&self, name: &str, scope: usize, offset: usize) -> Resolution {
        let mut scope_idx = scope;
        let mut nested = false;
        while scope_idx != 0 {
            let scope = &self.scopes[scope_idx];
            let visible = !(scope.kind == ScopeKind::Class && nested);
            if visible && self.globals.contains(&(scope_idx, name)) {
                return Resolution::Free;
            }
            if visible {
                let mut in_scope = self.bindings.get(name).into_iter().flatten().filter(|b| b.scope == scope_idx);
                if let Some(first) = in_scope.next() {
                    let before = std::iter::once(first).chain(in_scope).take_while(|b| b.offset <= offset).last();
                    return match &before.unwrap_or(first).target {
                        Some(target) => Resolution::Import(target.clone()),
                        None => Resolution::Shadowed,
                    };
                }
            }
            nested = true;
            scope_idx = scope.parent;
        }
        Resolution::Free
    }
}

/// First pass over one top-level chunk.
pub(super) fn collect(chunk: Node, source: &Source, catalog: &Catalog, cursor: &mut QueryCursor) -> Facts {
    let base = chunk.start_byte();
    let query = query(Language::Python);
    let names = query.capture_names();
    let mut scopes = ChunkScopes {
        scopes: vec![Scope { end: usize::MAX, kind: ScopeKind::Module, parent: 0 }],
        bindings: HashMap::new(),
        globals: HashSet::new(),
    };
    let mut facts = Facts::default();
    let mut stack = vec![0usize];
    let mut uses: Vec<(Node, usize)> = Vec::new();
    let mut imports: Vec<(Node, usize)> = Vec::new();
    let mut binding_nodes: HashSet<usize> = HashSet::new();
    let mut context: HashMap<usize, Context> = HashMap::new();

    let mut captures = cursor.captures(query, chunk, source.provider());
    while let Some((m, capture_idx)) = captures.next() {
        let capture = m.captures()[*capture_idx];
        let node = capture.node;
        let start = node.start_byte();
        while stack.len() > 1 && scopes.scopes[*stack.last().unwrap()].end <= start {
            stack.pop();
        }
        let current = *stack.last().unwrap();
        let capture_name = names[capture.index as usize];
        match capture_name {
            captures::SCOPE | captures::SCOPE_CLASS => {
                let kind = if capture_name == captures::SCOPE_CLASS { ScopeKind::Class } else { ScopeKind::Function };
                scopes.scopes.push(Scope { end: node.end_byte(), kind, parent: current });
                stack.push(scopes.scopes.len() - 1);
            }
            captures::IMPORT | captures::IMPORT_FROM => imports.push((node, current)),
            captures::BINDING | captures::BINDING_DEFINITION => {
                // A definition's name belongs to the scope around the definition.
                let scope =
                    if capture_name == captures::BINDING_DEFINITION { scopes.scopes[current].parent } else { current };
                if binding_nodes.insert(node.id()) {
                    let name = source.text(node);
                    if scope == 0 {
                        facts.module_bindings.push(ModuleBinding {
                            name: name.into(),
                            offset: start - base,
                            target: None,
                        });
                    } else {
                        scopes.bindings.entry(name).or_default().push(LocalBinding {
                            scope,
                            offset: start,
                            target: None,
                        });
                    }
                }
            }
            captures::BINDING_GLOBAL => {
                binding_nodes.insert(node.id());
                scopes.globals.insert((current, source.text(node)));
            }
            captures::CHAIN | captures::NAME => uses.push((node, current)),
            captures::NAME_SKIP => context.entry(node.id()).or_default().skip = true,
            captures::CHAIN_INNER => context.entry(node.id()).or_default().inner = true,
            captures::USE_CALL => context.entry(node.id()).or_default().call = true,
            captures::USE_DECORATOR => context.entry(node.id()).or_default().decorator = true,
            _ => {}
        }
    }

    for (node, scope) in imports {
        import_statement(node, scope, source, base, catalog, &mut scopes, &mut facts);
    }
    for bindings in scopes.bindings.values_mut() {
        bindings.sort_by_key(|b| b.offset);
    }
    facts.module_bindings.sort_by_key(|b| b.offset);
    for (node, scope) in uses {
        let ctx = context.get(&node.id()).copied().unwrap_or_default();
        let is_use = match node.kind() {
            "attribute" => !ctx.inner,
            _ => !ctx.skip && !binding_nodes.contains(&node.id()),
        };
        if !is_use {
            continue;
        }
        let role = ctx.role();
        let Some((root, segments)) = use_parts(node) else { continue };
        let name = source.text(root);
        let rel = |r: Range<usize>| r.start - base..r.end - base;
        let segments: Vec<(Range<usize>, Arc<str>)> =
            segments.iter().map(|s| (rel(s.byte_range()), Arc::from(source.text(*s)))).collect();
        let free = FreeUse { name: name.into(), range: rel(root.byte_range()), segments, role };
        match scopes.resolve(name, scope, root.start_byte()) {
            Resolution::Import(target) => push_use(&mut facts.local_refs, catalog, &free, &target),
            Resolution::Shadowed => {}
            Resolution::Free => facts.free_uses.push(free),
        }
    }
    facts
}

/// What the query says about a node besides its own capture: facts about its parent.
#[derive(Clone, Copy, Default)]
struct Context {
    /// Not a use: an attribute name, a chain root, a keyword's name, part of an import.
    skip: bool,
    /// The object of a larger attribute chain.
    inner: bool,
    call: bool,
    decorator: bool,
}

impl Context {
    fn role(self) -> Role {
        if self.decorator {
            Role::Decorator
        } else if self.call {
            Role::Call
        } else {
            Role::Access
        }
    }
}

/// Splits a use into its root name and the attribute names after it.
fn use_parts(node: Node) -> Option<(Node, Vec<Node>)> {
    let mut segments = Vec::new();
    let mut current = node;
    while current.kind() == "attribute" {
        segments.push(current.child_by_field_name("attribute")?);
        current = current.child_by_field_name("object")?;
    }
    // A method on some expression's value: its type is unknown here.
    (current.kind() == "identifier").then(|| {
        segments.reverse();
        (current, segments)
    })
}

/// Records a reference when the catalog knows the name or the system it belongs to.
fn push_reference(out: &mut Vec<Reference>, catalog: &Catalog, range: Range<usize>, name: &str, role: Role) {
    let symbol = catalog.lookup(name);
    let system = match symbol {
        Some(idx) => Some(catalog.system_of(idx)),
        None => catalog.python_system(name),
    };
    if system.is_some() {
        out.push(Reference { range, name: name.into(), role, symbol, system });
    }
}

/// References for a resolved use: the root stands for `target`, each attribute extends it.
fn push_use(out: &mut Vec<Reference>, catalog: &Catalog, used: &FreeUse, target: &str) {
    let root_role = if used.segments.is_empty() { used.role } else { Role::Access };
    push_reference(out, catalog, used.range.clone(), target, root_role);
    let mut qualified = target.to_string();
    for (idx, (range, segment)) in used.segments.iter().enumerate() {
        qualified.push('.');
        qualified.push_str(segment);
        let role = if idx + 1 == used.segments.len() { used.role } else { Role::Access };
        push_reference(out, catalog, range.clone(), &qualified, role);
    }
}

/// Binds the names an import statement introduces and records references on its parts.
fn import_statement<'a>(
    node: Node,
    scope: usize,
    source: &'a Source<'a>,
    base: usize,
    catalog: &Catalog,
    scopes: &mut ChunkScopes<'a>,
    facts: &mut Facts,
) {
    let rel = |r: Range<usize>| r.start - base..r.end - base;
    let bind = |name: Arc<str>,
                offset: usize,
                target: String,
                scopes: &mut ChunkScopes<'a>,
                facts: &mut Facts,
                local_name: Option<&'a str>| {
        if scope == 0 {
            facts.module_bindings.push(ModuleBinding { name, offset: offset - base, target: Some(target.into()) });
        } else if let Some(local_name) = local_name {
            scopes.bindings.entry(local_name).or_default().push(LocalBinding {
                scope,
                offset,
                target: Some(target.into()),
            });
        }
    };
    let mut refs = Vec::new();
    // References on each segment of a dotted module name: torch, torch.nn, torch.nn.functional.
    let dotted = |dotted: Node, prefix: &str, refs: &mut Vec<Reference>| -> String {
        let mut qualified = prefix.to_string();
        let mut walker = dotted.walk();
        for part in dotted.named_children(&mut walker).filter(|n| n.kind() == "identifier") {
            if !qualified.is_empty() {
                qualified.push('.');
            }
            qualified.push_str(source.text(part));
            push_reference(refs, catalog, rel(part.byte_range()), &qualified, Role::Import);
        }
        qualified
    };
    let mut walker = node.walk();
    if node.kind() == "import_statement" {
        for item in node.children_by_field_name("name", &mut walker) {
            match item.kind() {
                "dotted_name" => {
                    dotted(item, "", &mut refs);
                    // `import a.b.c` binds `a`.
                    if let Some(first) = item.named_child(0) {
                        let root = source.text(first);
                        bind(root.into(), item.start_byte(), root.to_string(), scopes, facts, Some(root));
                    }
                }
                "aliased_import" => {
                    let (Some(name), Some(alias)) =
                        (item.child_by_field_name("name"), item.child_by_field_name("alias"))
                    else {
                        continue;
                    };
                    let full = dotted(name, "", &mut refs);
                    push_reference(&mut refs, catalog, rel(alias.byte_range()), &full, Role::Import);
                    let alias = source.text(alias);
                    bind(alias.into(), item.start_byte(), full, scopes, facts, Some(alias));
                }
                _ => {}
            }
        }
        facts.local_refs.extend(refs);
        return;
    }
    // from MODULE import NAMES
    let Some(module) = node.child_by_field_name("module_name") else { return };
    if module.kind() != "dotted_name" {
        return; // Relative imports name the user's own package.
    }
    let module_name = dotted(module, "", &mut refs);
    let mut walker = node.walk();
    if let Some(wildcard) = node.named_children(&mut walker).find(|c| c.kind() == "wildcard_import") {
        if catalog.knows_python_module(&module_name) {
            push_reference(&mut refs, catalog, rel(wildcard.byte_range()), &module_name, Role::Import);
            // Only module-level wildcard imports are legal Python, so no local binding is needed.
            for (member, _) in catalog.python_members(&module_name) {
                let target = format!("{module_name}.{member}");
                bind(member.into(), wildcard.start_byte(), target, scopes, facts, None);
            }
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
        let full = dotted(name, &module_name, &mut refs);
        if let Some(alias) = alias {
            push_reference(&mut refs, catalog, rel(alias.byte_range()), &full, Role::Import);
        }
        let bound = source.text(alias.unwrap_or(name));
        bind(bound.into(), item.start_byte(), full, scopes, facts, Some(bound));
    }
    facts.local_refs.extend(refs);
}

/// Second pass: resolves chunks' free names against the module's bindings. When the edit since
/// `previous` touched no module-level import nor any binding of an imported name (the usual case:
/// typing inside a function), only the `fresh` chunks are resolved; otherwise all of them.
pub(super) fn resolve(
    res: &mut Recognition,
    fresh: &[usize],
    previous: Option<&Recognition>,
    removed: &[&Facts],
    catalog: &Catalog,
    outer: &[ImportBinding],
) {
    let environment_kept = previous.is_some_and(|prev| {
        let touched = fresh.iter().map(|&idx| &*res.chunks[idx].facts).chain(removed.iter().copied());
        prev.outer == outer
            && !touched
                .flat_map(|facts| &facts.module_bindings)
                .any(|b| b.target.is_some() || prev.imported.contains(&b.name))
    });
    let todo: Vec<usize> = if environment_kept { fresh.to_vec() } else { (0..res.chunks.len()).collect() };
    let imported = match previous {
        Some(prev) if environment_kept => prev.imported.clone(),
        _ => Arc::new(
            res.chunks
                .iter()
                .flat_map(|c| &c.facts.module_bindings)
                .filter(|b| b.target.is_some())
                .map(|b| b.name.clone())
                .collect(),
        ),
    };
    let outer_map: HashMap<&str, &str> = outer.iter().map(|b| (b.name.as_str(), b.target.as_str())).collect();
    // Module-level bindings of the imported names only, in document order, with absolute offsets.
    let mut env: HashMap<&str, Vec<EnvBinding>> = HashMap::new();
    for chunk in &res.chunks {
        for b in chunk.facts.module_bindings.iter().filter(|b| imported.contains(&b.name)) {
            env.entry(&b.name).or_default().push((chunk.start + b.offset, b.target.as_ref()));
        }
    }
    let lookup = |name: &str, offset: usize| -> Option<&str> {
        match env.get(name) {
            Some(bindings) => {
                let before = bindings.iter().take_while(|(at, _)| *at <= offset).last();
                before.unwrap_or(&bindings[0]).1.map(|t| &**t)
            }
            None => outer_map.get(name).copied(),
        }
    };
    let mut updated = Vec::with_capacity(todo.len());
    for idx in todo {
        let chunk = &res.chunks[idx];
        let mut references = chunk.facts.local_refs.clone();
        for used in &chunk.facts.free_uses {
            if let Some(target) = lookup(&used.name, chunk.start + used.range.start) {
                push_use(&mut references, catalog, used, target);
            }
        }
        finish_references(&mut references);
        updated.push((idx, ChunkData { references, ..Default::default() }));
    }
    let module_imports = match previous {
        Some(prev) if environment_kept => prev.module_imports.clone(),
        _ => {
            let mut list: Vec<ImportBinding> = env
                .iter()
                .filter_map(|(name, bindings)| {
                    let target = bindings.last()?.1?;
                    Some(ImportBinding { name: name.to_string(), target: target.to_string() })
                })
                .collect();
            list.sort_by(|a, b| a.name.cmp(&b.name));
            list
        }
    };
    drop(env);
    for (idx, data) in updated {
        res.chunks[idx].data = Arc::new(data);
    }
    res.module_imports = module_imports;
    res.imported = imported;
    res.outer = outer.to_vec();
}

/// A module-level binding: absolute offset, and the import target if it is an import.
type EnvBinding<'a> = (usize, Option<&'a Arc<str>>);
