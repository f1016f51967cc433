//! Triton kernels in a Python document, read from its syntax tree and never by importing it (files
//! that launch kernels often touch the GPU at import): the `@triton.jit` functions, what
//! `@triton.autotune` and `@triton.heuristics` say above them, their `tl.constexpr` parameters,
//! the jit helpers they call, and their launch sites (`kernel[grid](..., BLOCK_SIZE=1024)`).
//!
//! Names are resolved through the document's recognition (`resolve` maps the byte where a dotted
//! name ends to its qualified name), so `from triton import jit` and `import triton.language as
//! tl` are read as the user wrote them.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use serde::Serialize;
use tree_sitter::{Node, Tree};

use super::annotation::Annotation;
use super::triton_timing::{program_use, ProgramUse};

const JIT: &str = "triton.jit";
const AUTOTUNE: &str = "triton.autotune";
const HEURISTICS: &str = "triton.heuristics";
const CONFIG: &str = "triton.Config";
const CONSTEXPR: &str = "triton.language.constexpr";
/// `tl` calls whose first argument is a pointer (or a block of pointers).
const POINTER_USES: &[&str] = &[
    "triton.language.load",
    "triton.language.store",
    "triton.language.make_block_ptr",
    "triton.language.make_tensor_descriptor",
    "triton.language.atomic_add",
    "triton.language.atomic_max",
    "triton.language.atomic_min",
    "triton.language.atomic_and",
    "triton.language.atomic_or",
    "triton.language.atomic_xor",
    "triton.language.atomic_xchg",
    "triton.language.atomic_cas",
];

/// `tl` calls that give back (a pointer based on) their first argument or `base`.
const PASS_POINTER_ON: &[&str] = &[
    "triton.language.multiple_of",
    "triton.language.max_contiguous",
    "triton.language.max_constancy",
    "triton.language.advance",
    "triton.language.make_block_ptr",
    "triton.language.make_tensor_descriptor",
];

/// A value written in the source that can be read without running it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Literal {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Int(v) => write!(f, "{v}"),
            Literal::Float(v) => write!(f, "{v}"),
            Literal::Bool(v) => write!(f, "{}", if *v { "True" } else { "False" }),
            Literal::Str(v) => write!(f, "{v:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TritonParam {
    pub name: String,
    pub constexpr: bool,
    /// The annotation's qualified name when it resolves (`torch.Tensor`), else its text.
    pub annotation: Option<String>,
    pub default: Option<Literal>,
    /// Used as a pointer in the body (the first argument of `tl.load`, `tl.store`, ...).
    pub pointer: bool,
    /// A pointer the body only reads through (`tl.load`, never `tl.store`, an atomic or a block
    /// pointer).
    pub read_only: bool,
    /// A pointer the body only writes through (`tl.store`, never anything that reads).
    pub write_only: bool,
}

/// One `triton.Config(...)` of an autotune list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TritonConfig {
    pub constexprs: Vec<(String, Literal)>,
    pub num_warps: Option<u32>,
    pub num_stages: Option<u32>,
    /// 0-based document line of the `triton.Config`.
    pub line: usize,
}

/// `kernel[grid](args, KEY=value, num_warps=8)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TritonLaunch {
    pub range: Range<usize>,
    pub line: usize,
    pub positional: usize,
    /// Keyword arguments, with their value when it can be read.
    pub keywords: Vec<(String, Option<Literal>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TritonFunction {
    pub name: String,
    pub name_range: Range<usize>,
    /// The whole decorated definition.
    pub range: Range<usize>,
    /// Byte range of the `def` itself (without decorators).
    pub def_range: Range<usize>,
    /// `NAME = triton.jit(fn)`, when that is how the function is made (the name is `NAME`).
    pub binding: Option<Range<usize>>,
    /// Decorators other than `@triton.jit` (autotune, heuristics), blanked in the source sent to
    /// the compiler, which compiles the plain jit function once per configuration.
    pub other_decorators: Vec<Range<usize>>,
    pub params: Vec<TritonParam>,
    pub configs: Vec<TritonConfig>,
    pub autotune_key: Vec<String>,
    /// Constexprs set by `@triton.heuristics` (their values are computed at launch).
    pub heuristics: Vec<String>,
    /// Other jit functions of the file it calls.
    pub calls: Vec<String>,
    /// Names it calls that a `from MODULE import NAME` of the file binds: helpers from elsewhere.
    pub imported_calls: Vec<String>,
    pub launches: Vec<TritonLaunch>,
    /// `# tensorlens: BLOCK_SIZE=1024 num_warps=4 dtype=fp16` above it.
    pub annotation: Annotation,
    pub text_hash: u64,
    /// What its body does with the program id, for the grid of a timing run.
    pub program: ProgramUse,
}

/// The Triton side of one Python document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TritonFile {
    pub functions: Vec<TritonFunction>,
    /// Module-level statements a kernel's source needs: triton imports and simple constants.
    pub prelude: Vec<Range<usize>>,
    /// Module-level constants with a readable value (`BLOCK = 128`).
    pub constants: HashMap<String, Literal>,
    /// Module-level `from MODULE import NAME` statements other than triton's.
    pub imports: Vec<TritonImport>,
}

/// `from MODULE import NAME [as LOCAL], ...` at module level: where helpers from other files of
/// the workspace come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TritonImport {
    /// As written: `.utils`, `..ops.utils`, `pkg.ops.utils`.
    pub module: String,
    /// The bytes of `module` in the statement.
    pub module_range: Range<usize>,
    pub statement: Range<usize>,
    /// (the name in the module, the name it is bound to here).
    pub names: Vec<(String, String)>,
}

impl TritonFile {
    pub fn find(text: &str, tree: &Tree, resolve: &dyn Fn(usize) -> Option<String>) -> TritonFile {
        let mut file = TritonFile::default();
        let root = tree.root_node();
        let mut cursor = root.walk();
        // Module-level lists (`TUNING = [triton.Config(...), ...]`) that `configs=TUNING` names.
        let mut lists: HashMap<String, Node> = HashMap::new();
        // Plain functions, which `NAME = triton.jit(fn)` may make jit functions of.
        let mut defs: HashMap<String, Node> = HashMap::new();
        for stmt in root.named_children(&mut cursor) {
            if let Some((name, list)) = list_assignment(stmt, text) {
                lists.insert(name, list);
            }
            match stmt.kind() {
                "import_statement" | "import_from_statement" if is_triton_import(stmt, text) => {
                    file.prelude.push(stmt.byte_range())
                }
                "import_from_statement" => file.imports.extend(from_import(stmt, text)),
                "expression_statement" if jit_call(stmt, text, resolve, &file.constants, &defs).is_some() => {
                    file.functions.extend(jit_call(stmt, text, resolve, &file.constants, &defs));
                }
                "expression_statement" => {
                    if let Some((name, value)) = constant(stmt, text, &file.constants, resolve) {
                        file.constants.insert(name, value);
                        file.prelude.push(stmt.byte_range());
                    }
                }
                "decorated_definition" => {
                    if let Some(function) = jit_function(stmt, text, resolve, &file.constants, &lists) {
                        file.functions.push(function);
                    }
                }
                "function_definition" => {
                    if let Some(name) = stmt.child_by_field_name("name") {
                        defs.insert(text[name.byte_range()].to_string(), stmt);
                    }
                }
                _ => {}
            }
        }
        let names: HashSet<String> = file.functions.iter().map(|f| f.name.clone()).collect();
        let imported: HashSet<&str> =
            file.imports.iter().flat_map(|i| i.names.iter().map(|(_, local)| local.as_str())).collect();
        for function in &mut file.functions {
            function.imported_calls = function
                .calls
                .iter()
                .filter(|c| imported.contains(c.as_str()) && !names.contains(*c))
                .cloned()
                .collect();
            function.calls.retain(|c| names.contains(c) && *c != function.name);
        }
        let mut launches: HashMap<String, Vec<TritonLaunch>> = HashMap::new();
        find_launches(root, text, &names, &file.constants, &mut launches);
        for function in &mut file.functions {
            function.launches = launches.remove(&function.name).unwrap_or_default();
        }
        file
    }

    pub fn function(&self, name: &str) -> Option<&TritonFunction> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The kernels: jit functions that are launched, or that no other jit function calls.
    pub fn kernels(&self) -> impl Iterator<Item = &TritonFunction> {
        self.functions
            .iter()
            .filter(|f| !f.launches.is_empty() || !self.functions.iter().any(|o| o.calls.contains(&f.name)))
    }

    /// `function` and every jit function it calls, directly or not, in file order.
    pub fn closure(&self, function: &str) -> Vec<&TritonFunction> {
        let mut wanted: HashSet<&str> = HashSet::new();
        let mut stack = vec![function];
        while let Some(name) = stack.pop() {
            if wanted.insert(name) {
                if let Some(f) = self.function(name) {
                    stack.extend(f.calls.iter().map(String::as_str));
                }
            }
        }
        self.functions.iter().filter(|f| wanted.contains(f.name.as_str())).collect()
    }

    /// The document's text with everything `function` does not need blanked (newlines kept, so
    /// lines and columns are the file's own): triton imports, simple constants, the function and
    /// its helpers, without the autotune / heuristics decorators.
    pub fn source_for(&self, text: &str, function: &str) -> String {
        self.source_with(text, &[function], &[])
    }

    /// The same for several functions (the helpers a kernel imports from this file), with the
    /// `imports` given kept and their module renamed: (index in `self.imports`, new module name).
    pub fn source_with(&self, text: &str, functions: &[&str], imports: &[(usize, String)]) -> String {
        let mut keep: Vec<Range<usize>> = self.prelude.clone();
        let mut drop: Vec<Range<usize>> = Vec::new();
        let mut seen = HashSet::new();
        for f in functions.iter().flat_map(|name| self.closure(name)) {
            if seen.insert(&f.name) {
                keep.push(f.range.clone());
                keep.extend(f.binding.clone());
                drop.extend(f.other_decorators.iter().cloned());
            }
        }
        let imports: Vec<(&TritonImport, &str)> =
            imports.iter().filter_map(|(i, name)| Some((self.imports.get(*i)?, name.as_str()))).collect();
        keep.extend(imports.iter().map(|(import, _)| import.statement.clone()));
        let mut out: Vec<u8> = text.bytes().map(|b| if b == b'\n' { b'\n' } else { b' ' }).collect();
        for range in keep {
            out[range.clone()].copy_from_slice(&text.as_bytes()[range]);
        }
        for range in drop {
            for (i, b) in text.as_bytes()[range.clone()].iter().enumerate() {
                out[range.start + i] = if *b == b'\n' { b'\n' } else { b' ' };
            }
        }
        // Renamed modules last to first, so earlier ranges stay where they are; a name holds no
        // newline, so every line keeps its number.
        let mut renames: Vec<(Range<usize>, &str)> =
            imports.iter().map(|(import, name)| (import.module_range.clone(), *name)).collect();
        renames.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
        for (range, name) in renames {
            out.splice(range, name.bytes());
        }
        // Blanked bytes are ASCII spaces and kept ranges are whole nodes, so this is UTF-8; trailing
        // spaces are trimmed per line to keep the text small.
        let text = String::from_utf8(out).unwrap_or_default();
        text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
    }

    /// The helpers `function` (with the jit functions it calls here) imports from other modules:
    /// (index in `self.imports`, the name in that module), in the order first called.
    pub fn imported_helpers(&self, function: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for f in self.closure(function) {
            for local in &f.imported_calls {
                let found = self.imports.iter().enumerate().find_map(|(i, import)| {
                    import.names.iter().find(|(_, l)| l == local).map(|(name, _)| (i, name.clone()))
                });
                if let Some(found) = found.filter(|found| !out.contains(found)) {
                    out.push(found);
                }
            }
        }
        out
    }
}

/// `from MODULE import a, b as c` (not `import *`, not `from . import module`).
fn from_import(stmt: Node, text: &str) -> Option<TritonImport> {
    let module = stmt.child_by_field_name("module_name")?;
    let module_text = text[module.byte_range()].to_string();
    if module_text.trim_start_matches('.').is_empty() {
        return None;
    }
    let mut names = Vec::new();
    let mut cursor = stmt.walk();
    for name in stmt.children_by_field_name("name", &mut cursor) {
        match name.kind() {
            "dotted_name" => {
                let n = text[name.byte_range()].to_string();
                names.push((n.clone(), n));
            }
            "aliased_import" => {
                let (Some(original), Some(alias)) =
                    (name.child_by_field_name("name"), name.child_by_field_name("alias"))
                else {
                    continue;
                };
                names.push((text[original.byte_range()].to_string(), text[alias.byte_range()].to_string()));
            }
            _ => {}
        }
    }
    (!names.is_empty()).then(|| TritonImport {
        module: module_text,
        module_range: module.byte_range(),
        statement: stmt.byte_range(),
        names,
    })
}

fn is_triton_import(stmt: Node, text: &str) -> bool {
    let src = &text[stmt.byte_range()];
    let module = src.trim_start_matches("from ").trim_start_matches("import ").trim_start();
    module.starts_with("triton") || module.starts_with("math")
}

/// `NAME = literal` (or `NAME: tl.constexpr = literal`, `NAME = tl.constexpr(literal)`) at module level.
fn constant(
    stmt: Node,
    text: &str,
    constants: &HashMap<String, Literal>,
    resolve: &dyn Fn(usize) -> Option<String>,
) -> Option<(String, Literal)> {
    let assignment = stmt.named_child(0).filter(|n| n.kind() == "assignment")?;
    let left = assignment.child_by_field_name("left").filter(|n| n.kind() == "identifier")?;
    let mut right = assignment.child_by_field_name("right")?;
    if right.kind() == "call"
        && right.child_by_field_name("function").and_then(|f| resolve(f.end_byte())).as_deref() == Some(CONSTEXPR)
    {
        right = right.child_by_field_name("arguments")?.named_child(0)?;
    }
    Some((text[left.byte_range()].to_string(), literal(right, text, constants)?))
}

/// The value of a literal expression: numbers, booleans, strings, names of known constants, and
/// integer arithmetic over them (`2 ** 10`, `BLOCK * 2`).
pub fn literal(node: Node, text: &str, constants: &HashMap<String, Literal>) -> Option<Literal> {
    let src = &text[node.byte_range()];
    match node.kind() {
        "integer" => {
            let digits = src.replace('_', "");
            let value = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
                i64::from_str_radix(hex, 16).ok()?
            } else if let Some(bin) = digits.strip_prefix("0b").or_else(|| digits.strip_prefix("0B")) {
                i64::from_str_radix(bin, 2).ok()?
            } else {
                digits.parse().ok()?
            };
            Some(Literal::Int(value))
        }
        "float" => src.replace('_', "").parse().ok().map(Literal::Float),
        "true" => Some(Literal::Bool(true)),
        "false" => Some(Literal::Bool(false)),
        "string" => {
            let content = node.named_children(&mut node.walk()).find(|c| c.kind() == "string_content");
            let has_interpolation = node.named_children(&mut node.walk()).any(|c| c.kind() == "interpolation");
            if has_interpolation {
                return None;
            }
            Some(Literal::Str(content.map(|c| text[c.byte_range()].to_string()).unwrap_or_default()))
        }
        "identifier" => constants.get(src).cloned(),
        "parenthesized_expression" => literal(node.named_child(0)?, text, constants),
        "unary_operator" => match literal(node.child_by_field_name("argument")?, text, constants)? {
            Literal::Int(v) if src.starts_with('-') => Some(Literal::Int(-v)),
            Literal::Float(v) if src.starts_with('-') => Some(Literal::Float(-v)),
            value if src.starts_with('+') => Some(value),
            _ => None,
        },
        "binary_operator" => {
            let (Literal::Int(a), Literal::Int(b)) = (
                literal(node.child_by_field_name("left")?, text, constants)?,
                literal(node.child_by_field_name("right")?, text, constants)?,
            ) else {
                return None;
            };
            let op = &text[node.child_by_field_name("operator")?.byte_range()];
            let value = match op {
                "+" => a.checked_add(b),
                "-" => a.checked_sub(b),
                "*" => a.checked_mul(b),
                "//" if b != 0 => Some(a.div_euclid(b)),
                "%" if b != 0 => Some(a.rem_euclid(b)),
                "<<" if (0..63).contains(&b) => a.checked_shl(b as u32),
                ">>" if (0..63).contains(&b) => Some(a >> b),
                "**" if (0..63).contains(&b) => a.checked_pow(b as u32),
                _ => None,
            }?;
            Some(Literal::Int(value))
        }
        _ => None,
    }
}

/// `NAME = [ ... ]` at module level.
fn list_assignment<'t>(stmt: Node<'t>, text: &str) -> Option<(String, Node<'t>)> {
    let assignment = stmt.named_child(0).filter(|n| n.kind() == "assignment")?;
    let left = assignment.child_by_field_name("left").filter(|n| n.kind() == "identifier")?;
    let right = assignment.child_by_field_name("right").filter(|n| n.kind() == "list")?;
    Some((text[left.byte_range()].to_string(), right))
}

fn jit_function(
    decorated: Node,
    text: &str,
    resolve: &dyn Fn(usize) -> Option<String>,
    constants: &HashMap<String, Literal>,
    lists: &HashMap<String, Node>,
) -> Option<TritonFunction> {
    let def = decorated.child_by_field_name("definition").filter(|d| d.kind() == "function_definition")?;
    let mut jit = false;
    let mut other_decorators = Vec::new();
    let mut configs = Vec::new();
    let mut autotune_key = Vec::new();
    let mut heuristics = Vec::new();
    let mut cursor = decorated.walk();
    for decorator in decorated.named_children(&mut cursor).filter(|n| n.kind() == "decorator") {
        let Some(expr) = decorator.named_child(0) else { continue };
        let (callee, args) = match expr.kind() {
            "call" => (expr.child_by_field_name("function"), expr.child_by_field_name("arguments")),
            _ => (Some(expr), None),
        };
        let name = callee.and_then(|c| resolve(c.end_byte()));
        match name.as_deref() {
            Some(JIT) => jit = true,
            Some(AUTOTUNE) => {
                other_decorators.push(decorator.byte_range());
                if let Some(args) = args {
                    read_autotune(args, text, resolve, constants, lists, &mut configs, &mut autotune_key);
                }
            }
            Some(HEURISTICS) => {
                other_decorators.push(decorator.byte_range());
                if let Some(dict) = args.and_then(|a| a.named_child(0)).filter(|d| d.kind() == "dictionary") {
                    for pair in dict.named_children(&mut dict.walk()).filter(|p| p.kind() == "pair") {
                        if let Some(Literal::Str(key)) =
                            pair.child_by_field_name("key").and_then(|k| literal(k, text, constants))
                        {
                            heuristics.push(key);
                        }
                    }
                }
            }
            _ => other_decorators.push(decorator.byte_range()),
        }
    }
    if !jit {
        return None;
    }
    let name_node = def.child_by_field_name("name")?;
    let decorators = Decorators { other: other_decorators, configs, autotune_key, heuristics };
    jit_parts(def, decorated.byte_range(), name_node, None, decorators, text, resolve, constants)
}

/// What the decorators above a jit function say.
struct Decorators {
    other: Vec<Range<usize>>,
    configs: Vec<TritonConfig>,
    autotune_key: Vec<String>,
    heuristics: Vec<String>,
}

/// `NAME = triton.jit(FN)` at module level, `FN` a plain function of the file: the jit function is
/// `NAME` (what launches and the compile use), its code `FN`'s.
fn jit_call(
    stmt: Node,
    text: &str,
    resolve: &dyn Fn(usize) -> Option<String>,
    constants: &HashMap<String, Literal>,
    defs: &HashMap<String, Node>,
) -> Option<TritonFunction> {
    let assignment = stmt.named_child(0).filter(|n| n.kind() == "assignment")?;
    let left = assignment.child_by_field_name("left").filter(|n| n.kind() == "identifier")?;
    let call = assignment.child_by_field_name("right").filter(|n| n.kind() == "call")?;
    let callee = call.child_by_field_name("function")?;
    if resolve(callee.end_byte()).as_deref() != Some(JIT) {
        return None;
    }
    let arguments = call.child_by_field_name("arguments")?;
    let first = arguments.named_child(0).filter(|a| a.kind() == "identifier")?;
    let def = *defs.get(&text[first.byte_range()])?;
    let decorators =
        Decorators { other: Vec::new(), configs: Vec::new(), autotune_key: Vec::new(), heuristics: Vec::new() };
    jit_parts(def, def.byte_range(), left, Some(stmt.byte_range()), decorators, text, resolve, constants)
}

/// A jit function from its `def` (`range` with its decorators), named by `name_node`.
#[allow(clippy::too_many_arguments)]
fn jit_parts(
    def: Node,
    range: Range<usize>,
    name_node: Node,
    binding: Option<Range<usize>>,
    decorators: Decorators,
    text: &str,
    resolve: &dyn Fn(usize) -> Option<String>,
    constants: &HashMap<String, Literal>,
) -> Option<TritonFunction> {
    let Decorators { other: other_decorators, configs, autotune_key, heuristics } = decorators;
    let body = def.child_by_field_name("body")?;
    let mut params = read_params(def.child_by_field_name("parameters")?, text, resolve, constants);
    let (read, written) = pointer_params(body, text, resolve, &params);
    for p in &mut params {
        p.pointer = read.contains(&p.name) || written.contains(&p.name);
        p.read_only = p.pointer && !written.contains(&p.name);
        p.write_only = p.pointer && !read.contains(&p.name);
    }
    let mut calls = Vec::new();
    called_names(body, text, &mut calls);
    let hashed = match &binding {
        Some(b) => format!("{}\n{}", &text[range.clone()], &text[b.clone()]),
        None => text[range.clone()].to_string(),
    };
    Some(TritonFunction {
        binding,
        name: text[name_node.byte_range()].to_string(),
        name_range: name_node.byte_range(),
        def_range: def.byte_range(),
        other_decorators,
        params,
        configs,
        autotune_key,
        heuristics,
        calls,
        imported_calls: Vec::new(),
        launches: Vec::new(),
        annotation: Annotation::before_python(text, range.start),
        text_hash: super::document::text_hash(&hashed),
        program: program_use(body, text, resolve),
        range,
    })
}

fn read_autotune(
    args: Node,
    text: &str,
    resolve: &dyn Fn(usize) -> Option<String>,
    constants: &HashMap<String, Literal>,
    lists: &HashMap<String, Node>,
    configs: &mut Vec<TritonConfig>,
    key: &mut Vec<String>,
) {
    let mut cursor = args.walk();
    for (idx, arg) in args.named_children(&mut cursor).enumerate() {
        let (name, value) = match arg.kind() {
            "keyword_argument" => {
                (arg.child_by_field_name("name").map(|n| &text[n.byte_range()]), arg.child_by_field_name("value"))
            }
            _ => ((idx == 0).then_some("configs"), Some(arg)),
        };
        let Some(mut value) = value else { continue };
        if name == Some("configs") && value.kind() == "identifier" {
            // The last module-level assignment before the kernel: what the decorator sees.
            match lists.get(&text[value.byte_range()]) {
                Some(list) if list.end_byte() <= args.start_byte() => value = *list,
                _ => continue,
            }
        }
        match name {
            Some("configs") if value.kind() == "list" => {
                for item in value.named_children(&mut value.walk()) {
                    if let Some(config) = read_config(item, text, resolve, constants) {
                        configs.push(config);
                    }
                }
            }
            Some("key") if value.kind() == "list" => {
                for item in value.named_children(&mut value.walk()) {
                    if let Some(Literal::Str(k)) = literal(item, text, constants) {
                        key.push(k);
                    }
                }
            }
            _ => {}
        }
    }
}

fn read_config(
    call: Node,
    text: &str,
    resolve: &dyn Fn(usize) -> Option<String>,
    constants: &HashMap<String, Literal>,
) -> Option<TritonConfig> {
    if call.kind() != "call" {
        return None;
    }
    let callee = call.child_by_field_name("function")?;
    if resolve(callee.end_byte()).as_deref() != Some(CONFIG) {
        return None;
    }
    let mut config = TritonConfig { line: call.start_position().row, ..TritonConfig::default() };
    let args = call.child_by_field_name("arguments")?;
    let mut cursor = args.walk();
    for arg in args.named_children(&mut cursor) {
        match arg.kind() {
            "dictionary" => {
                for pair in arg.named_children(&mut arg.walk()).filter(|p| p.kind() == "pair") {
                    let key = pair.child_by_field_name("key").and_then(|k| literal(k, text, constants));
                    let value = pair.child_by_field_name("value").and_then(|v| literal(v, text, constants));
                    if let (Some(Literal::Str(key)), Some(value)) = (key, value) {
                        config.constexprs.push((key, value));
                    }
                }
            }
            "keyword_argument" => {
                let name = arg.child_by_field_name("name").map(|n| &text[n.byte_range()]);
                let value = arg.child_by_field_name("value").and_then(|v| literal(v, text, constants));
                let count = match value {
                    Some(Literal::Int(v)) => u32::try_from(v).ok(),
                    _ => None,
                };
                match name {
                    Some("num_warps") => config.num_warps = count,
                    Some("num_stages") => config.num_stages = count,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Some(config)
}

fn read_params(
    params: Node,
    text: &str,
    resolve: &dyn Fn(usize) -> Option<String>,
    constants: &HashMap<String, Literal>,
) -> Vec<TritonParam> {
    let mut out = Vec::new();
    let mut cursor = params.walk();
    for param in params.named_children(&mut cursor) {
        let (name, annotation, default) = match param.kind() {
            "identifier" => (Some(param), None, None),
            "typed_parameter" => (param.named_child(0), param.child_by_field_name("type"), None),
            "default_parameter" => (param.child_by_field_name("name"), None, param.child_by_field_name("value")),
            "typed_default_parameter" => (
                param.child_by_field_name("name"),
                param.child_by_field_name("type"),
                param.child_by_field_name("value"),
            ),
            _ => continue,
        };
        let Some(name) = name.filter(|n| n.kind() == "identifier") else { continue };
        let annotation = annotation.map(|a| resolve(a.end_byte()).unwrap_or_else(|| text[a.byte_range()].to_string()));
        out.push(TritonParam {
            name: text[name.byte_range()].to_string(),
            constexpr: annotation.as_deref() == Some(CONSTEXPR),
            annotation,
            default: default.and_then(|d| literal(d, text, constants)),
            pointer: false,
            read_only: false,
            write_only: false,
        });
    }
    out
}

/// Parameters a pointer-taking `tl` call's first argument is based on: those read through (by
/// anything but `tl.store`) and those written through (by anything but `tl.load`; atomics and
/// block pointers or descriptors count as both). The
/// base of `x_ptr + row * stride + cols` is `x_ptr` (not `stride`); a local (`x_row = x_ptr +
/// row * stride`, then `tl.load(x_row + cols)`) is followed to what it was assigned, unless the
/// body uses it as a number (multiplied, compared), as it does offsets.
fn pointer_params(
    body: Node,
    text: &str,
    resolve: &dyn Fn(usize) -> Option<String>,
    params: &[TritonParam],
) -> (HashSet<String>, HashSet<String>) {
    let names: HashSet<&str> = params.iter().map(|p| p.name.as_str()).collect();
    let mut assigned: HashMap<&str, Vec<Node>> = HashMap::new();
    let mut uses: Vec<(Node, String)> = Vec::new();
    let mut numbers: HashSet<&str> = HashSet::new();
    let mut stack = vec![body];
    while let Some(node) = stack.pop() {
        match node.kind() {
            "assignment" => {
                let left = node.child_by_field_name("left").filter(|l| l.kind() == "identifier");
                if let (Some(left), Some(right)) = (left, node.child_by_field_name("right")) {
                    assigned.entry(&text[left.byte_range()]).or_default().push(right);
                }
            }
            "call" => {
                let callee = node.child_by_field_name("function").and_then(|f| resolve(f.end_byte()));
                if let Some(first) =
                    callee.as_deref().filter(|c| POINTER_USES.contains(c)).and_then(|_| first_argument(node))
                {
                    uses.push((first, callee.as_deref().unwrap_or_default().to_string()));
                }
            }
            // A name multiplied, divided or ordered is a number: a pointer never is.
            "binary_operator" => {
                let operator = node.child_by_field_name("operator").map(|o| &text[o.byte_range()]);
                if !matches!(operator, Some("+") | Some("-")) {
                    for side in ["left", "right"] {
                        if let Some(operand) = node.child_by_field_name(side).filter(|n| n.kind() == "identifier") {
                            numbers.insert(&text[operand.byte_range()]);
                        }
                    }
                }
            }
            // Ordering and equality, not `is None` (an optional pointer is tested that way).
            "comparison_operator"
                if !(0..node.child_count())
                    .any(|i| node.child(i).is_some_and(|c| matches!(c.kind(), "is" | "is not" | "in" | "not in"))) =>
            {
                let mut cursor = node.walk();
                for operand in node.named_children(&mut cursor).filter(|n| n.kind() == "identifier") {
                    numbers.insert(&text[operand.byte_range()]);
                }
            }
            _ => {}
        }
        let mut cursor = node.walk();
        stack.extend(node.named_children(&mut cursor));
    }
    let mut read = HashSet::new();
    let mut written = HashSet::new();
    for (first, callee) in uses {
        let mut roots = Vec::new();
        pointer_roots(first, text, resolve, &assigned, &numbers, &mut HashSet::new(), &mut roots);
        roots.retain(|r| names.contains(r) && !numbers.contains(r));
        // A sum does not say which of two parameters is the pointer (`base + offset`): when some
        // are named as pointers are (`..._ptr`), only those are taken.
        let named = |r: &&str| r.to_ascii_lowercase().contains("ptr");
        if roots.iter().any(named) {
            roots.retain(named);
        }
        for root in roots {
            if callee != "triton.language.store" {
                read.insert(root.to_string());
            }
            if callee != "triton.language.load" {
                written.insert(root.to_string());
            }
        }
    }
    (read, written)
}

/// A call's first argument, positional or not.
fn first_argument(call: Node) -> Option<Node> {
    let args = call.child_by_field_name("arguments")?;
    let mut cursor = args.walk();
    let first = args.named_children(&mut cursor).next()?;
    Some(if first.kind() == "keyword_argument" { first.child_by_field_name("value").unwrap_or(first) } else { first })
}

/// The names a pointer expression is based on: through `+` (both sides), `-` (its left), indexing,
/// parentheses, conditionals, `.to(...)` and calls that pass a pointer on (`tl.multiple_of(p, 16)`,
/// `tl.advance(p, ...)`, `tl.make_block_ptr(base=p, ...)`), and locals to what they were assigned.
fn pointer_roots<'t>(
    node: Node<'t>,
    text: &'t str,
    resolve: &dyn Fn(usize) -> Option<String>,
    assigned: &HashMap<&str, Vec<Node<'t>>>,
    numbers: &HashSet<&str>,
    seen: &mut HashSet<usize>,
    out: &mut Vec<&'t str>,
) {
    // Deep enough for any pointer arithmetic people write; a pathological expression stops here
    // rather than exhausting the stack.
    if seen.len() > 256 || !seen.insert(node.id()) {
        return;
    }
    let field = |name: &str| node.child_by_field_name(name);
    match node.kind() {
        "identifier" => {
            let name = &text[node.byte_range()];
            out.push(name);
            // A local that is a number is an offset: what it was assigned is no pointer's base.
            for value in assigned.get(name).into_iter().flatten().filter(|_| !numbers.contains(name)) {
                pointer_roots(*value, text, resolve, assigned, numbers, seen, out);
            }
        }
        "parenthesized_expression" => {
            if let Some(inner) = node.named_child(0) {
                pointer_roots(inner, text, resolve, assigned, numbers, seen, out);
            }
        }
        "binary_operator" => {
            let op = field("operator").map(|o| &text[o.byte_range()]);
            let sides = match op {
                Some("+") => vec![field("left"), field("right")],
                Some("-") => vec![field("left")],
                _ => Vec::new(),
            };
            for side in sides.into_iter().flatten() {
                pointer_roots(side, text, resolve, assigned, numbers, seen, out);
            }
        }
        "subscript" => {
            if let Some(value) = field("value") {
                pointer_roots(value, text, resolve, assigned, numbers, seen, out);
            }
        }
        "conditional_expression" => {
            let mut cursor = node.walk();
            let branches: Vec<Node> = node.named_children(&mut cursor).collect();
            for branch in [branches.first(), branches.get(2)].into_iter().flatten() {
                pointer_roots(*branch, text, resolve, assigned, numbers, seen, out);
            }
        }
        "call" => {
            let function = field("function");
            let cast = function
                .filter(|f| f.kind() == "attribute")
                .filter(|f| f.child_by_field_name("attribute").is_some_and(|a| &text[a.byte_range()] == "to"))
                .and_then(|f| f.child_by_field_name("object"));
            let passes_on =
                function.and_then(|f| resolve(f.end_byte())).is_some_and(|f| PASS_POINTER_ON.contains(&f.as_str()));
            let args = field("arguments").filter(|_| passes_on);
            let base = args.and_then(|a| {
                let mut cursor = a.walk();
                let all: Vec<Node> = a.named_children(&mut cursor).collect();
                let keyword = all.iter().find_map(|k| {
                    let name = k.child_by_field_name("name").filter(|_| k.kind() == "keyword_argument")?;
                    (&text[name.byte_range()] == "base").then(|| k.child_by_field_name("value")).flatten()
                });
                keyword.or_else(|| all.into_iter().find(|a| a.kind() != "keyword_argument"))
            });
            if let Some(passed) = cast.or(base) {
                pointer_roots(passed, text, resolve, assigned, numbers, seen, out);
            }
        }
        _ => {}
    }
}

fn called_names(node: Node, text: &str, out: &mut Vec<String>) {
    if node.kind() == "call" {
        if let Some(callee) = node.child_by_field_name("function").filter(|c| c.kind() == "identifier") {
            let name = text[callee.byte_range()].to_string();
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        called_names(child, text, out);
    }
}

/// `name[grid](...)` calls anywhere in the file, for the jit functions in `names`.
fn find_launches(
    node: Node,
    text: &str,
    names: &HashSet<String>,
    constants: &HashMap<String, Literal>,
    out: &mut HashMap<String, Vec<TritonLaunch>>,
) {
    if node.kind() == "call" {
        let launched = node
            .child_by_field_name("function")
            .filter(|f| f.kind() == "subscript")
            .and_then(|s| s.child_by_field_name("value"))
            .filter(|v| v.kind() == "identifier")
            .map(|v| &text[v.byte_range()])
            .filter(|name| names.contains(*name));
        if let (Some(name), Some(args)) = (launched, node.child_by_field_name("arguments")) {
            let mut launch = TritonLaunch {
                range: node.byte_range(),
                line: node.start_position().row,
                positional: 0,
                keywords: Vec::new(),
            };
            let mut cursor = args.walk();
            for arg in args.named_children(&mut cursor) {
                if arg.kind() == "keyword_argument" {
                    let Some(key) = arg.child_by_field_name("name") else { continue };
                    let value = arg.child_by_field_name("value").and_then(|v| literal(v, text, constants));
                    launch.keywords.push((text[key.byte_range()].to_string(), value));
                } else {
                    launch.positional += 1;
                }
            }
            out.entry(name.to_string()).or_default().push(launch);
        }
    }
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        find_launches(child, text, names, constants, out);
    }
}

/// Where the meta-parameters of one compile came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigOrigin {
    /// The n-th `triton.Config` of `@triton.autotune` (0-based), on a 0-based line.
    Autotune { index: usize, line: usize },
    /// A launch site `kernel[grid](...)` on a 0-based line.
    Launch { line: usize },
    /// The `# tensorlens:` comment above the kernel.
    Annotation,
    /// Only the parameters' defaults (and Triton's own for warps and stages).
    Defaults,
}

/// One configuration to compile a kernel for: the signature Triton's `ASTSource` takes, the
/// constexpr values, and what had to be assumed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompileConfig {
    pub origin: ConfigOrigin,
    /// Every parameter in order with its Triton type (`*fp32`, `i32`, `constexpr`).
    pub signature: Vec<(String, String)>,
    pub constexprs: Vec<(String, Literal)>,
    pub num_warps: u32,
    pub num_stages: u32,
    /// What the file did not say and was assumed, for the lens and hover to show.
    pub assumed: Vec<String>,
}

impl CompileConfig {
    /// `BLOCK_SIZE=128 num_warps=4 num_stages=3`.
    pub fn label(&self) -> String {
        let mut parts: Vec<String> = self.constexprs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("num_warps={}", self.num_warps));
        parts.push(format!("num_stages={}", self.num_stages));
        parts.join(" ")
    }
}

/// Constexprs that nothing gives a value to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingValues {
    pub kernel: String,
    pub names: Vec<String>,
}

impl std::fmt::Display for MissingValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let example: Vec<String> = self.names.iter().map(|n| format!("{n}=...")).collect();
        write!(
            f,
            "`{}` needs a value for {}: add `# tensorlens: {}` above the kernel, or an autotune config or launch that sets it",
            self.kernel,
            self.names.join(", "),
            example.join(" ")
        )
    }
}

/// Triton's defaults when nothing says otherwise.
pub const DEFAULT_NUM_WARPS: u32 = 4;
pub const DEFAULT_NUM_STAGES: u32 = 3;

/// A Triton element type from the names people write: `fp16`, `float16`, `torch.float16`, `half`.
pub fn element_type(name: &str) -> Option<&'static str> {
    let name = name.trim().trim_start_matches('*');
    let name = name.rsplit('.').next().unwrap_or(name);
    Some(match name {
        "fp16" | "float16" | "half" => "fp16",
        "bf16" | "bfloat16" => "bf16",
        "fp32" | "float32" | "float" => "fp32",
        "fp64" | "float64" | "double" => "fp64",
        "fp8e4nv" | "float8_e4m3fn" => "fp8e4nv",
        "fp8e5" | "float8_e5m2" => "fp8e5",
        "i1" | "bool" | "int1" => "i1",
        "i8" | "int8" => "i8",
        "i16" | "int16" => "i16",
        "i32" | "int32" | "int" => "i32",
        "i64" | "int64" | "long" => "i64",
        "u8" | "uint8" => "u8",
        "u16" | "uint16" => "u16",
        "u32" | "uint32" => "u32",
        "u64" | "uint64" => "u64",
        _ => return None,
    })
}

impl TritonFunction {
    /// The configurations to compile: each autotune config; else each launch site's
    /// meta-parameters; else the annotation; else the defaults. The annotation and the defaults
    /// fill in what a config leaves out. `Err` names the constexprs nothing gives a value to.
    pub fn compile_configs(&self, constants: &HashMap<String, Literal>) -> Result<Vec<CompileConfig>, MissingValues> {
        let annotated: Vec<(String, Literal)> = self
            .annotation
            .entries
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), annotation_literal(v, constants)?)))
            .collect();
        let mut sources: Vec<(ConfigOrigin, Vec<(String, Literal)>)> = Vec::new();
        for (index, config) in self.configs.iter().enumerate() {
            let mut values = config.constexprs.clone();
            values.extend(config.num_warps.map(|w| ("num_warps".to_string(), Literal::Int(w.into()))));
            values.extend(config.num_stages.map(|s| ("num_stages".to_string(), Literal::Int(s.into()))));
            sources.push((ConfigOrigin::Autotune { index, line: config.line }, values));
        }
        if sources.is_empty() {
            for launch in &self.launches {
                let values: Vec<(String, Literal)> =
                    launch.keywords.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))).collect();
                let meta = values.iter().any(|(k, _)| self.is_meta(k));
                if meta && !sources.iter().any(|(_, v)| *v == values) {
                    sources.push((ConfigOrigin::Launch { line: launch.line }, values));
                }
            }
        }
        if sources.is_empty() {
            let origin = if annotated.is_empty() { ConfigOrigin::Defaults } else { ConfigOrigin::Annotation };
            sources.push((origin, Vec::new()));
        }
        sources.into_iter().map(|(origin, values)| self.config(origin, &values, &annotated)).collect()
    }

    fn is_meta(&self, key: &str) -> bool {
        key == "num_warps" || key == "num_stages" || self.params.iter().any(|p| p.constexpr && p.name == key)
    }

    fn config(
        &self,
        origin: ConfigOrigin,
        values: &[(String, Literal)],
        annotated: &[(String, Literal)],
    ) -> Result<CompileConfig, MissingValues> {
        let get = |key: &str| -> Option<Literal> {
            let from = |list: &[(String, Literal)]| list.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            from(values).or_else(|| from(annotated))
        };
        let count = |key: &str, default: u32| match get(key) {
            Some(Literal::Int(v)) => u32::try_from(v).unwrap_or(default),
            _ => default,
        };
        let mut missing = Vec::new();
        let mut signature = Vec::new();
        let mut constexprs = Vec::new();
        let mut assumed_pointers = Vec::new();
        let mut assumed_scalars = Vec::new();
        let mut heuristic = Vec::new();
        let all_dtype = self.annotation.get("dtype").and_then(element_type);
        for param in &self.params {
            if param.constexpr {
                let given = get(&param.name);
                if given.is_none() && self.heuristics.contains(&param.name) {
                    heuristic.push(param.name.clone());
                }
                match given.or_else(|| param.default.clone()) {
                    Some(value) => constexprs.push((param.name.clone(), value)),
                    None => missing.push(param.name.clone()),
                }
                signature.push((param.name.clone(), "constexpr".to_string()));
                continue;
            }
            let own = self.annotation.get(&param.name).and_then(element_type);
            let ty = if param.pointer {
                match own.or(all_dtype) {
                    Some(dtype) => format!("*{dtype}"),
                    None => {
                        assumed_pointers.push(param.name.clone());
                        "*fp32".to_string()
                    }
                }
            } else {
                let from_annotation = param.annotation.as_deref().and_then(element_type);
                let from_default = match &param.default {
                    Some(Literal::Float(_)) => Some("fp32"),
                    Some(Literal::Bool(_)) => Some("i1"),
                    Some(Literal::Int(_)) => Some("i32"),
                    _ => None,
                };
                match own.or(from_annotation).or(from_default) {
                    Some(ty) => ty.to_string(),
                    None => {
                        assumed_scalars.push(param.name.clone());
                        "i32".to_string()
                    }
                }
            };
            signature.push((param.name.clone(), ty));
        }
        if !missing.is_empty() {
            return Err(MissingValues { kernel: self.name.clone(), names: missing });
        }
        let mut assumed = Vec::new();
        if !assumed_pointers.is_empty() {
            assumed.push(format!(
                "{} point to fp32 (say `# tensorlens: dtype=fp16`, or `{}=bf16` for one)",
                assumed_pointers.join(", "),
                assumed_pointers[0]
            ));
        }
        for name in &heuristic {
            let value = constexprs.iter().find(|(k, _)| k == name).map(|(_, v)| v.to_string()).unwrap_or_default();
            assumed.push(format!(
                "{name} is set by @triton.heuristics at launch; compiled with its default {name}={value}"
            ));
        }
        if !assumed_scalars.is_empty() {
            assumed.push(format!("{} taken as i32", assumed_scalars.join(", ")));
        }
        Ok(CompileConfig {
            origin,
            signature,
            constexprs,
            num_warps: count("num_warps", DEFAULT_NUM_WARPS),
            num_stages: count("num_stages", DEFAULT_NUM_STAGES),
            assumed,
        })
    }
}

/// An annotation value as a literal: a number, `True`/`False`, a known constant, else text.
fn annotation_literal(value: &str, constants: &HashMap<String, Literal>) -> Option<Literal> {
    let value = value.trim();
    if let Ok(v) = value.parse::<i64>() {
        return Some(Literal::Int(v));
    }
    if let Ok(v) = value.parse::<f64>() {
        return Some(Literal::Float(v));
    }
    match value {
        "True" | "true" => Some(Literal::Bool(true)),
        "False" | "false" => Some(Literal::Bool(false)),
        _ => constants.get(value).cloned().or_else(|| Some(Literal::Str(value.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::parse::{parse_str, Language};

    const FILE: &str = r#"import torch
import triton
import triton.language as tl
from triton import jit as tjit

BLOCK = 2 ** 7
EPS: float = 1e-5

# tensorlens: dtype=fp16
@triton.autotune(
    configs=[
        triton.Config({"BLOCK_SIZE": BLOCK}, num_warps=4),
        triton.Config({"BLOCK_SIZE": 256}, num_warps=8, num_stages=2),
    ],
    key=["n"],
)
@triton.heuristics({"EVEN": lambda args: args["n"] % args["BLOCK_SIZE"] == 0})
@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, scale=1.5, BLOCK_SIZE: tl.constexpr = 64, EVEN: tl.constexpr = False):
    pid = tl.program_id(0)
    offs = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, double(x + y) * scale, mask=mask)

@tjit
def double(x):
    return twice(x)

@triton.jit
def twice(x):
    return x * 2

def plain(x):
    return x

def launch(x, y, out):
    n = x.numel()
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_SIZE"]),)
    add_kernel[grid](x, y, out, n, scale=2.0, num_warps=8)
    add_kernel[(4,)](x, y, out, n, BLOCK_SIZE=BLOCK * 4)
"#;

    fn parsed(text: &str) -> TritonFile {
        let tree = parse_str(Language::Python, text).unwrap();
        let rope = ropey::Rope::from_str(text);
        let recognition = crate::recognize::recognize(Language::Python, &rope, &tree, &Catalog::builtin(), &[]);
        let names: HashMap<usize, String> =
            recognition.references().map(|r| (r.range.end, r.name.to_string())).collect();
        TritonFile::find(text, &tree, &|end| names.get(&end).cloned())
    }

    fn file() -> TritonFile {
        parsed(FILE)
    }

    #[test]
    fn finds_jit_functions_with_what_is_written_above_and_in_them() {
        let file = file();
        let names: Vec<&str> = file.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["add_kernel", "double", "twice"]);
        let kernels: Vec<&str> = file.kernels().map(|f| f.name.as_str()).collect();
        assert_eq!(kernels, ["add_kernel"]);
        let add = file.function("add_kernel").unwrap();
        assert_eq!(&FILE[add.name_range.clone()], "add_kernel");
        assert_eq!(add.configs.len(), 2);
        assert_eq!(add.configs[0].constexprs, [("BLOCK_SIZE".to_string(), Literal::Int(128))]);
        assert_eq!((add.configs[0].num_warps, add.configs[0].num_stages), (Some(4), None));
        assert_eq!((add.configs[1].num_warps, add.configs[1].num_stages), (Some(8), Some(2)));
        assert_eq!(add.autotune_key, ["n"]);
        assert_eq!(add.heuristics, ["EVEN"]);
        assert_eq!(add.calls, ["double"]);
        assert_eq!(add.annotation.get("dtype"), Some("fp16"));
        let described: Vec<(&str, bool, bool, Option<Literal>)> =
            add.params.iter().map(|p| (p.name.as_str(), p.pointer, p.constexpr, p.default.clone())).collect();
        assert_eq!(
            described,
            [
                ("x_ptr", true, false, None),
                ("y_ptr", true, false, None),
                ("out_ptr", true, false, None),
                ("n", false, false, None),
                ("scale", false, false, Some(Literal::Float(1.5))),
                ("BLOCK_SIZE", false, true, Some(Literal::Int(64))),
                ("EVEN", false, true, Some(Literal::Bool(false))),
            ]
        );
        assert_eq!(add.launches.len(), 2);
        assert_eq!(add.launches[0].positional, 4);
        assert_eq!(
            add.launches[0].keywords,
            [("scale".into(), Some(Literal::Float(2.0))), ("num_warps".into(), Some(Literal::Int(8)))]
        );
        assert_eq!(add.launches[1].keywords, [("BLOCK_SIZE".into(), Some(Literal::Int(512)))]);
        assert_eq!(file.constants.get("EPS"), Some(&Literal::Float(1e-5)));
        assert_eq!(file.constants["BLOCK"], Literal::Int(128));
    }

    #[test]
    fn a_kernel_s_source_keeps_its_lines_and_drops_what_it_does_not_need() {
        let file = file();
        let source = file.source_for(FILE, "add_kernel");
        assert_eq!(source.lines().count(), FILE.lines().count());
        for (kept, line) in source.lines().zip(FILE.lines()) {
            assert!(kept.is_empty() || kept == line.trim_end(), "{kept:?} is not {line:?}");
        }
        assert!(source.contains("import triton.language as tl") && source.contains("from triton import jit as tjit"));
        assert!(!source.contains("import torch"));
        assert!(source.contains("BLOCK = 2 ** 7"));
        assert!(!source.contains("autotune") && !source.contains("heuristics"));
        assert!(source.contains("def add_kernel") && source.contains("def double") && source.contains("def twice"));
        assert!(!source.contains("def plain") && !source.contains("def launch"));
        let def_line = FILE.lines().position(|l| l.starts_with("def add_kernel")).unwrap();
        assert!(source.lines().nth(def_line).unwrap().starts_with("def add_kernel"));
        let helper = file.source_for(FILE, "twice");
        assert!(helper.contains("def twice") && !helper.contains("def double"));
    }

    #[test]
    fn pointers_are_what_loads_and_stores_reach_not_the_offsets_beside_them() {
        let text = r#"import triton
import triton.language as tl

TUNING = [triton.Config({"BLOCK": 64}, num_warps=4), triton.Config({"BLOCK": 128}, num_warps=8)]

@triton.autotune(configs=TUNING, key=["n"])
@triton.jit
def k(a_ptr, b_ptr, out_ptr, bias_ptr, n, stride_a, start, off, BLOCK: tl.constexpr):
    rows = start + tl.arange(0, BLOCK)
    a_tile = a_ptr + rows[:, None] * stride_a
    for i in range(0, n, BLOCK):
        a = tl.load(a_tile, mask=rows < n)
        a_tile += BLOCK * stride_a
    b = tl.load(b_ptr + off + rows * n)
    if bias_ptr is not None:
        b += tl.load(bias_ptr + rows)
    tl.store(out_ptr + rows, a + b)
"#;
        let file = parsed(text);
        let k = file.function("k").unwrap();
        let pointers: Vec<&str> = k.params.iter().filter(|p| p.pointer).map(|p| p.name.as_str()).collect();
        // `start` reaches a store through `rows`, which is a number (compared, multiplied); `off`
        // is added to `b_ptr`, and of the two only `b_ptr` is named as a pointer.
        assert_eq!(pointers, ["a_ptr", "b_ptr", "out_ptr", "bias_ptr"]);
        // `configs=TUNING` reads the module-level list.
        let blocks: Vec<String> = k.configs.iter().map(|c| format!("{:?} {:?}", c.constexprs, c.num_warps)).collect();
        assert_eq!(blocks.len(), 2, "{blocks:?}");
    }

    #[test]
    fn a_jit_function_made_by_calling_triton_jit_is_named_by_its_binding() {
        let text = "import triton\nimport triton.language as tl\nfrom triton import jit\n\n\ndef _impl(x_ptr, n, BLOCK: tl.constexpr):\n    tl.store(x_ptr + tl.arange(0, BLOCK), 1.0)\n\n\nkernel = triton.jit(_impl)\nother = jit(_impl)\nnot_jit = print(_impl)\n\n\ndef launch(x):\n    kernel[(1,)](x, 4, BLOCK=64)\n";
        let file = parsed(text);
        let names: Vec<&str> = file.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["kernel", "other"]);
        let kernel = file.function("kernel").unwrap();
        assert_eq!(&text[kernel.name_range.clone()], "kernel");
        assert_eq!(kernel.launches.len(), 1);
        assert_eq!(kernel.params.iter().filter(|p| p.pointer).count(), 1);
        // The compile sees the def and the binding, and not the launch.
        let source = file.source_for(text, "kernel");
        assert!(source.contains("def _impl(") && source.contains("kernel = triton.jit(_impl)"), "{source}");
        assert!(!source.contains("other = jit") && !source.contains("kernel[(1,)]"), "{source}");
        assert_eq!(source.lines().count(), text.lines().count());
    }

    #[test]
    fn odd_files_do_not_panic() {
        for text in [
            "@triton.jit\n",
            "@triton.jit\ndef k(:\n",
            "import triton\n@triton.autotune(configs=3)\n@triton.jit\ndef k(x): pass\nk[1](",
            "x = -\n",
        ] {
            let tree = parse_str(Language::Python, text).unwrap();
            let file = TritonFile::find(text, &tree, &|_| Some(JIT.to_string()));
            for f in &file.functions {
                let _ = file.source_for(text, &f.name);
            }
        }
    }

    #[test]
    fn pointers_are_the_bases_of_what_is_loaded_and_stored() {
        let text = "import triton\nimport triton.language as tl\n@triton.jit\ndef k(x_ptr, w_ptr, y_ptr, c_ptr, stride, n_cols, BLOCK: tl.constexpr):\n    row = tl.program_id(0)\n    x_row = x_ptr + row * stride\n    cols = tl.arange(0, BLOCK)\n    w = tl.load(tl.multiple_of(w_ptr, 16) + cols)\n    x = tl.load(x_row + cols, mask=cols < n_cols)\n    tl.store(y_ptr + row * n_cols + cols, x * w)\n    tl.atomic_add(c_ptr, 1)\n";
        let file = parsed(text);
        let described: Vec<(&str, bool, bool, bool)> =
            file.functions[0].params.iter().map(|p| (p.name.as_str(), p.pointer, p.read_only, p.write_only)).collect();
        assert_eq!(
            described,
            [
                ("x_ptr", true, true, false),
                ("w_ptr", true, true, false),
                ("y_ptr", true, false, true),
                ("c_ptr", true, false, false),
                ("stride", false, false, false),
                ("n_cols", false, false, false),
                ("BLOCK", false, false, false),
            ]
        );
    }

    #[test]
    fn configs_come_from_autotune_then_launches_then_the_annotation() {
        let file = file();
        let add = file.function("add_kernel").unwrap();
        let configs = add.compile_configs(&file.constants).unwrap();
        let labels: Vec<String> = configs.iter().map(CompileConfig::label).collect();
        assert_eq!(
            labels,
            [
                "BLOCK_SIZE=128 EVEN=false num_warps=4 num_stages=3",
                "BLOCK_SIZE=256 EVEN=false num_warps=8 num_stages=2"
            ]
            .map(|l| l.replace("false", "False"))
        );
        let types: Vec<&str> = configs[0].signature.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(types, ["*fp16", "*fp16", "*fp16", "i32", "fp32", "constexpr", "constexpr"]);
        assert_eq!(
            configs[0].assumed,
            ["EVEN is set by @triton.heuristics at launch; compiled with its default EVEN=False", "n taken as i32"]
        );
        assert_eq!(configs[1].origin, ConfigOrigin::Autotune { index: 1, line: 12 });

        // Without autotune: one config per distinct launch that sets a meta-parameter.
        let text = "import triton\nimport triton.language as tl\n@triton.jit\ndef k(p, B: tl.constexpr):\n    tl.store(p, 1)\ndef go(x):\n    k[(1,)](x, B=64)\n    k[(1,)](x, B=64)\n    k[(2,)](x, B=128, num_warps=2)\n";
        let configs = parsed(text).function("k").unwrap().compile_configs(&HashMap::new()).unwrap();
        let labels: Vec<String> = configs.iter().map(CompileConfig::label).collect();
        assert_eq!(labels, ["B=64 num_warps=4 num_stages=3", "B=128 num_warps=2 num_stages=3"]);
        assert_eq!(configs[0].origin, ConfigOrigin::Launch { line: 6 });
        assert_eq!(configs[0].assumed, ["p point to fp32 (say `# tensorlens: dtype=fp16`, or `p=bf16` for one)"]);

        // Nothing gives B a value: say what to add.
        let text = "import triton\nimport triton.language as tl\n@triton.jit\ndef k(p, B: tl.constexpr):\n    tl.store(p, 1)\n";
        let err = parsed(text).function("k").unwrap().compile_configs(&HashMap::new()).unwrap_err();
        assert_eq!(err.to_string(), "`k` needs a value for B: add `# tensorlens: B=...` above the kernel, or an autotune config or launch that sets it");
        let text = "import triton\nimport triton.language as tl\n# tensorlens: B=256 num_warps=8 p=bf16\n@triton.jit\ndef k(p, B: tl.constexpr):\n    tl.store(p, 1)\n";
        let configs = parsed(text).function("k").unwrap().compile_configs(&HashMap::new()).unwrap();
        assert_eq!(
            (configs[0].label(), configs[0].origin.clone()),
            ("B=256 num_warps=8 num_stages=3".into(), ConfigOrigin::Annotation)
        );
        assert_eq!(configs[0].signature[0], ("p".into(), "*bf16".into()));
        assert!(configs[0].assumed.is_empty());
    }
}
