//! How a kernel is launched for timing: problem size, grid, block, shared memory, and a value for
//! every parameter. From `// tensorlens: n=1<<24 block=256 grid=cdiv(n,block) bytes=3*n*4 flops=2*n`
//! above the kernel, or inferred from its signature: pointers become device buffers of `n`
//! elements (const ones read, others read and written), integers get `n`, floats 1.0. The spec is
//! always shown with the result, so a number is never a mystery.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::annotation::Annotation;
use super::expr::{eval, ExprError};

/// The size `n` when neither the annotation nor a setting gives one: 16 Mi elements, enough to
/// leave launch overhead behind on any current GPU.
pub const DEFAULT_N: f64 = (1u64 << 24) as f64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchSpec {
    pub n: u64,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub shared_bytes: u32,
    pub params: Vec<Param>,
    /// Bytes the kernel moves per launch (for bandwidth): the annotation's, else the buffers'.
    pub bytes: f64,
    /// Floating-point operations per launch, when the annotation says.
    pub flops: Option<f64>,
    /// One line per choice and where it came from, for people.
    pub explained: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Param {
    /// A device buffer filled with deterministic pseudo-random values.
    Buffer {
        name: String,
        element: Element,
        count: u64,
        read_only: bool,
    },
    Int {
        name: String,
        value: i64,
        bytes: u8,
    },
    Float {
        name: String,
        value: f64,
        bytes: u8,
    },
}

/// Element types the worker knows how to fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Element {
    F16,
    Bf16,
    F32,
    F64,
    I8,
    U8,
    I16,
    I32,
    U32,
    I64,
    U64,
    /// Vector types (`float4`) and anything else of a known size, filled as f32 lanes.
    Raw(u32),
}

impl Element {
    pub fn bytes(self) -> u32 {
        match self {
            Element::I8 | Element::U8 => 1,
            Element::F16 | Element::Bf16 | Element::I16 => 2,
            Element::F32 | Element::I32 | Element::U32 => 4,
            Element::F64 | Element::I64 | Element::U64 => 8,
            Element::Raw(bytes) => bytes,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("`{key}={text}` in the annotation: {error}")]
    Expression { key: String, text: String, error: ExprError },
    #[error("{0} must be a positive whole number, not {1}")]
    NotPositive(String, f64),
    #[error(
        "cannot tell how to pass parameter `{param}`: give its value in the annotation (`// tensorlens: {name}=...`)"
    )]
    UnknownParam { param: String, name: String },
    #[error("block of {0} threads: at most 1024 are allowed")]
    BlockTooLarge(u64),
}

/// Builds the spec for a kernel with parameters `params` (as written, template arguments already
/// substituted), its annotation, and the block size analysis settled on when none is written.
pub fn launch_spec(params: &[String], annotation: &Annotation, default_block: u32) -> Result<LaunchSpec, SpecError> {
    let mut vars: HashMap<String, f64> = HashMap::new();
    let mut explained = Vec::new();
    let get = |key: &str, vars: &HashMap<String, f64>| -> Result<Option<f64>, SpecError> {
        match annotation.get(key) {
            None => Ok(None),
            Some(text) => eval(text, vars).map(Some).map_err(|error| SpecError::Expression {
                key: key.into(),
                text: text.into(),
                error,
            }),
        }
    };

    let n = match get("n", &vars)? {
        Some(n) => {
            explained.push(format!("n = {} (annotation)", n));
            n
        }
        None => {
            explained.push(format!("n = {DEFAULT_N} (default; set it with `// tensorlens: n=...`)"));
            DEFAULT_N
        }
    };
    let n = positive("n", n)?;
    vars.insert("n".into(), n as f64);

    let block = dims("block", annotation, &vars)?.unwrap_or([default_block.max(1), 1, 1]);
    let threads: u64 = block.iter().map(|&b| u64::from(b)).product();
    if threads > 1024 {
        return Err(SpecError::BlockTooLarge(threads));
    }
    explained.push(format!(
        "block = {} ({})",
        show_dims(block),
        if annotation.get("block").is_some() { "annotation" } else { "block size of the analysis" }
    ));
    vars.insert("block".into(), f64::from(block[0]));
    let grid = match dims("grid", annotation, &vars)? {
        Some(grid) => {
            explained.push(format!("grid = {} (annotation)", show_dims(grid)));
            grid
        }
        None => {
            let blocks = n.div_ceil(u64::from(block[0]).max(1));
            let grid = [u32::try_from(blocks).unwrap_or(u32::MAX), 1, 1];
            explained.push(format!("grid = {} (cdiv(n, block))", show_dims(grid)));
            grid
        }
    };
    vars.insert("grid".into(), f64::from(grid[0]));
    let shared_bytes = get("smem", &vars)?.map_or(Ok(0), |s| positive_or_zero("smem", s))? as u32;

    let mut values = Vec::new();
    let mut buffer_bytes = 0.0;
    for written in params {
        let param = param_of(written, n, annotation, &vars)?;
        if let Param::Buffer { element, count, read_only, .. } = &param {
            let size = f64::from(element.bytes()) * *count as f64;
            buffer_bytes += if *read_only { size } else { 2.0 * size };
        }
        explained.push(describe(&param));
        values.push(param);
    }
    let bytes = match get("bytes", &vars)? {
        Some(bytes) => {
            explained.push(format!("bytes moved = {bytes} (annotation)"));
            bytes
        }
        None => {
            explained.push(format!("bytes moved = {buffer_bytes} (const buffers read once, others read and written)"));
            buffer_bytes
        }
    };
    let flops = get("flops", &vars)?;
    if let Some(flops) = flops {
        explained.push(format!("flops = {flops} (annotation)"));
    }
    Ok(LaunchSpec { n, grid, block, shared_bytes, params: values, bytes, flops, explained })
}

pub(super) fn positive(key: &str, value: f64) -> Result<u64, SpecError> {
    if value >= 1.0 && value.fract() == 0.0 && value < 1e15 {
        Ok(value as u64)
    } else {
        Err(SpecError::NotPositive(key.into(), value))
    }
}

pub(super) fn positive_or_zero(key: &str, value: f64) -> Result<u64, SpecError> {
    if value == 0.0 {
        Ok(0)
    } else {
        positive(key, value)
    }
}

/// `block=256`, `block=16,16` or `block=dim3(16, 16)`.
pub(super) fn dims(
    key: &str,
    annotation: &Annotation,
    vars: &HashMap<String, f64>,
) -> Result<Option<[u32; 3]>, SpecError> {
    let Some(text) = annotation.get(key) else { return Ok(None) };
    let inner = text.trim().strip_prefix("dim3").map(str::trim).unwrap_or(text.trim());
    let inner =
        inner.strip_prefix('(').and_then(|i| i.strip_suffix(')')).filter(|_| inner.contains(',')).unwrap_or(inner);
    let mut out = [1u32; 3];
    // Commas inside function calls (`cdiv(n, 256)`) do not separate dimensions.
    let parts = split_top_level(inner);
    if parts.len() > 3 {
        return Err(SpecError::NotPositive(key.into(), parts.len() as f64));
    }
    for (slot, part) in out.iter_mut().zip(parts) {
        let value =
            eval(part, vars).map_err(|error| SpecError::Expression { key: key.into(), text: text.into(), error })?;
        *slot = u32::try_from(positive(key, value)?).map_err(|_| SpecError::NotPositive(key.into(), value))?;
    }
    Ok(Some(out))
}

fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

pub(super) fn show_dims(d: [u32; 3]) -> String {
    match d {
        [x, 1, 1] => x.to_string(),
        [x, y, 1] => format!("({x}, {y})"),
        [x, y, z] => format!("({x}, {y}, {z})"),
    }
}

/// One parameter from its declaration: `const float* __restrict__ x`, `int n`, `float alpha`.
fn param_of(written: &str, n: u64, annotation: &Annotation, vars: &HashMap<String, f64>) -> Result<Param, SpecError> {
    let name = written
        .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
        .find(|w| !w.is_empty())
        .unwrap_or_default()
        .to_string();
    let type_part = written[..written.rfind(name.as_str()).unwrap_or(written.len())].trim();
    let is_pointer = type_part.contains('*') || type_part.contains('[');
    let words: Vec<&str> = type_part
        .split(|c: char| c.is_whitespace() || c == '*' || c == '&')
        .filter(|w| {
            !w.is_empty()
                && !matches!(
                    *w,
                    "const" | "volatile" | "__restrict__" | "__restrict" | "restrict" | "__grid_constant__"
                )
        })
        .collect();
    let base = words.join(" ");
    let explicit = annotation.get(&name).map(|text| {
        eval(text, vars).map_err(|error| SpecError::Expression { key: name.clone(), text: text.into(), error })
    });
    let unknown = || SpecError::UnknownParam { param: written.to_string(), name: name.clone() };
    if is_pointer {
        let element = element_of(&base).ok_or_else(unknown)?;
        let count = match explicit {
            Some(value) => positive(&name, value?)?,
            None => n,
        };
        let read_only = type_part.split_whitespace().next() == Some("const") || type_part.contains("const ");
        return Ok(Param::Buffer { name, element, count, read_only });
    }
    let element = element_of(&base).ok_or_else(unknown)?;
    let explicit = explicit.transpose()?;
    Ok(match element {
        Element::F16 | Element::Bf16 | Element::Raw(_) => return Err(unknown()),
        Element::F32 | Element::F64 => {
            Param::Float { name, value: explicit.unwrap_or(1.0), bytes: element.bytes() as u8 }
        }
        _ => Param::Int { name, value: explicit.unwrap_or(n as f64) as i64, bytes: element.bytes() as u8 },
    })
}

/// The element type of a C++ type name, for the types kernels take.
fn element_of(base: &str) -> Option<Element> {
    Some(match base {
        "float" => Element::F32,
        "double" => Element::F64,
        "half" | "__half" => Element::F16,
        "__nv_bfloat16" | "nv_bfloat16" => Element::Bf16,
        "int" | "int32_t" | "signed" | "signed int" => Element::I32,
        "unsigned" | "unsigned int" | "uint32_t" | "uint" => Element::U32,
        "long" | "long long" | "int64_t" | "long int" | "long long int" | "ptrdiff_t" | "intptr_t" => Element::I64,
        "unsigned long" | "unsigned long long" | "uint64_t" | "size_t" | "uintptr_t" => Element::U64,
        "short" | "int16_t" => Element::I16,
        "char" | "signed char" | "int8_t" => Element::I8,
        "unsigned char" | "uint8_t" | "bool" => Element::U8,
        "float2" | "int2" | "uint2" => Element::Raw(8),
        "float4" | "int4" | "uint4" | "double2" => Element::Raw(16),
        "double4" => Element::Raw(32),
        "__half2" | "half2" | "__nv_bfloat162" => Element::Raw(4),
        _ => return None,
    })
}

pub(super) fn describe(param: &Param) -> String {
    match param {
        Param::Buffer { name, element, count, read_only } => format!(
            "{name}: {count} × {} B buffer, {}",
            element.bytes(),
            if *read_only { "read" } else { "read and written" }
        ),
        Param::Int { name, value, .. } => format!("{name} = {value}"),
        Param::Float { name, value, .. } => format!("{name} = {value}"),
    }
}

/// Replaces template parameter names in a declaration by the arguments of the instantiation:
/// `const T* in` with `typename T, int B` and `float, 256` becomes `const float* in`.
pub fn substitute_template(param: &str, template_params: &str, args: &str) -> String {
    let names: Vec<&str> = split_top_level(template_params)
        .iter()
        .filter_map(|p| p.split('=').next()?.split_whitespace().last())
        .collect();
    let values: Vec<&str> = split_top_level(args).iter().map(|a| a.trim()).collect();
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        match names.iter().position(|n| n == word) {
            Some(idx) if idx < values.len() => out.push_str(values[idx]),
            _ => out.push_str(word),
        }
        word.clear();
    };
    for c in param.chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::annotation::parse_pairs;

    fn annotation(text: &str) -> Annotation {
        Annotation { entries: parse_pairs(text), range: None }
    }

    fn params(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn infers_a_vector_add_from_its_signature() {
        let spec = launch_spec(
            &params(&["const float* __restrict__ a", "const float* b", "float* c", "int n"]),
            &Annotation::default(),
            256,
        )
        .unwrap();
        assert_eq!(spec.n, 1 << 24);
        assert_eq!(spec.block, [256, 1, 1]);
        assert_eq!(spec.grid, [65536, 1, 1]);
        assert_eq!(spec.params.len(), 4);
        assert_eq!(
            spec.params[0],
            Param::Buffer { name: "a".into(), element: Element::F32, count: 1 << 24, read_only: true }
        );
        assert!(matches!(&spec.params[2], Param::Buffer { read_only: false, .. }));
        assert_eq!(spec.params[3], Param::Int { name: "n".into(), value: 1 << 24, bytes: 4 });
        // a and b read once, c read and written.
        assert_eq!(spec.bytes, 4.0 * 4.0 * (1u64 << 24) as f64);
        assert_eq!(spec.flops, None);
        assert!(spec.explained.iter().any(|l| l.contains("default")), "{:?}", spec.explained);
    }

    #[test]
    fn the_annotation_wins_and_can_use_earlier_names() {
        let spec = launch_spec(
            &params(&["const double* x", "double* y", "double alpha", "size_t len", "int stride"]),
            &annotation("n=1<<20 block=128 grid=cdiv(n, block) smem=1024 bytes=3*n*8 flops=2*n stride=2 alpha=0.5"),
            256,
        )
        .unwrap();
        assert_eq!((spec.n, spec.block, spec.grid, spec.shared_bytes), (1 << 20, [128, 1, 1], [8192, 1, 1], 1024));
        assert_eq!(spec.bytes, 3.0 * 8.0 * (1u64 << 20) as f64);
        assert_eq!(spec.flops, Some(2.0 * (1u64 << 20) as f64));
        assert_eq!(spec.params[2], Param::Float { name: "alpha".into(), value: 0.5, bytes: 8 });
        assert_eq!(spec.params[3], Param::Int { name: "len".into(), value: 1 << 20, bytes: 8 });
        assert_eq!(spec.params[4], Param::Int { name: "stride".into(), value: 2, bytes: 4 });
    }

    #[test]
    fn two_dimensional_launches() {
        let spec = launch_spec(
            &params(&["const float* A", "float* C", "int n"]),
            &annotation("n=1024 block=16,16 grid=dim3(cdiv(n, 16), cdiv(n, 16)) A=n*n C=n*n"),
            256,
        )
        .unwrap();
        assert_eq!((spec.block, spec.grid), ([16, 16, 1], [64, 64, 1]));
        assert!(matches!(spec.params[0], Param::Buffer { count: 1_048_576, .. }));
    }

    #[test]
    fn what_cannot_be_inferred_is_named() {
        let err = launch_spec(&params(&["Matrix m", "int n"]), &Annotation::default(), 256).unwrap_err();
        assert!(err.to_string().contains("`Matrix m`") && err.to_string().contains("m=..."), "{err}");
        let err = launch_spec(&params(&["float* x"]), &annotation("n=0"), 256).unwrap_err();
        assert_eq!(err, SpecError::NotPositive("n".into(), 0.0));
        let err = launch_spec(&params(&["float* x"]), &annotation("n=q"), 256).unwrap_err();
        assert!(err.to_string().contains("unknown name `q`"), "{err}");
        let err = launch_spec(&params(&["float* x"]), &annotation("block=32,64"), 256).unwrap_err();
        assert_eq!(err, SpecError::BlockTooLarge(2048));
    }

    #[test]
    fn template_parameters_take_the_instantiation() {
        assert_eq!(substitute_template("const T* in", "typename T, int BLOCK", "float, 512"), "const float* in");
        assert_eq!(substitute_template("T2 x", "typename T, typename T2 = int", "half, double"), "double x");
        assert_eq!(substitute_template("Tx* y", "typename T", "float"), "Tx* y");
    }
}
