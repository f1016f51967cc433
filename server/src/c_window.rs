//! The window of a big C, C++ or CUDA file a hover needs before the whole file is parsed: the
//! top-level item under the cursor, and the items that could change what the full analysis says
//! about the name there. Recognition works per top-level item, and the only facts one item takes
//! from the others are about names: whether the file defines a catalogued name itself (a function
//! with a body, a macro; `Recognition::shadowed`), whether a launched kernel is defined in the file,
//! and how often a kernel is launched. Each of those is about one identifier, written in the item
//! that defines or launches it; so the window is the item under the cursor plus every item where
//! that identifier is written in a way that could define or launch it (`could_define`), and
//! analysing those items alone gives the answer the whole file gives.
//!
//! `Items` are found by a small lexer (comments, strings, raw strings, preprocessor lines, brackets)
//! that knows where tree-sitter's top-level items start and end; `namespace` and `extern "C"`
//! blocks are opened, as recognition opens them. A file whose brackets do not balance has no items
//! (no window: requests wait for the analysis). The items are kept with a big document and moved
//! along by each edit (`Items::edited`), lexing again only from the edited item to where the old
//! items resume.
//!
//! Pure: text in, byte ranges out.

use std::borrow::Cow;
use std::ops::Range;

use ropey::Rope;

/// One top-level item: a function, a declaration, a preprocessor line, at some depth of
/// `namespace` / `extern "C"` blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    range: Range<usize>,
    /// How many `namespace` / `extern "C"` blocks it is in.
    depth: u32,
    /// Whether only blanks come before it on its line (a `#` there starts a preprocessor line).
    line_start: bool,
}

/// The top-level items of a C-family file, or none when its brackets do not balance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Items {
    items: Vec<Item>,
    balanced: bool,
}

/// Where an item's head stands, for telling `namespace x {` and `extern "C" {` (opened) from
/// anything else that has braces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Head {
    Start,
    Inline,
    Namespace,
    Extern,
    ExternString,
    Other,
}

/// The lexer's state between items: what is needed to carry on from any item's start.
#[derive(Clone, Copy)]
struct State {
    depth: u32,
    line_start: bool,
}

/// How lexing a stretch of text ended.
enum Lexed {
    /// At the start of the old item with this index (the rest is the old items, moved).
    Resumed(usize),
    /// At the end of the text, balanced or not.
    End { balanced: bool },
}

/// An item being lexed.
struct Open {
    start: usize,
    depth: u32,
    line_start: bool,
    head: Head,
    /// A `struct`/`class`/`union`/`enum` or an `=` at the item's own level: its braces do not
    /// end it, its `;` does.
    braces_continue: bool,
    /// Inside `template <...>` at the item's own level.
    angles: i32,
    template: bool,
    after_operator: bool,
}

const MAX_SCAN: usize = 64 << 10;

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Skips blanks, line continuations and comments from `i`; returns where the next token starts.
fn skip_trivia(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\x0b' => i += 1,
            b'\\' if matches!(bytes.get(i + 1), Some(b'\n' | b'\r')) => i += 1,
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = line_comment_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = block_comment_end(bytes, i),
            _ => break,
        }
    }
    i
}

/// The end of a `//` comment starting at `i`: its line's end, past lines continued by `\`.
fn line_comment_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            let continued = bytes[..i].ends_with(b"\\") || bytes[..i].ends_with(b"\\\r");
            if !continued {
                return i;
            }
        }
        i += 1;
    }
    i
}

fn block_comment_end(bytes: &[u8], i: usize) -> usize {
    let mut j = i + 2;
    while j + 1 < bytes.len() {
        if bytes[j] == b'*' && bytes[j + 1] == b'/' {
            return j + 2;
        }
        j += 1;
    }
    bytes.len()
}

/// The end of a string or character literal whose quote is at `i` (an unterminated one ends with
/// its line).
fn quoted_end(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b'\n' => return j,
            b if b == quote => return j + 1,
            _ => j += 1,
        }
    }
    bytes.len()
}

/// The end of a raw string `R"delim( ... )delim"` whose quote is at `i`.
fn raw_string_end(bytes: &[u8], i: usize) -> usize {
    let open = bytes[i + 1..].iter().take(17).position(|&b| b == b'(').map(|p| i + 1 + p);
    let Some(open) = open else { return quoted_end(bytes, i) };
    let delim = &bytes[i + 1..open];
    let mut j = open + 1;
    while j < bytes.len() {
        if bytes[j] == b')' && bytes[j + 1..].starts_with(delim) && bytes.get(j + 1 + delim.len()) == Some(&b'"') {
            return j + delim.len() + 2;
        }
        j += 1;
    }
    bytes.len()
}

/// The end of a preprocessor line whose `#` is at `i`: its newline, past lines continued by `\`
/// and comments that go on over lines; and whether it is a conditional (`#if` ... `#endif`).
fn directive_end(bytes: &[u8], i: usize) -> (usize, bool) {
    let mut k = i + 1;
    while matches!(bytes.get(k), Some(b' ' | b'\t')) {
        k += 1;
    }
    let word_end = k + bytes[k..].iter().take_while(|b| is_ident_byte(**b)).count();
    let word = &bytes[k..word_end];
    let conditional =
        matches!(word, b"if" | b"ifdef" | b"ifndef" | b"elif" | b"elifdef" | b"elifndef" | b"else" | b"endif");
    let mut j = word_end;
    while j < bytes.len() {
        match bytes[j] {
            b'\n' => {
                let continued = bytes[..j].ends_with(b"\\") || bytes[..j].ends_with(b"\\\r");
                if !continued {
                    return (j, conditional);
                }
                j += 1;
            }
            b'/' if bytes.get(j + 1) == Some(&b'*') => j = block_comment_end(bytes, j),
            b'/' if bytes.get(j + 1) == Some(&b'/') => j = line_comment_end(bytes, j),
            _ => j += 1,
        }
    }
    (bytes.len(), conditional)
}

impl Items {
    /// The items of `text`.
    pub fn lex(text: &str) -> Items {
        let mut items = Vec::new();
        let state = State { depth: 0, line_start: true };
        match lex(text.as_bytes(), 0, state, &mut items, &mut |_, _| None) {
            Lexed::End { balanced: true } => Items { items, balanced: true },
            _ => Items::default(),
        }
    }

    /// The items after the bytes `start..old_end` became `start..new_end` of `rope`: lexed again
    /// from the item before the edit until an item starts where an old one started (with the same
    /// state), the rest moved; or to the end.
    pub fn edited(&self, rope: &Rope, start: usize, old_end: usize, new_end: usize) -> Items {
        if !self.balanced {
            return Items::lex(&Cow::<str>::from(rope.slice(..)));
        }
        let old = &self.items;
        let holding = old.iter().position(|item| item.range.end >= start).unwrap_or(old.len());
        let from = holding.saturating_sub(1);
        let (at, state) = match old.get(from) {
            Some(item) if from > 0 => (item.range.start, State { depth: item.depth, line_start: item.line_start }),
            _ => (0, State { depth: 0, line_start: true }),
        };
        let len = rope.len_bytes();
        let moved = |at: usize| if at >= old_end { (at + new_end).checked_sub(old_end) } else { None };
        let near = old.get(holding + 2).and_then(|item| moved(item.range.end)).filter(|&end| end > at);
        for end in [near, Some(len)].into_iter().flatten() {
            let text: Cow<str> = rope.byte_slice(at..end).into();
            let mut items = old[..from].to_vec();
            let mut resumes = |pos: usize, state: State| {
                if pos < new_end || pos < at {
                    return None;
                }
                let was = pos - new_end + old_end;
                let k = old.binary_search_by_key(&was, |item| item.range.start).ok()?;
                let item = &old[k];
                (k >= holding && item.depth == state.depth && item.line_start == state.line_start).then_some(k)
            };
            match lex(text.as_bytes(), at, state, &mut items, &mut resumes) {
                Lexed::Resumed(k) => {
                    items.extend(old[k..].iter().map(|item| Item {
                        range: item.range.start + new_end - old_end..item.range.end + new_end - old_end,
                        ..item.clone()
                    }));
                    return Items { items, balanced: true };
                }
                Lexed::End { balanced } if end == len => {
                    return if balanced { Items { items, balanced } } else { Items::default() };
                }
                // Not resumed within the stretch: lex to the end.
                Lexed::End { .. } => {}
            }
        }
        Items::default()
    }

    /// Whether the file's brackets balance (else there are no items, and no window).
    pub fn balanced(&self) -> bool {
        self.balanced
    }

    /// The items holding `offset` (two when one ends where the next starts), in order.
    pub fn around(&self, offset: usize) -> Vec<Range<usize>> {
        let first = self.items.partition_point(|item| item.range.end < offset);
        self.items[first..]
            .iter()
            .take_while(|item| item.range.start <= offset)
            .map(|item| item.range.clone())
            .collect()
    }

    /// The items where `word` (an identifier) is written in a way that could define or launch it
    /// (`could_define`), in order.
    pub fn naming(&self, text: &str, word: &str) -> Vec<Range<usize>> {
        let bytes = text.as_bytes();
        let mut res: Vec<Range<usize>> = Vec::new();
        for (at, _) in text.match_indices(word) {
            let end = at + word.len();
            let whole = (at == 0 || !is_ident_byte(bytes[at - 1])) && bytes.get(end).is_none_or(|b| !is_ident_byte(*b));
            if !whole || !could_define(bytes, at, end) {
                continue;
            }
            let k = self.items.partition_point(|item| item.range.end < at);
            let Some(item) = self.items.get(k).filter(|item| item.range.start <= at) else { continue };
            if res.last() != Some(&item.range) {
                res.push(item.range.clone());
            }
        }
        res
    }

    /// Bytes of the file in items.
    pub fn total(&self) -> usize {
        self.items.iter().map(|item| item.range.len()).sum()
    }
}

/// Whether the identifier at `at..end` could be, in the full parse, a macro's name (`#define`),
/// the name of a function definition (what it is followed by: `(`, the parameters, then anything
/// but what ends an expression) or a kernel launched (`name<<<`), or the name of a template
/// (`name<`). A name in a comment, a string, a call whose value is used or dropped, or a
/// declaration without a body is none of them.
fn could_define(bytes: &[u8], at: usize, end: usize) -> bool {
    let line_start = bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let before = &bytes[line_start..at];
    if before.contains(&b'#') {
        return true; // on a preprocessor line: perhaps `#define name`
    }
    if line_start >= 2 && (bytes[..line_start - 1].ends_with(b"\\") || bytes[..line_start - 1].ends_with(b"\\\r")) {
        return true; // a continued line: perhaps of a preprocessor line
    }
    let next = skip_trivia(bytes, end);
    match bytes.get(next) {
        Some(b'<') => true,
        Some(b'(') => {
            let Some(close) = matching_paren(bytes, next) else { return true };
            let after = skip_trivia(bytes, close + 1);
            !matches!(
                bytes.get(after),
                Some(
                    b';' | b','
                        | b')'
                        | b']'
                        | b'}'
                        | b'.'
                        | b'?'
                        | b'+'
                        | b'*'
                        | b'/'
                        | b'%'
                        | b'|'
                        | b'^'
                        | b'!'
                        | b'<'
                        | b'>'
                )
            )
        }
        _ => false,
    }
}

/// The `)` closing the `(` at `open`, past strings, comments and nested parentheses; `None` when
/// it is not found within a bounded stretch.
fn matching_paren(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    let limit = bytes.len().min(open + MAX_SCAN);
    while i < limit {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'"' | b'\'' => {
                i = quoted_end(bytes, i);
                continue;
            }
            b'/' if matches!(bytes.get(i + 1), Some(b'/' | b'*')) => {
                i = skip_trivia(bytes, i);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Lexes `bytes` (which start at byte `base` of the file) from `state`, pushing the items found;
/// before starting an item where `resumes` (given its file offset and the state there) names an
/// old item, stops and returns that.
fn lex(
    bytes: &[u8],
    base: usize,
    mut state: State,
    items: &mut Vec<Item>,
    resumes: &mut dyn FnMut(usize, State) -> Option<usize>,
) -> Lexed {
    let mut open: Option<Open> = None;
    // Brackets open inside the current item: `(`, `[`, `{` (a body: closing it ends the item) and
    // `T` (a brace that does not end it: a type's, an initializer's).
    let mut stack: Vec<u8> = Vec::new();
    let mut i = 0;
    let mut last_end = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => {
                state.line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\x0c' | b'\x0b' => {
                i += 1;
                continue;
            }
            b'\\' if matches!(bytes.get(i + 1), Some(b'\n' | b'\r')) => {
                i += 1;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = line_comment_end(bytes, i);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = block_comment_end(bytes, i);
                continue;
            }
            _ => {}
        }
        let line_start = std::mem::replace(&mut state.line_start, false);
        // A preprocessor line: an item of its own at the top, part of the item inside one.
        if b == b'#' && line_start {
            let (end, conditional) = directive_end(bytes, i);
            if open.is_none() && !conditional {
                if let Some(k) = resumes(base + i, State { depth: state.depth, line_start }) {
                    return Lexed::Resumed(k);
                }
                let end_line = if end < bytes.len() { end + 1 } else { end };
                items.push(Item { range: base + i..base + end_line, depth: state.depth, line_start });
            }
            i = end;
            last_end = end;
            continue;
        }
        if open.is_none() {
            if b == b'}' {
                // The end of a `namespace` or `extern "C"` block.
                if state.depth == 0 {
                    return Lexed::End { balanced: false };
                }
                state.depth -= 1;
                i += 1;
                last_end = i;
                continue;
            }
            if let Some(k) = resumes(base + i, State { depth: state.depth, line_start }) {
                return Lexed::Resumed(k);
            }
            open = Some(Open {
                start: i,
                depth: state.depth,
                line_start,
                head: Head::Start,
                braces_continue: false,
                angles: 0,
                template: false,
                after_operator: false,
            });
        }
        let item = open.as_mut().expect("opened above");
        let mut ends = false;
        let top = stack.is_empty();
        if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 {
            let mut j = i;
            while j < bytes.len() && (is_ident_byte(bytes[j]) || bytes[j] >= 0x80) {
                j += 1;
            }
            let word = &bytes[i..j];
            let raw = bytes.get(j) == Some(&b'"') && matches!(word, b"R" | b"LR" | b"uR" | b"UR" | b"u8R");
            if raw {
                j = raw_string_end(bytes, j);
            } else if top {
                item.head = match (item.head, word) {
                    (Head::Start, b"namespace") | (Head::Inline, b"namespace") => Head::Namespace,
                    (Head::Start, b"inline") => Head::Inline,
                    (Head::Start, b"extern") => Head::Extern,
                    (Head::Namespace, _) => Head::Namespace,
                    _ => Head::Other,
                };
                if item.head == Head::Other && word == b"template" && item.angles == 0 {
                    item.template = true;
                }
                if matches!(word, b"struct" | b"class" | b"union" | b"enum") && item.angles == 0 {
                    item.braces_continue = true;
                }
            }
            item.after_operator = word == b"operator";
            i = j;
        } else if b.is_ascii_digit() || (b == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let mut j = i + 1;
            while j < bytes.len() {
                let c = bytes[j];
                let exponent = matches!(c, b'+' | b'-') && matches!(bytes[j - 1], b'e' | b'E' | b'p' | b'P');
                if is_ident_byte(c) || c == b'.' || c == b'\'' || exponent {
                    j += 1;
                } else {
                    break;
                }
            }
            item.head = if top { Head::Other } else { item.head };
            item.after_operator = false;
            i = j;
        } else if b == b'"' || b == b'\'' {
            i = quoted_end(bytes, i);
            if top {
                item.head = if item.head == Head::Extern && b == b'"' { Head::ExternString } else { Head::Other };
            }
            item.after_operator = false;
        } else {
            match b {
                b'(' | b'[' => stack.push(b),
                b'{' if top && matches!(item.head, Head::Namespace | Head::ExternString) => {
                    // A block whose items are the file's: not an item itself.
                    open = None;
                    state.depth += 1;
                    i += 1;
                    last_end = i;
                    continue;
                }
                b'{' => stack.push(if top && item.braces_continue { b'T' } else { b'{' }),
                b')' | b']' | b'}' => {
                    let want: &[u8] = match b {
                        b')' => b"(",
                        b']' => b"[",
                        _ => b"{T",
                    };
                    match stack.pop() {
                        Some(opened) if want.contains(&opened) => ends = stack.is_empty() && opened == b'{',
                        _ => return Lexed::End { balanced: false },
                    }
                }
                b';' if top => ends = true,
                b'=' if top && !item.after_operator && item.angles == 0 => item.braces_continue = true,
                b'<' if top && item.template => item.angles += 1,
                b'>' if top && item.template && item.angles > 0 => item.angles -= 1,
                _ => {}
            }
            // `namespace a::b {` goes on; `namespace a = b;` and anything else is no block.
            if top && !(item.head == Head::Namespace && b == b':') {
                item.head = Head::Other;
            }
            item.after_operator = item.after_operator && matches!(b, b'=' | b'(' | b')' | b'[' | b']');
            i += 1;
        }
        last_end = i;
        if ends {
            let item = open.take().expect("open");
            items.push(Item {
                range: base + item.start..base + last_end,
                depth: item.depth,
                line_start: item.line_start,
            });
        }
    }
    if let Some(item) = open {
        items.push(Item { range: base + item.start..base + last_end, depth: item.depth, line_start: item.line_start });
    }
    Lexed::End { balanced: stack.is_empty() && state.depth == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"// A file of every kind of item.
#include <cuda_runtime.h>
#define CHECK(call) do { cudaError_t e = (call); if (e != cudaSuccess) { \
    exit(1); } } while (0)

namespace ops {
__device__ float scale(float x) { return 2.0f * x; }
template <typename T, int N = 4>
__global__ void fill(T* out) { out[threadIdx.x] = T(N); }
}  // namespace ops

extern "C" {
__global__ void add(float* a, const float* b) { a[threadIdx.x] += b[threadIdx.x]; }
}

struct Pair { int a; int b; } pair = { 1, 2 };
const char* text = R"x(a } b { c)x";
/* a comment { */
#ifdef EXTRA
void host(float* d) {
    cudaMalloc(&d, 4);
    add<<<1, 32>>>(d, d);
    cudaFree(d);
}
#endif
"#;

    fn texts(items: &Items, text: &str) -> Vec<String> {
        items.items.iter().map(|item| text[item.range.clone()].trim_end().to_string()).collect()
    }

    #[test]
    fn items_follow_the_top_level() {
        let items = Items::lex(FILE);
        assert!(items.balanced);
        let texts = texts(&items, FILE);
        let heads: Vec<&str> = texts.iter().map(|t| t.lines().next().unwrap()).collect();
        assert_eq!(
            heads,
            [
                "#include <cuda_runtime.h>",
                "#define CHECK(call) do { cudaError_t e = (call); if (e != cudaSuccess) { \\",
                "__device__ float scale(float x) { return 2.0f * x; }",
                "template <typename T, int N = 4>",
                "__global__ void add(float* a, const float* b) { a[threadIdx.x] += b[threadIdx.x]; }",
                "struct Pair { int a; int b; } pair = { 1, 2 };",
                "const char* text = R\"x(a } b { c)x\";",
                "void host(float* d) {",
            ]
        );
        assert_eq!(items.items.iter().map(|i| i.depth).collect::<Vec<_>>(), [0, 0, 1, 1, 1, 0, 0, 0]);
    }

    #[test]
    fn unbalanced_files_have_no_items() {
        for text in [
            "void f() {",
            "}",
            "void f() { )",
            "namespace a { int x;",
            "#if A\nvoid f() {\n#else\nvoid f(int) {\n#endif\n}\n",
        ] {
            assert!(!Items::lex(text).balanced, "{text:?}");
        }
    }

    #[test]
    fn names_that_could_define() {
        let items = Items::lex(FILE);
        let naming = |word: &str| {
            texts(
                &Items {
                    items: items
                        .naming(FILE, word)
                        .into_iter()
                        .map(|range| Item { range, depth: 0, line_start: true })
                        .collect(),
                    balanced: true,
                },
                FILE,
            )
        };
        // Launched and defined; used only as a call elsewhere.
        assert_eq!(naming("add").len(), 2);
        assert!(naming("cudaFree").is_empty());
        assert!(naming("cudaMalloc").is_empty());
        assert_eq!(naming("CHECK").len(), 1);
        assert_eq!(naming("scale").len(), 1);
    }

    /// Edits of every kind at spread positions: the items moved along by `edited` are the ones
    /// lexed afresh from the new text.
    #[test]
    fn edited_items_equal_a_fresh_lex() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut texts = vec![FILE.to_string(), String::new(), "// only a comment\n".to_string()];
        for entry in std::fs::read_dir(root.join("tests/fixtures/kernels")).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "cu" || e == "cuh") {
                texts.push(std::fs::read_to_string(entry.path()).unwrap());
            }
        }
        let inserts = [
            "x",
            "\n",
            " ",
            "{",
            "}",
            "(",
            ")",
            ";",
            "\"",
            "'",
            "/*",
            "*/",
            "//",
            "#",
            "\\\n",
            "#define A 1\n",
            "namespace n {",
            "extern \"C\" {",
            "struct S {",
            "=",
            "template <class T>",
            "R\"(",
            "é",
            "\r\n",
            "void f() {}\n",
            "<<<",
            "\n#if X\n",
            "\n#endif\n",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        let boundary = |t: &str, mut i: usize| {
            while !t.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let mut checked = 0;
        for original in &texts {
            let mut text = original.clone();
            let mut items = Items::lex(&text);
            for _ in 0..300 {
                let start = boundary(&text, next(text.len() + 1));
                let span = if next(3) == 0 { next(40) } else { 0 };
                let old_end = boundary(&text, (start + span).min(text.len())).max(start);
                let insert = if next(4) == 0 { "" } else { inserts[next(inserts.len())] };
                text.replace_range(start..old_end, insert);
                let rope = Rope::from_str(&text);
                items = items.edited(&rope, start, old_end, start + insert.len());
                assert_eq!(items, Items::lex(&text), "after {insert:?} at {start}..{old_end}");
                checked += 1;
            }
        }
        assert!(checked >= 900);
    }

    /// Names the file defines itself, kernels launched often, once or never, a launch of a kernel
    /// defined elsewhere: what makes an answer depend on other items.
    const SHADOWS: &str = r#"#include <cuda_runtime.h>
#define cudaDeviceSynchronize() 0
cudaError_t cudaFree(void* p) { return cudaSuccess; }
cudaError_t cudaMemset(void*, int, size_t);
__device__ float __expf(float x) { return x; }
__global__ void twice(float* x) { x[0] = __expf(x[0]); __syncthreads(); }
__global__ void never(float* x) { x[0] = expf(x[0]); }
template <int N> __global__ void tiled(float* x) { x[N] = 0; }
namespace ops { __global__ void scale(float* x) { x[0] *= 2; } }
void host(float* d) {
    cudaMalloc(&d, 4);
    cudaMemset(d, 0, 4);
    twice<<<1, 32>>>(d);
    twice <<<1, 32, 0>>> (d);
    elsewhere<<<1, 1>>>(d);
    tiled<4><<<1, 1>>>(d);
    ops::scale<<<1, 1>>>(d);
    cudaFree(d);
    cudaDeviceSynchronize();
    cudaStreamSynchronize(0);
}
"#;

    /// Host code of the usual kinds, for a corpus with many API calls.
    const HOST: &str = r#"#include <cuda_runtime.h>
#include <cublas_v2.h>
#define CUDA_CHECK(call) do { cudaError_t err_ = (call); if (err_ != cudaSuccess) { exit(1); } } while (0)
__global__ void saxpy(int n, float a, const float* x, float* y) {
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) y[k] = a * x[k] + y[k];
}
float run(int n) {
    float *d_x, *d_y;
    CUDA_CHECK(cudaMalloc(&d_x, n * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&d_y, n * sizeof(float)));
    cudaStream_t stream;
    cudaStreamCreate(&stream);
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    cudaEventRecord(start, stream);
    saxpy<<<(n + 255) / 256, 256, 0, stream>>>(n, 2.0f, d_x, d_y);
    CUDA_CHECK(cudaGetLastError());
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    cublasHandle_t handle;
    cublasCreate(&handle);
    cublasSaxpy(handle, n, &ms, d_x, 1, d_y, 1);
    cublasDestroy(handle);
    CUDA_CHECK(cudaMemcpyAsync(d_y, d_x, n * sizeof(float), cudaMemcpyDeviceToDevice, stream));
    cudaStreamSynchronize(stream);
    cudaFree(d_x);
    cudaFree(d_y);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaStreamDestroy(stream);
    return ms;
}
"#;

    /// Every name of `text` hovered in its window gets the answer the whole file gives; returns
    /// (answers, answers given from a window).
    fn same_answers(name: &str, text: &str) -> (usize, usize) {
        let language = if name.ends_with(".cpp") { "cpp" } else { "cuda" };
        use crate::catalog::Catalog;
        use crate::documents::Document;
        let catalog = Catalog::builtin();
        let mut full = Document::new(&format!("file:///w/{name}"), language, 0, text);
        full.analyze(&catalog, &[]).unwrap();
        let mut offsets: Vec<usize> = Vec::new();
        let mut in_word = false;
        for (i, c) in text.char_indices() {
            let word = c.is_alphanumeric() || c == '_';
            if word && !in_word {
                offsets.push(i);
            }
            in_word = word;
        }
        let (mut answered, mut windowed) = (0, 0);
        for offset in offsets {
            let expected = crate::ide::hover(&full, &catalog, offset);
            answered += expected.is_some() as usize;
            let Some(window) = full.window_at(offset, &catalog, None) else {
                if expected.is_some() && std::env::var_os("TENSORLENS_SHOW_UNWINDOWED").is_some() {
                    eprintln!("no window: {name} at {:?}", &text[offset..text.len().min(offset + 30)]);
                }
                continue;
            };
            let got = crate::ide::hover(&window, &catalog, offset);
            assert_eq!(got, expected, "{name} at byte {offset} ({:?})", &text[offset..text.len().min(offset + 30)]);
            windowed += expected.is_some() as usize;
        }
        (answered, windowed)
    }

    #[test]
    fn hovers_in_the_window_answer_as_the_whole_file_does() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["tests/fixtures", "tests/fixtures/kernels", "tests/vscode/workspace", "tests/cuda"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
                if entry.path().extension().is_some_and(|e| e == "cu" || e == "cuh" || e == "cpp") {
                    files.push(entry.path());
                }
            }
        }
        assert!(files.len() >= 8, "{files:?}");
        let (mut answered, mut windowed) = same_answers("SHADOWS.cu", SHADOWS);
        assert!(windowed * 10 >= answered * 9, "{windowed} of {answered}");
        for path in &files {
            let text = std::fs::read_to_string(path).unwrap();
            let (a, w) = same_answers(&path.file_name().unwrap().to_string_lossy(), &text);
            answered += a;
            windowed += w;
        }
        let (a, w) = same_answers("HOST.cu", HOST);
        answered += a;
        windowed += w;
        let (a, w) = same_answers("FILE.cu", FILE);
        answered += a;
        windowed += w;
        assert!(answered > 280, "only {answered} hovers answered: the comparison must cover real answers");
        assert!(windowed * 4 >= answered * 3, "only {windowed} of {answered} answered from a window");
    }

    #[test]
    fn odd_text_never_panics() {
        for text in
            ["", "\n", "(", "\"", "'", "#", "#define", "R\"", "R\"abc", "/*", "\\", "é", "}", "{", "a<", "x\\\n"]
        {
            let items = Items::lex(text);
            for offset in 0..=text.len() {
                let _ = items.around(offset);
                let _ = items.naming(text, "a");
            }
        }
    }
}
