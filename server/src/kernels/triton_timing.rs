//! Timing a Triton kernel: the launch of one compiled configuration, in the `LaunchSpec` the CUDA
//! timing worker takes. Two halves around the compile:
//!
//! - `plan`, before it: a value for every parameter from the `# tensorlens:` annotation, the
//!   parameter's Python default or the CUDA rules (pointers are buffers of `n` elements of the
//!   dtype the compile uses, ints `n`, floats 1.0), the grid, and the signature to compile with,
//!   specialized as Triton's own launcher would for those arguments (pointers and ints divisible
//!   by 16 marked so, an int of 1 a constant, ints past i32 typed i64);
//! - `launch`, after it: the parameters in the order the PTX entry takes them with the hidden
//!   scratch pointers Triton appends, from what the Triton worker read off the compiled kernel
//!   (`LaunchInfo`), 32 × num_warps threads and the dynamic shared memory Triton asks for.
//!
//! The grid is `grid=` of the annotation, or `cdiv(n, B)` only when the kernel evidently covers
//! `n` elements in programs of `B` (`evident_block`); otherwise the error says what to write.
//! Every choice goes into the spec's `explained`. Pure: the compile and the run are the session's.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tree_sitter::Node;

use super::annotation::Annotation;
use super::expr::eval;
use super::spec::{describe, dims, positive, show_dims, Element, LaunchSpec, Param, SpecError, DEFAULT_N};
use super::triton::{element_type, literal, CompileConfig, Literal, TritonFunction};
use super::worker::Timing;

const PROGRAM_ID: &str = "triton.language.program_id";
const NUM_PROGRAMS: &str = "triton.language.num_programs";
const ARANGE: &str = "triton.language.arange";

/// What a kernel does with its program id, read from its body: enough to tell when `cdiv(n, B)`
/// is evidently its grid.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProgramUse {
    /// The axis of each `tl.program_id` call, when it is written as a number.
    pub program_id_axes: Vec<Option<i64>>,
    /// `tl.num_programs` is called: the kernel sizes its own work to the grid (persistent).
    pub num_programs: bool,
    /// Each use of a program id (the call, or a variable holding it).
    pub uses: Vec<PidUse>,
    /// The end of each `tl.arange`: the name when it is `tl.arange(0, NAME)`.
    pub arange_ends: Vec<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidUse {
    /// `pid * NAME` or `NAME * pid`.
    Times(String),
    /// Anything else, as written (shortened).
    Other(String),
}

/// Reads `body` (a jit function's) for its program ids; names resolve through the document's
/// recognition, as in `triton.rs`.
pub fn program_use(body: Node, text: &str, resolve: &dyn Fn(usize) -> Option<String>) -> ProgramUse {
    let mut out = ProgramUse::default();
    let mut calls = Vec::new();
    visit(body, &mut |node| {
        if node.kind() != "call" {
            return;
        }
        match node.child_by_field_name("function").and_then(|f| resolve(f.end_byte())).as_deref() {
            Some(PROGRAM_ID) => {
                out.program_id_axes.push(argument(node, text, 0, "axis").and_then(|a| int_literal(a, text)));
                calls.push(node);
            }
            Some(NUM_PROGRAMS) => out.num_programs = true,
            Some(ARANGE) => {
                let start = argument(node, text, 0, "start").and_then(|s| int_literal(s, text));
                let end = argument(node, text, 1, "end").filter(|e| e.kind() == "identifier");
                out.arange_ends.push(end.filter(|_| start == Some(0)).map(|e| text[e.byte_range()].to_string()));
            }
            _ => {}
        }
    });
    for call in calls {
        let value = through_casts(call, text);
        match held_in(value, text) {
            Some((variable, assignment)) => {
                let mut found = false;
                visit(body, &mut |node| {
                    if node.kind() != "identifier" || &text[node.byte_range()] != variable || node == assignment {
                        return;
                    }
                    found = true;
                    let reassigned = node.parent().is_some_and(|p| {
                        matches!(p.kind(), "assignment" | "augmented_assignment" | "for_statement")
                            && p.child_by_field_name("left") == Some(node)
                    });
                    out.uses.push(if reassigned {
                        PidUse::Other(format!("{variable} assigned again"))
                    } else {
                        use_of(through_casts(node, text), body, text)
                    });
                });
                if !found {
                    out.uses.push(PidUse::Other(format!("{variable} never used")));
                }
            }
            None => out.uses.push(use_of(value, body, text)),
        }
    }
    out
}

/// Pre-order over the named nodes under `node` (with a stack: bodies can nest deeply).
fn visit<'t>(node: Node<'t>, f: &mut dyn FnMut(Node<'t>)) {
    let mut stack = vec![node];
    while let Some(node) = stack.pop() {
        f(node);
        let mut cursor = node.walk();
        let children: Vec<Node> = node.named_children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
}

/// The `index`th positional argument of a call, or its keyword argument `keyword`.
fn argument<'t>(call: Node<'t>, text: &str, index: usize, keyword: &str) -> Option<Node<'t>> {
    let args = call.child_by_field_name("arguments")?;
    let mut cursor = args.walk();
    let all: Vec<Node> = args.named_children(&mut cursor).collect();
    let by_name = all.iter().find_map(|a| {
        let name = a.child_by_field_name("name").filter(|_| a.kind() == "keyword_argument")?;
        (&text[name.byte_range()] == keyword).then(|| a.child_by_field_name("value")).flatten()
    });
    by_name.or_else(|| all.into_iter().filter(|a| a.kind() != "keyword_argument").nth(index))
}

fn int_literal(node: Node, text: &str) -> Option<i64> {
    match literal(node, text, &HashMap::new()) {
        Some(Literal::Int(v)) => Some(v),
        _ => None,
    }
}

/// The expression a value ends up in, past parentheses and `.to(...)` casts.
fn through_casts<'t>(mut node: Node<'t>, text: &str) -> Node<'t> {
    loop {
        let Some(parent) = node.parent() else { return node };
        if parent.kind() == "parenthesized_expression" {
            node = parent;
            continue;
        }
        let is_cast = parent.kind() == "attribute"
            && parent.child_by_field_name("object") == Some(node)
            && parent.child_by_field_name("attribute").is_some_and(|a| &text[a.byte_range()] == "to");
        match parent.parent().filter(|call| is_cast && call.kind() == "call") {
            Some(call) if call.child_by_field_name("function") == Some(parent) => node = call,
            _ => return node,
        }
    }
}

/// `pid = <value>`: the variable and its node in the assignment.
fn held_in<'t>(value: Node<'t>, text: &'t str) -> Option<(&'t str, Node<'t>)> {
    let parent = value.parent().filter(|p| p.kind() == "assignment")?;
    if parent.child_by_field_name("right") != Some(value) {
        return None;
    }
    let left = parent.child_by_field_name("left").filter(|l| l.kind() == "identifier")?;
    Some((&text[left.byte_range()], left))
}

/// How `value` (a program id) is used: `pid * NAME` when that product is then only offset (not
/// scaled again, directly or through the variable that holds it: `pid * B * 4` covers more than
/// `B` elements), else what it is used in.
fn use_of(value: Node, body: Node, text: &str) -> PidUse {
    let Some(parent) = value.parent() else { return PidUse::Other(String::new()) };
    let name = (operator(parent, text) == Some("*"))
        .then(|| {
            [parent.child_by_field_name("left"), parent.child_by_field_name("right")]
                .into_iter()
                .flatten()
                .find(|side| *side != value)
        })
        .flatten()
        .filter(|other| other.kind() == "identifier");
    let Some(name) = name else { return PidUse::Other(shortened(parent, text)) };
    let product = through_casts(parent, text);
    let mut scaled = scaled_again(product, text);
    if let Some((variable, assignment)) = held_in(product, text) {
        visit(body, &mut |node| {
            if scaled.is_none()
                && node.kind() == "identifier"
                && &text[node.byte_range()] == variable
                && node != assignment
            {
                scaled = scaled_again(through_casts(node, text), text);
            }
        });
    }
    match scaled {
        Some(outer) => PidUse::Other(outer),
        None => PidUse::Times(text[name.byte_range()].to_string()),
    }
}

fn operator<'t>(node: Node, text: &'t str) -> Option<&'t str> {
    (node.kind() == "binary_operator")
        .then(|| node.child_by_field_name("operator"))
        .flatten()
        .map(|o| &text[o.byte_range()])
}

/// The expression `node` is scaled in (`node * 4`, `node // 2`, `node << 1`), when it is.
fn scaled_again(node: Node, text: &str) -> Option<String> {
    let parent = node.parent()?;
    matches!(operator(parent, text), Some("*" | "/" | "//" | "%" | "<<" | ">>" | "**")).then(|| shortened(parent, text))
}

fn shortened(node: Node, text: &str) -> String {
    let written = text[node.byte_range()].lines().next().unwrap_or_default();
    let short: String = written.chars().take(60).collect();
    if short.len() < written.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// The constexpr `B` when `cdiv(n, B)` is evidently the kernel's grid: it reads only
/// `tl.program_id(0)`, every use of it is multiplied by the same constexpr `B`, every block it
/// makes is `tl.arange(0, B)`, it does not call `tl.num_programs`, and no jit function it calls
/// reads the program id or makes blocks. Each program then covers `B` consecutive elements of one
/// range, and `cdiv(n, B)` programs cover `n`. `Err` says which of these fails.
pub fn evident_block(function: &TritonFunction, helpers: &[&TritonFunction]) -> Result<String, String> {
    let program = &function.program;
    if program.program_id_axes.is_empty() {
        return Err("it never reads tl.program_id, so every program would do the same work".into());
    }
    if let Some(axis) = program.program_id_axes.iter().find(|a| **a != Some(0)) {
        return Err(match axis {
            Some(axis) => format!("it reads tl.program_id({axis}): a grid of more than one dimension"),
            None => "it reads tl.program_id of an axis that is not written as a number".into(),
        });
    }
    if program.num_programs {
        return Err("it calls tl.num_programs, so it spreads its work over whatever grid it gets".into());
    }
    if let Some(helper) = helpers
        .iter()
        .find(|h| !h.program.program_id_axes.is_empty() || h.program.num_programs || !h.program.arange_ends.is_empty())
    {
        return Err(format!(
            "the jit function `{}` it calls reads the program id or makes blocks of its own",
            helper.name
        ));
    }
    let mut block: Option<&str> = None;
    for used in &program.uses {
        match used {
            PidUse::Other(written) => {
                return Err(format!("its program id is used in `{written}`, not only multiplied by a block size"))
            }
            PidUse::Times(name) if block.is_some_and(|b| b != name) => {
                return Err(format!(
                    "its program id is multiplied by both `{}` and `{name}`",
                    block.unwrap_or_default()
                ))
            }
            PidUse::Times(name) => block = Some(name),
        }
    }
    let Some(block) = block else { return Err("its program id is never used".into()) };
    if !function.params.iter().any(|p| p.constexpr && p.name == block) {
        return Err(format!("its program id is multiplied by `{block}`, which is not a tl.constexpr parameter"));
    }
    match program.arange_ends.iter().find(|end| end.as_deref() != Some(block)) {
        Some(_) => Err(format!(
            "it makes blocks other than tl.arange(0, {block}), so a program covers more than {block} elements"
        )),
        None if program.arange_ends.is_empty() => Err(format!("it makes no tl.arange(0, {block}) block")),
        None => Ok(block.to_string()),
    }
}

/// What the Triton worker read off one compiled kernel for launching it (`launch` in its compile
/// answer; the protocol is in `triton_worker.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchInfo {
    pub entry: String,
    pub num_warps: u32,
    pub threads: u32,
    #[serde(default = "one")]
    pub num_ctas: u32,
    pub shared_bytes: u32,
    /// In the order the PTX entry takes them.
    pub params: Vec<LaunchParam>,
    #[serde(default)]
    pub cooperative: bool,
    #[serde(default)]
    pub pdl: bool,
    #[serde(default)]
    pub tensor_descriptors: usize,
    #[serde(default)]
    pub ptx_params: Option<usize>,
    /// Why the list is not to be trusted, when it is not.
    #[serde(default)]
    pub problem: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchParam {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// A pointer Triton appends (global or profile scratch), not one of the function's.
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub bytes_per_program: u64,
    #[serde(default)]
    pub align: u64,
}

/// One configuration's launch before its compile: the value of each of the kernel's parameters
/// that is passed at run time, the grid, and the compile that matches those arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The configuration, its signature specialized for the arguments (see `plan`).
    pub config: CompileConfig,
    /// Parameters marked `tt.divisibility=16` in the compile, as a launch with these arguments is.
    pub divisibility_16: Vec<String>,
    pub n: u64,
    pub grid: [u32; 3],
    /// Values of the parameters passed at run time, by name.
    pub args: Vec<Param>,
    /// Buffers the kernel only stores to (their `read_only` is false: they are not read).
    pub written_only: Vec<String>,
    pub bytes: f64,
    pub flops: Option<f64>,
    /// Lines for the spec's `explained`, before the parameters' and after them.
    pub head: Vec<String>,
    pub tail: Vec<String>,
}

fn spec_error(error: SpecError) -> String {
    error.to_string().replace("`// tensorlens:", "`# tensorlens:")
}

/// The buffer element of a Triton pointer dtype (`fp16` of `*fp16`); 8-bit floats are filled as
/// small bytes.
fn element(dtype: &str) -> Option<Element> {
    Some(match dtype {
        "fp16" => Element::F16,
        "bf16" => Element::Bf16,
        "fp32" => Element::F32,
        "fp64" => Element::F64,
        "i1" | "u1" | "i8" | "u8" | "fp8e4nv" | "fp8e5" | "fp8e4b15" | "fp8e4b8" | "fp8e5b16" => Element::U8,
        "i16" | "u16" => Element::I16,
        "i32" => Element::I32,
        "u32" => Element::U32,
        "i64" => Element::I64,
        "u64" => Element::U64,
        _ => return None,
    })
}

fn int_bytes(ty: &str) -> Option<u8> {
    Some(match ty {
        "i1" | "u1" | "i8" | "u8" => 1,
        "i16" | "u16" => 2,
        "i32" | "u32" => 4,
        "i64" | "u64" => 8,
        _ => return None,
    })
}

fn literal_number(value: &Literal) -> Option<f64> {
    match value {
        Literal::Int(v) => Some(*v as f64),
        Literal::Float(v) => Some(*v),
        Literal::Bool(v) => Some(f64::from(u8::from(*v))),
        Literal::Str(_) => None,
    }
}

/// A grid as Python writes it, for `spec::dims`: `(cdiv(n, BLOCK), 4)`, `(n_rows,)`,
/// `triton.cdiv(n, BLOCK)`.
fn grid_text(text: &str) -> String {
    let text = text.trim().replace("triton.cdiv", "cdiv");
    let inner = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')).filter(|t| {
        // Only when the parentheses are the tuple's, not `(a) * (b)`.
        let mut depth = 0;
        t.chars().all(|c| {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            depth >= 0
        })
    });
    match inner {
        Some(inner) => inner.trim().trim_end_matches(',').trim().to_string(),
        None => text,
    }
}

/// The launch of one configuration of `function`, up to what only its compile can say. Values:
/// the annotation's (`# tensorlens: n=1<<20 stride=n scale=0.5 x_ptr=4*n`, expressions over `n`,
/// the constexprs, `num_warps`, `num_stages` and the parameters before), else the parameter's
/// Python default, else `n` for ints (`False` for bools) and 1.0 for floats; pointers are buffers
/// of `n` elements of their dtype (or the annotation's count, when it is not a dtype). The compile
/// is specialized as Triton's launcher specializes these arguments: pointers (cuMemAlloc's, 256-byte
/// aligned) and ints divisible by 16 get `tt.divisibility=16`, an int of 1 becomes a constant, an
/// int past i32 is i64, unless the parameter's annotation gives its type. `helpers` are the jit
/// functions it calls. `n` overrides the annotation's.
pub fn plan(
    function: &TritonFunction,
    helpers: &[&TritonFunction],
    config: &CompileConfig,
    n: Option<u64>,
) -> Result<Plan, String> {
    let annotation = &function.annotation;
    let mut vars: HashMap<String, f64> = HashMap::new();
    for (name, value) in &config.constexprs {
        if let Some(number) = literal_number(value) {
            vars.insert(name.clone(), number);
        }
    }
    vars.insert("num_warps".into(), f64::from(config.num_warps));
    vars.insert("num_stages".into(), f64::from(config.num_stages));
    let expression = |key: &str, text: &str, vars: &HashMap<String, f64>| {
        eval(text, vars)
            .map_err(|error| spec_error(SpecError::Expression { key: key.into(), text: text.into(), error }))
    };
    let mut head = Vec::new();
    let n = match (n, annotation.get("n")) {
        (Some(n), _) => {
            head.push(format!("n = {n} (asked for)"));
            n
        }
        (None, Some(text)) => {
            let n = positive("n", expression("n", text, &vars)?).map_err(spec_error)?;
            head.push(format!("n = {n} (annotation)"));
            n
        }
        (None, None) => {
            head.push(format!("n = {DEFAULT_N} (default; set it with `# tensorlens: n=...`)"));
            DEFAULT_N as u64
        }
    };
    vars.insert("n".into(), n as f64);

    let mut config = config.clone();
    let mut args = Vec::new();
    let mut divisible = Vec::new();
    let mut tail = Vec::new();
    let mut specialized = Vec::new();
    let mut buffer_bytes = 0.0;
    let mut written_only = Vec::new();
    for (name, ty) in config.signature.iter_mut() {
        if ty == "constexpr" {
            continue;
        }
        let param = function.params.iter().find(|p| p.name == *name);
        // A dtype in the annotation (`x_ptr=fp16`) is the compile's; a value is anything else.
        let written = annotation.get(name).filter(|w| element_type(w).is_none());
        let default = param.and_then(|p| p.default.as_ref());
        if let Some(dtype) = ty.strip_prefix('*') {
            let element =
                element(dtype).ok_or_else(|| format!("`{name}` points to {dtype}, which timing cannot fill"))?;
            let count = match written {
                Some(text) => positive(name, expression(name, text, &vars)?).map_err(spec_error)?,
                None => n,
            };
            let read_only = param.is_some_and(|p| p.read_only);
            let size = f64::from(element.bytes()) * count as f64;
            if param.is_some_and(|p| p.write_only) {
                written_only.push(name.clone());
                buffer_bytes += size;
            } else {
                buffer_bytes += if read_only { size } else { 2.0 * size };
            }
            divisible.push(name.clone());
            args.push(Param::Buffer { name: name.clone(), element, count, read_only });
            continue;
        }
        let typed = param.and_then(|p| p.annotation.as_deref()).and_then(element_type).is_some();
        let (value, from) = match (written, default) {
            (Some(text), _) => (expression(name, text, &vars)?, "annotation"),
            (None, Some(default)) => match literal_number(default) {
                Some(value) => (value, "its default"),
                None => return Err(format!("`{name}` defaults to {default}, which timing cannot pass: give it a value with `# tensorlens: {name}=...`")),
            },
            (None, None) if int_bytes(ty).is_some() && matches!(ty.as_str(), "i1" | "u1") => (0.0, "False by default"),
            (None, None) if int_bytes(ty).is_some() => (n as f64, "n"),
            (None, None) => (1.0, "default"),
        };
        vars.insert(name.clone(), value);
        if !typed && default.is_none() && int_bytes(ty).is_some() && value.fract() != 0.0 {
            // Nothing typed it; a launch with this value passes a Python float, which is fp32.
            *ty = "fp32".into();
            specialized
                .push(format!("{name} = {value} is not whole: passed as fp32, as a Triton launch passes a float"));
        }
        match ty.as_str() {
            "fp32" | "fp64" => {
                let bytes = if ty == "fp32" { 4 } else { 8 };
                args.push(Param::Float { name: name.clone(), value, bytes });
            }
            int if int_bytes(int).is_some() => {
                if value.fract() != 0.0 || !(-9.0e18..9.0e18).contains(&value) {
                    return Err(format!("`{name}` is an integer, not {value} ({from})"));
                }
                let value = value as i64;
                let boolean = matches!(ty.as_str(), "i1" | "u1");
                if !typed && value == 1 && !boolean {
                    // Triton's launcher compiles an int argument equal to 1 as that constant.
                    *ty = "constexpr".into();
                    config.constexprs.push((name.clone(), Literal::Int(1)));
                    specialized.push(format!(
                        "{name} = 1 ({from}), compiled as the constant 1 as a Triton launch does (a `do_not_specialize` list is not read)"
                    ));
                    continue;
                }
                if !typed && ty == "i32" && i32::try_from(value).is_err() {
                    *ty = "i64".into();
                    specialized.push(format!("{name} = {value} does not fit i32: passed as i64, as a Triton launch does"));
                }
                if value % 16 == 0 && !boolean {
                    divisible.push(name.clone());
                }
                let bytes = int_bytes(ty).unwrap_or(4);
                args.push(Param::Int { name: name.clone(), value, bytes });
            }
            other => {
                return Err(format!(
                    "`{name}` is a {other} scalar: timing passes integers, fp32 and fp64 only; make it fp32 (`# tensorlens: {name}=fp32` types it) "
                ))
            }
        }
    }
    if !divisible.is_empty() {
        tail.push(format!(
            "compiled with tt.divisibility=16 on {} (buffers from cuMemAlloc are 256-byte aligned; ints divisible by 16), as a Triton launch with these arguments specializes",
            divisible.join(", ")
        ));
    }
    tail.extend(specialized);

    let grid = match annotation.get("grid") {
        Some(text) => {
            let grid_annotation =
                Annotation { entries: vec![("grid".into(), grid_text(text))], range: annotation.range.clone() };
            let grid = dims("grid", &grid_annotation, &vars).map_err(spec_error)?.unwrap_or([1, 1, 1]);
            head.push(format!("grid = {} (annotation)", show_dims(grid)));
            grid
        }
        None => match evident_block(function, helpers) {
            Ok(block) => {
                let size = vars.get(&block).copied().unwrap_or(0.0);
                let size = positive(&block, size).map_err(spec_error)?;
                let programs = u32::try_from(n.div_ceil(size)).unwrap_or(u32::MAX);
                head.push(format!(
                    "grid = {programs} (cdiv(n, {block}) with {block} = {size}: each program covers {block} consecutive elements, tl.program_id(0) * {block}; set it with `# tensorlens: grid=...`)"
                ));
                [programs, 1, 1]
            }
            Err(why) => {
                let mut names: Vec<&str> = vec!["n"];
                names.extend(config.constexprs.iter().map(|(k, _)| k.as_str()));
                names.extend(args.iter().filter(|a| !matches!(a, Param::Buffer { .. })).map(param_name));
                names.push("num_warps");
                return Err(format!(
                    "cannot tell the grid of `{}`: {why}. Write it above the kernel, as the launch computes it: `# tensorlens: grid=...`, an expression over {} (e.g. `grid=cdiv(n, {})` or `grid=(n_rows, 4)`)",
                    function.name,
                    names.join(", "),
                    config.constexprs.first().map_or("BLOCK", |(k, _)| k.as_str())
                ));
            }
        },
    };
    vars.insert("grid".into(), f64::from(grid[0]));
    let bytes = match annotation.get("bytes") {
        Some(text) => {
            let bytes = expression("bytes", text, &vars)?;
            tail.push(format!("bytes moved = {bytes} (annotation)"));
            bytes
        }
        None => {
            tail.push(format!(
                "bytes moved = {buffer_bytes} (buffers only loaded from read once, only stored to written once, others read and written; scratch not counted)"
            ));
            buffer_bytes
        }
    };
    let flops = annotation.get("flops").map(|text| expression("flops", text, &vars)).transpose()?;
    if let Some(flops) = flops {
        tail.push(format!("flops = {flops} (annotation)"));
    }
    Ok(Plan { config, divisibility_16: divisible, n, grid, args, written_only, bytes, flops, head, tail })
}

fn param_name(param: &Param) -> &str {
    match param {
        Param::Buffer { name, .. } | Param::Int { name, .. } | Param::Float { name, .. } => name,
    }
}

/// The spec of `plan`'s launch of the kernel its compile made: the parameters in the order the
/// PTX entry takes them, with a buffer for each hidden scratch pointer (its bytes per program
/// times the programs, or a null pointer when the kernel needs none), 32 × num_warps threads and
/// the dynamic shared memory Triton asks for. `Err` when the launch needs what the timing worker
/// does not do (clusters, cooperative or programmatic-dependent launches, host tensor descriptors)
/// or the compiled kernel takes parameters the plan has no value for.
pub fn launch(plan: &Plan, info: &LaunchInfo) -> Result<LaunchSpec, String> {
    if let Some(problem) = &info.problem {
        return Err(problem.clone());
    }
    let unsupported = |what: &str| {
        format!(
            "`{}` needs {what}, which the timing worker does not do yet (it launches with cuLaunchKernel)",
            info.entry
        )
    };
    if info.num_ctas != 1 {
        return Err(unsupported(&format!("a cluster launch of {} CTAs (num_ctas)", info.num_ctas)));
    }
    if info.cooperative {
        return Err(unsupported("a cooperative launch"));
    }
    if info.pdl {
        return Err(unsupported("a programmatic dependent launch"));
    }
    if info.tensor_descriptors > 0 {
        return Err(unsupported("host tensor descriptors"));
    }
    if info.threads == 0 || info.threads > 1024 {
        return Err(format!("`{}` asks for {} threads a program: at most 1024 are allowed", info.entry, info.threads));
    }
    let programs: u64 = plan.grid.iter().map(|&g| u64::from(g)).product();
    let mut explained = plan.head.clone();
    explained.push(format!("block = {} (32 × num_warps={}, one Triton program)", info.threads, info.num_warps));
    explained.push(format!("dynamic shared memory = {} B (Triton's metadata.shared)", info.shared_bytes));
    let mut params = Vec::new();
    for wanted in &info.params {
        if wanted.hidden {
            let count = wanted.bytes_per_program.saturating_mul(programs).saturating_mul(u64::from(info.num_ctas));
            explained.push(if count == 0 {
                format!(
                    "{}: null (a pointer Triton appends; this kernel needs no {})",
                    wanted.name,
                    wanted.name.replace('_', " ")
                )
            } else {
                format!(
                    "{}: {count} B buffer (a pointer Triton appends: {} B a program × {programs} programs)",
                    wanted.name, wanted.bytes_per_program
                )
            });
            params.push(Param::Buffer { name: wanted.name.clone(), element: Element::U8, count, read_only: false });
            continue;
        }
        let value = plan.args.iter().find(|a| param_name(a) == wanted.name).ok_or_else(|| {
            format!("the compiled `{}` takes `{}`, which the launch has no value for", info.entry, wanted.name)
        })?;
        explained.push(match value {
            Param::Buffer { name, element, count, .. } if plan.written_only.contains(name) => {
                format!("{name}: {count} × {} B buffer, written", element.bytes())
            }
            _ => describe(value),
        });
        params.push(value.clone());
    }
    if let Some(missing) = plan.args.iter().find(|a| !info.params.iter().any(|p| p.name == param_name(a))) {
        return Err(format!(
            "the compiled `{}` takes no `{}`: its parameters are not the ones planned",
            info.entry,
            param_name(missing)
        ));
    }
    explained.extend(plan.tail.iter().cloned());
    Ok(LaunchSpec {
        n: plan.n,
        grid: plan.grid,
        block: [info.threads, 1, 1],
        shared_bytes: info.shared_bytes,
        params,
        bytes: plan.bytes,
        flops: plan.flops,
        explained,
    })
}

/// One configuration's measurement, in a Triton kernel's timing record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigTiming {
    /// `BLOCK_SIZE=1024 num_warps=4 num_stages=3`.
    pub label: String,
    /// The PTX entry timed.
    pub entry: Option<String>,
    pub spec: Option<LaunchSpec>,
    pub timing: Option<Timing>,
    pub error: Option<String>,
    pub summary: String,
    /// Median change against the same configuration in the run before, in percent.
    pub change_percent: Option<f64>,
    pub warnings: Vec<String>,
}

impl ConfigTiming {
    pub fn new(label: String, entry: Option<String>) -> ConfigTiming {
        ConfigTiming {
            label,
            entry,
            spec: None,
            timing: None,
            error: None,
            summary: String::new(),
            change_percent: None,
            warnings: Vec::new(),
        }
    }

    pub fn failed(label: String, entry: Option<String>, error: String) -> ConfigTiming {
        let mut config = ConfigTiming::new(label, entry);
        config.set_error(error);
        config
    }

    pub fn set_error(&mut self, error: String) {
        self.summary = format!("⏱ ✗ {}", error.lines().next().unwrap_or_default());
        self.error = Some(error);
    }

    pub fn median(&self) -> Option<f64> {
        self.timing.as_ref().map(|t| t.summary.median)
    }
}

/// The configuration with the smallest median, among those measured.
pub fn fastest(configs: &[ConfigTiming]) -> Option<&ConfigTiming> {
    configs
        .iter()
        .filter(|c| c.median().is_some())
        .min_by(|a, b| a.median().unwrap_or(f64::INFINITY).total_cmp(&b.median().unwrap_or(f64::INFINITY)))
}

/// ` · fastest of 3 configs: BLOCK_SIZE=1024 num_warps=4 num_stages=3`, for the record's summary.
pub fn fastest_note(configs: &[ConfigTiming]) -> String {
    match fastest(configs) {
        Some(best) if configs.len() > 1 => {
            let timed = configs.iter().filter(|c| c.median().is_some()).count();
            let of =
                if timed == configs.len() { format!("{timed}") } else { format!("{timed} timed of {}", configs.len()) };
            format!(" · fastest of {of} configs: {}", best.label)
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::kernels::triton::TritonFile;
    use crate::parse::{parse_str, Language};

    const PRELUDE: &str = "import triton\nimport triton.language as tl\n\n";

    fn parsed(body: &str) -> TritonFile {
        let text = format!("{PRELUDE}{body}");
        let tree = parse_str(Language::Python, &text).unwrap();
        let rope = ropey::Rope::from_str(&text);
        let recognition = crate::recognize::recognize(Language::Python, &rope, &tree, &Catalog::builtin(), &[]);
        let names: HashMap<usize, String> =
            recognition.references().map(|r| (r.range.end, r.name.to_string())).collect();
        TritonFile::find(&text, &tree, &|end| names.get(&end).cloned())
    }

    /// `evident_block` of the file's first function, with the helpers it calls.
    fn evident(body: &str) -> Result<String, String> {
        let file = parsed(body);
        let kernel = &file.functions[0];
        let helpers: Vec<&TritonFunction> = file.closure(&kernel.name).into_iter().skip(1).collect();
        evident_block(kernel, &helpers)
    }

    #[test]
    fn cdiv_n_block_only_when_each_program_evidently_covers_block_elements() {
        let vector_add = "@triton.jit\ndef k(x_ptr, out_ptr, n, BLOCK_SIZE: tl.constexpr):\n    start = tl.program_id(axis=0) * BLOCK_SIZE\n    offs = start + tl.arange(0, BLOCK_SIZE)\n    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)\n";
        assert_eq!(evident(vector_add), Ok("BLOCK_SIZE".into()));
        // Through a variable, a cast and parentheses, the other way round.
        let held = "@triton.jit\ndef k(x_ptr, n, B: tl.constexpr):\n    pid = tl.program_id(0)\n    offs = (pid.to(tl.int64)) * B + tl.arange(0, B)\n    tl.store(x_ptr + offs, 1.0, mask=offs < n)\n    base = B * pid\n";
        assert_eq!(evident(held), Ok("B".into()));

        let cases = [
            // Row-wise: one program per row, whatever its block of columns.
            ("@triton.jit\ndef k(x_ptr, stride, n, BLOCK: tl.constexpr):\n    row = tl.program_id(0)\n    cols = tl.arange(0, BLOCK)\n    tl.store(x_ptr + row * stride + cols, 1.0)\n", "multiplied by `stride`, which is not a tl.constexpr"),
            ("@triton.jit\ndef k(x_ptr, n, BLOCK: tl.constexpr):\n    first = tl.program_id(0)\n    for row in range(first, n, tl.num_programs(0)):\n        tl.store(x_ptr + row * BLOCK + tl.arange(0, BLOCK), 1.0)\n", "tl.num_programs"),
            ("@triton.jit\ndef k(x_ptr, BLOCK: tl.constexpr):\n    r = tl.program_id(0)\n    c = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)\n    tl.store(x_ptr + r * BLOCK + c, 1.0)\n", "tl.program_id(1)"),
            ("@triton.jit\ndef k(x_ptr, AXIS: tl.constexpr, BLOCK: tl.constexpr):\n    tl.store(x_ptr + tl.program_id(AXIS) * BLOCK + tl.arange(0, BLOCK), 1.0)\n", "not written as a number"),
            // A 2-D tile per program: more than BLOCK_M elements each.
            ("@triton.jit\ndef k(x_ptr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):\n    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)\n    cols = tl.arange(0, BLOCK_N)\n    tl.store(x_ptr + rows[:, None] * BLOCK_N + cols[None, :], 1.0)\n", "blocks other than tl.arange(0, BLOCK_M)"),
            // Grouped tiles: the program id is divided, not multiplied.
            ("@triton.jit\ndef k(x_ptr, n, BLOCK: tl.constexpr):\n    pid = tl.program_id(0)\n    tile = pid // 8\n    tl.store(x_ptr + tile * BLOCK + tl.arange(0, BLOCK), 1.0)\n", "used in `pid // 8`"),
            ("@triton.jit\ndef k(x_ptr, A: tl.constexpr, B: tl.constexpr):\n    pid = tl.program_id(0)\n    tl.store(x_ptr + pid * A + tl.arange(0, A), 1.0)\n    tl.store(x_ptr + pid * B + tl.arange(0, A), 1.0)\n", "both `A` and `B`"),
            ("@triton.jit\ndef k(x_ptr, B: tl.constexpr):\n    pid = tl.program_id(0)\n    pid = pid + 1\n    tl.store(x_ptr + pid * B + tl.arange(0, B), 1.0)\n", "assigned again"),
            ("@triton.jit\ndef k(x_ptr, B: tl.constexpr):\n    tl.store(x_ptr + tl.arange(0, B), 1.0)\n", "never reads tl.program_id"),
            // Each program covers 4 blocks: the product is scaled again, directly or held.
            ("@triton.jit\ndef k(x_ptr, B: tl.constexpr):\n    for i in range(4):\n        tl.store(x_ptr + tl.program_id(0) * B * 4 + i * B + tl.arange(0, B), 1.0)\n", "used in `tl.program_id(0) * B * 4`"),
            ("@triton.jit\ndef k(x_ptr, B: tl.constexpr):\n    start = tl.program_id(0) * B\n    for i in range(4):\n        tl.store(x_ptr + start * 4 + i * B + tl.arange(0, B), 1.0)\n", "used in `start * 4`"),
            ("@triton.jit\ndef k(x_ptr, B: tl.constexpr):\n    tl.store(x_ptr + tl.program_id(0) * B + offsets(B), 1.0)\n\n@triton.jit\ndef offsets(B: tl.constexpr):\n    return tl.arange(0, B)\n", "`offsets` it calls"),
        ];
        for (body, why) in cases {
            let err = evident(body).unwrap_err();
            assert!(err.contains(why), "{err:?} does not say {why:?} for\n{body}");
        }
    }

    const KERNEL: &str = "# tensorlens: n=1<<20 stride=1 scale=0.5 x_ptr=2*n y_ptr=bf16\n@triton.jit\ndef k(x_ptr, y_ptr, out_ptr, n, stride, scale, eps=1e-5, FLAG=True, BLOCK: tl.constexpr = 64):\n    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)\n    x = tl.load(x_ptr + offs * stride, mask=offs < n)\n    y = tl.load(y_ptr + offs, mask=offs < n)\n    tl.store(out_ptr + offs, x * scale + y + eps, mask=offs < n)\n\ndef go(x, y, out, n):\n    k[(n // 256,)](x, y, out, n, 1, 0.5, BLOCK=256, num_warps=8)\n";

    fn kernel_plan(body: &str) -> Result<Plan, String> {
        let file = parsed(body);
        let kernel = &file.functions[0];
        let config = kernel.compile_configs(&file.constants).unwrap().remove(0);
        plan(kernel, &[], &config, None)
    }

    #[test]
    fn every_argument_gets_a_value_and_the_compile_matches_a_launch_with_them() {
        let plan = kernel_plan(KERNEL).unwrap();
        let n = 1u64 << 20;
        assert_eq!((plan.n, plan.grid), (n, [4096, 1, 1]), "cdiv(n, 256) of the launch's BLOCK");
        assert_eq!(
            plan.args,
            [
                Param::Buffer { name: "x_ptr".into(), element: Element::F32, count: 2 * n, read_only: true },
                Param::Buffer { name: "y_ptr".into(), element: Element::Bf16, count: n, read_only: true },
                Param::Buffer { name: "out_ptr".into(), element: Element::F32, count: n, read_only: false },
                Param::Int { name: "n".into(), value: 1 << 20, bytes: 4 },
                Param::Float { name: "scale".into(), value: 0.5, bytes: 4 },
                Param::Float { name: "eps".into(), value: 1e-5, bytes: 4 },
                Param::Int { name: "FLAG".into(), value: 1, bytes: 1 },
            ]
        );
        // stride = 1 is compiled as the constant, as Triton's launcher does with an int of 1.
        let types: Vec<(&str, &str)> = plan.config.signature.iter().map(|(k, t)| (k.as_str(), t.as_str())).collect();
        assert_eq!(
            types,
            [
                ("x_ptr", "*fp32"),
                ("y_ptr", "*bf16"),
                ("out_ptr", "*fp32"),
                ("n", "i32"),
                ("stride", "constexpr"),
                ("scale", "fp32"),
                ("eps", "fp32"),
                ("FLAG", "i1"),
                ("BLOCK", "constexpr")
            ]
        );
        assert!(plan.config.constexprs.contains(&("stride".into(), Literal::Int(1))), "{:?}", plan.config.constexprs);
        assert_eq!(plan.divisibility_16, ["x_ptr", "y_ptr", "out_ptr", "n"]);
        // x and y only loaded from, out only stored to: each moved once.
        assert_eq!(plan.bytes, (2 * n * 4 + n * 2 + n * 4) as f64);
        assert_eq!(plan.written_only, ["out_ptr"]);
        let explained = [plan.head.clone(), plan.tail.clone()].concat().join("\n");
        for line in [
            "n = 1048576 (annotation)",
            "grid = 4096 (cdiv(n, BLOCK) with BLOCK = 256",
            "tt.divisibility=16 on x_ptr, y_ptr, out_ptr, n",
            "stride = 1 (annotation), compiled as the constant 1",
            "scratch not counted",
        ] {
            assert!(explained.contains(line), "{line:?} not in\n{explained}");
        }
    }

    #[test]
    fn ints_past_i32_are_i64_and_what_cannot_be_passed_is_named() {
        let big = KERNEL.replace("n=1<<20", "n=1<<33");
        let plan = kernel_plan(&big).unwrap();
        assert!(plan.args.contains(&Param::Int { name: "n".into(), value: 1 << 33, bytes: 8 }), "{:?}", plan.args);
        assert!(plan.config.signature.contains(&("n".into(), "i64".into())));
        // Annotated types are kept: an i64 parameter is i64 whatever its value, and 1 stays a
        // parameter.
        let typed = "@triton.jit\ndef k(x_ptr, n: tl.int64, BLOCK: tl.constexpr = 64):\n    tl.store(x_ptr + tl.program_id(0) * BLOCK + tl.arange(0, BLOCK), 1.0)\n";
        let plan = kernel_plan(&format!("# tensorlens: n=1\n{typed}")).unwrap();
        assert_eq!(plan.args[1], Param::Int { name: "n".into(), value: 1, bytes: 8 });

        let half = "# tensorlens: s=fp16\n@triton.jit\ndef k(x_ptr, s, BLOCK: tl.constexpr = 64):\n    tl.store(x_ptr + tl.program_id(0) * BLOCK + tl.arange(0, BLOCK), s)\n";
        let err = kernel_plan(half).unwrap_err();
        assert!(err.contains("`s` is a fp16 scalar"), "{err}");
        let bad = KERNEL.replace("stride=1", "stride=q");
        let err = kernel_plan(&bad).unwrap_err();
        assert!(err.contains("`stride=q` in the annotation: unknown name `q`"), "{err}");
        let zero = KERNEL.replace("x_ptr=2*n", "x_ptr=0");
        assert!(kernel_plan(&zero).unwrap_err().contains("x_ptr must be a positive whole number"));
    }

    #[test]
    fn without_an_evident_grid_the_error_says_what_to_write() {
        let rows = "@triton.jit\ndef softmax(out_ptr, in_ptr, stride, n_rows, n_cols, BLOCK: tl.constexpr = 1024):\n    row = tl.program_id(0)\n    cols = tl.arange(0, BLOCK)\n    x = tl.load(in_ptr + row * stride + cols, mask=cols < n_cols)\n    tl.store(out_ptr + row * stride + cols, x, mask=cols < n_cols)\n";
        let err = kernel_plan(rows).unwrap_err();
        assert!(
            err.starts_with("cannot tell the grid of `softmax`: its program id is multiplied by `stride`"),
            "{err}"
        );
        assert!(
            err.contains("`# tensorlens: grid=...`, an expression over n, BLOCK, stride, n_rows, n_cols, num_warps"),
            "{err}"
        );
        // Said as the launch says it, tuple and all.
        let plan =
            kernel_plan(&format!("# tensorlens: n=4096 n_rows=64 n_cols=n/n_rows grid=(n_rows,)\n{rows}")).unwrap();
        assert_eq!(plan.grid, [64, 1, 1]);
        assert!(plan.args.contains(&Param::Int { name: "n_cols".into(), value: 64, bytes: 4 }));
        assert!(plan.head.contains(&"grid = 64 (annotation)".to_string()), "{:?}", plan.head);
        let plan = kernel_plan(&format!("# tensorlens: grid=(triton.cdiv(n, BLOCK), 4)\n{rows}")).unwrap();
        assert_eq!(plan.grid, [16384, 4, 1]);
        let err = kernel_plan(&format!("# tensorlens: grid=cdiv(n, BLOCKS)\n{rows}")).unwrap_err();
        assert!(err.contains("unknown name `BLOCKS`"), "{err}");
    }

    fn info(json: serde_json::Value) -> LaunchInfo {
        serde_json::from_value(json).unwrap()
    }

    /// What the worker says of `KERNEL` compiled with stride as a constant, global scratch of 128 B.
    fn kernel_info() -> serde_json::Value {
        serde_json::json!({
            "entry": "k", "num_warps": 8, "threads": 256, "num_ctas": 1, "shared_bytes": 65536,
            "params": [
                {"name": "x_ptr", "type": "*fp32"}, {"name": "y_ptr", "type": "*bf16"},
                {"name": "out_ptr", "type": "*fp32"}, {"name": "n", "type": "i32"},
                {"name": "scale", "type": "fp32"}, {"name": "eps", "type": "fp32"}, {"name": "FLAG", "type": "i1"},
                {"name": "global_scratch", "type": "*i8", "hidden": true, "bytes_per_program": 128, "align": 128},
                {"name": "profile_scratch", "type": "*i8", "hidden": true, "bytes_per_program": 0, "align": 1}
            ],
            "cooperative": false, "pdl": false, "tensor_descriptors": 0, "ptx_params": 9
        })
    }

    #[test]
    fn the_launch_takes_the_compiled_kernel_s_parameters_in_ptx_order() {
        let plan = kernel_plan(KERNEL).unwrap();
        let spec = launch(&plan, &info(kernel_info())).unwrap();
        assert_eq!((spec.grid, spec.block, spec.shared_bytes), ([4096, 1, 1], [256, 1, 1], 65536));
        let names: Vec<&str> = spec.params.iter().map(param_name).collect();
        assert_eq!(
            names,
            ["x_ptr", "y_ptr", "out_ptr", "n", "scale", "eps", "FLAG", "global_scratch", "profile_scratch"]
        );
        assert_eq!(
            spec.params[7],
            Param::Buffer { name: "global_scratch".into(), element: Element::U8, count: 128 * 4096, read_only: false }
        );
        assert!(matches!(spec.params[8], Param::Buffer { count: 0, .. }), "a null pointer");
        let explained = spec.explained.join("\n");
        for line in [
            "block = 256 (32 × num_warps=8, one Triton program)",
            "dynamic shared memory = 65536 B",
            "global_scratch: 524288 B buffer (a pointer Triton appends: 128 B a program × 4096 programs)",
            "profile_scratch: null",
            "x_ptr: 2097152 × 4 B buffer, read",
        ] {
            assert!(explained.contains(line), "{line:?} not in\n{explained}");
        }
        assert_eq!(spec.bytes, plan.bytes);

        let refused = |change: serde_json::Value, says: &str| {
            let mut json = kernel_info();
            json.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
            let err = launch(&plan, &info(json)).unwrap_err();
            assert!(err.contains(says), "{err:?} does not say {says:?}");
        };
        refused(serde_json::json!({"num_ctas": 2}), "a cluster launch of 2 CTAs");
        refused(serde_json::json!({"cooperative": true}), "a cooperative launch");
        refused(serde_json::json!({"problem": "the PTX entry k takes 8 parameters"}), "takes 8 parameters");
        refused(serde_json::json!({"threads": 2048}), "at most 1024");
        let mut extra = kernel_info();
        extra["params"].as_array_mut().unwrap().insert(4, serde_json::json!({"name": "stride", "type": "i32"}));
        refused(serde_json::json!({"params": extra["params"]}), "takes `stride`, which the launch has no value for");
        let mut fewer = kernel_info();
        fewer["params"].as_array_mut().unwrap().remove(5);
        refused(serde_json::json!({"params": fewer["params"]}), "takes no `eps`");
    }

    fn measured(label: &str, median: Option<f64>) -> ConfigTiming {
        let mut config = ConfigTiming::new(label.into(), Some("k".into()));
        match median {
            Some(median) => {
                let timing = serde_json::json!({
                    "device": {"name": "GPU", "arch": "sm_90", "driver_version": 13000, "sm_clock_khz": 1,
                               "memory_clock_khz": 1, "bus_width_bits": 1, "l2_bytes": 1, "peak_bandwidth_gbs": 1.0},
                    "summary": {"samples": 10, "median": median, "min": median, "max": median, "mean": median, "noise": 0.0},
                    "stop": "converged", "batch": 1, "cold": true, "l2_flush_bytes": 0, "bytes": 0.0,
                    "bandwidth_gbs": 0.0, "bandwidth_fraction": 0.0, "flops_per_second": null,
                    "sm_clock_mhz": null, "clock_dropped": false, "noisy": false, "samples": [median]
                });
                config.timing = Some(serde_json::from_value(timing).unwrap());
            }
            None => config.set_error("did not compile".into()),
        }
        config
    }

    #[test]
    fn the_fastest_configuration_is_the_smallest_median_of_those_measured() {
        let configs =
            [measured("A", Some(3e-5)), measured("B", None), measured("C", Some(1e-5)), measured("D", Some(2e-5))];
        assert_eq!(fastest(&configs).map(|c| c.label.as_str()), Some("C"));
        assert_eq!(fastest_note(&configs), " · fastest of 3 timed of 4 configs: C");
        assert_eq!(fastest_note(&configs[2..]), " · fastest of 2 configs: C");
        assert_eq!(fastest_note(&configs[..1]), "");
        assert!(fastest(&configs[1..2]).is_none());
        assert_eq!(configs[1].summary, "⏱ ✗ did not compile");
    }
}
