//! Where CUDA source sits in a document: the whole of a .cu/.cuh/C++ file, or string literals in
//! Python that hold a `__global__` function (`cupy.RawKernel`, `cupy.RawModule`,
//! `torch.utils.cpp_extension.load_inline`, PyCUDA's `SourceModule`, or a variable later passed
//! to one of them). Strings are found lexically, so it works before the code is even valid Python.

use super::device_code::CudaSource;
use crate::parse::Language;

/// CUDA source and how its bytes map back to the document's.
pub struct EmbeddedSource {
    pub source: CudaSource,
    /// Document byte where the source starts.
    pub start: usize,
    /// For strings with escapes: the document offset (from `start`) of each source byte.
    map: Option<Vec<usize>>,
}

impl EmbeddedSource {
    /// A whole CUDA document, already parsed.
    pub fn whole(source: CudaSource) -> EmbeddedSource {
        EmbeddedSource { source, start: 0, map: None }
    }

    /// The document byte of a byte of the source.
    pub fn to_document(&self, offset: usize) -> usize {
        match &self.map {
            None => self.start + offset,
            Some(map) => self.start + map.get(offset).copied().unwrap_or_else(|| map.last().map_or(0, |l| l + 1)),
        }
    }

    /// The source byte of a document byte, when it falls inside the source.
    pub fn from_document(&self, byte: usize) -> Option<usize> {
        let relative = byte.checked_sub(self.start)?;
        match &self.map {
            None => (relative <= self.source.text.len()).then_some(relative),
            Some(map) => {
                let idx = map.partition_point(|&doc| doc < relative);
                (idx <= map.len() && relative <= map.last().map_or(0, |l| l + 1)).then_some(idx)
            }
        }
    }

    pub fn is_whole_document(&self) -> bool {
        self.start == 0 && self.map.is_none()
    }
}

/// Every CUDA source in a document of `language`.
pub fn cuda_sources(text: &str, language: Language) -> Vec<EmbeddedSource> {
    match language {
        Language::Python => python_strings_with_kernels(text),
        _ => vec![EmbeddedSource::whole(CudaSource::new(text.to_string()))],
    }
}

fn python_strings_with_kernels(text: &str) -> Vec<EmbeddedSource> {
    if !text.contains("__global__") {
        return Vec::new();
    }
    python_strings(text)
        .into_iter()
        .filter(|s| text[s.content.clone()].contains("__global__"))
        .map(|s| {
            let raw_text = &text[s.content.clone()];
            let (decoded, map) = if s.raw || !raw_text.contains('\\') {
                (raw_text.to_string(), None)
            } else {
                let (decoded, map) = decode_escapes(raw_text);
                (decoded, Some(map))
            };
            EmbeddedSource { source: CudaSource::new(decoded), start: s.content.start, map }
        })
        .collect()
}

struct PyString {
    content: std::ops::Range<usize>,
    raw: bool,
}

/// String literals of a Python file, by a lexer that knows comments, prefixes and triple quotes.
fn python_strings(text: &str) -> Vec<PyString> {
    let bytes = text.as_bytes();
    let mut strings = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            quote @ (b'\'' | b'"') => {
                let mut prefix_start = i;
                while prefix_start > 0 && bytes[prefix_start - 1].is_ascii_alphabetic() {
                    prefix_start -= 1;
                }
                let prefix = &text[prefix_start..i];
                let is_prefix = prefix.len() <= 2 && prefix.chars().all(|c| "rRbBuUfFtT".contains(c));
                let raw = is_prefix && prefix.contains(['r', 'R']);
                let triple = bytes[i..].starts_with(&[quote; 3]);
                let open = if triple { 3 } else { 1 };
                let start = i + open;
                let mut j = start;
                let end = loop {
                    if j >= bytes.len() {
                        break None;
                    }
                    if bytes[j] == b'\\' {
                        j += 2;
                        continue;
                    }
                    if !triple && bytes[j] == b'\n' {
                        break None;
                    }
                    if bytes[j] == quote && (!triple || bytes[j..].starts_with(&[quote; 3])) {
                        break Some(j);
                    }
                    j += 1;
                };
                match end {
                    Some(end) => {
                        strings.push(PyString { content: start..end, raw });
                        i = end + open;
                    }
                    None => i = j.min(bytes.len()),
                }
            }
            _ => i += 1,
        }
    }
    strings
}

/// Decodes the escapes that change bytes (`\n`, `\t`, `\\`, quotes, line continuations), keeping
/// for each decoded byte the offset it came from. Others stay as written, as CUDA would see them
/// after Python left them alone.
fn decode_escapes(raw: &str) -> (String, Vec<usize>) {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut map = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let replacement: Option<&[u8]> = match bytes[i + 1] {
                b'n' => Some(b"\n"),
                b't' => Some(b"\t"),
                b'\\' => Some(b"\\"),
                b'\'' => Some(b"'"),
                b'"' => Some(b"\""),
                b'\n' => Some(b""),
                _ => None,
            };
            if let Some(replacement) = replacement {
                for &b in replacement {
                    out.push(b);
                    map.push(i);
                }
                i += 2;
                continue;
            }
        }
        out.push(bytes[i]);
        map.push(i);
        i += 1;
    }
    (String::from_utf8(out).unwrap_or_default(), map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_kernels_in_python_strings_only() {
        let text = "import cupy as cp\n# '__global__' in a comment\nsrc = r'''\nextern \"C\" __global__ void add(float* x) { x[0] += 1; }\n'''\n\
                    k = cp.RawKernel(src, 'add')\nother = \"no kernel\"\nescaped = \"__global__ void e(int* p) {\\n  p[0] = 1;\\n}\"\n";
        let sources = cuda_sources(text, Language::Python);
        assert_eq!(sources.len(), 2);
        let first = &sources[0];
        let kernel = &first.source.kernels()[0];
        assert_eq!(kernel.name, "add");
        let doc_name = first.to_document(kernel.name_range.start)..first.to_document(kernel.name_range.end);
        assert_eq!(&text[doc_name], "add");
        assert_eq!(first.from_document(first.to_document(kernel.name_range.start)), Some(kernel.name_range.start));

        let second = &sources[1];
        assert!(second.source.text.contains("{\n  p[0] = 1;\n}"));
        let kernel = &second.source.kernels()[0];
        let doc_name = second.to_document(kernel.name_range.start)..second.to_document(kernel.name_range.end);
        assert_eq!(&text[doc_name], "e");
        // The second line of the decoded source starts right after the `\n` escape.
        let line2 = second.source.text.find("  p[0]").unwrap();
        assert_eq!(&text[second.to_document(line2)..second.to_document(line2) + 6], "  p[0]");
    }

    #[test]
    fn unterminated_strings_and_odd_text_do_not_panic() {
        for text in [
            "'''__global__",
            "\"__global__\\",
            "x = '__global__ void k(){}",
            "r\"\"\"\n__global__ void k() {}\n\"\"\" + '",
        ] {
            let _ = cuda_sources(text, Language::Python);
        }
        assert_eq!(cuda_sources("__global__ void k() {}", Language::Cuda).len(), 1);
    }
}
