//! A first answer before a big file is analysed: the first hover after opening a 20,000-line
//! script must not wait for the whole file to be parsed and recognised (about 200 ms). A hover
//! needs the file's imports and module-level names, the top-level block under the cursor and the
//! functions and classes that block names; `python_window` keeps those, blanks every other byte
//! (newlines kept, so every offset and line is the file's own) and the window is analysed as the
//! whole file would be. The full analysis runs meanwhile and replaces it. The same holds after
//! each edit of a big file: its statements move along with the edit (`Segments::edited`), so the
//! hover right after a keystroke costs the window, not the file.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use ropey::Rope;

/// One top-level statement of a Python file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    range: Range<usize>,
    /// The name a `def` or `class` binds (decorators included in the segment); `None` for other
    /// statements (imports, assignments, module-level code), which are always kept. `@` only while
    /// lexing: a decorator whose definition has not come yet.
    defines: Option<Arc<str>>,
}

/// The top-level statements of a Python file, kept with the document and moved along by each
/// edit (`edited`), so that a window after an edit costs the edited statement, not the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Segments(Vec<Segment>);

/// `text` with what a hover at `offset` does not need blanked: module-level statements, the
/// top-level block holding `offset`, and the `def`s and `class`es named by what is kept, to a
/// fixed point.
pub fn python_window(text: &str, offset: usize) -> String {
    let mut out: Vec<u8> = text.bytes().map(|b| if b == b'\n' { b'\n' } else { b' ' }).collect();
    for range in window_ranges(text, offset) {
        out[range.clone()].copy_from_slice(&text.as_bytes()[range]);
    }
    // Kept ranges start and end on line boundaries and blanked bytes are ASCII spaces.
    String::from_utf8(out).unwrap_or_default()
}

/// The byte ranges `python_window` keeps, adjacent ones merged, in order: what the parser is
/// given (it skips the rest rather than scan a file's worth of spaces).
pub fn window_ranges(text: &str, offset: usize) -> Vec<Range<usize>> {
    Segments::lex(text).window(|r| Cow::Borrowed(&text[r]), offset, None).unwrap_or_default()
}

impl Segments {
    /// The statements of `text`, each from the start of its first line to the end of its last; a
    /// statement continues over indented lines, open brackets, strings, backslashes, decorators,
    /// and the `else:` / `except:` / ... clauses of compound statements.
    pub fn lex(text: &str) -> Segments {
        let mut lexing = Lexing::default();
        lexing.lines(text, 0, None);
        lexing.finish()
    }

    /// The statements after the bytes `start..old_end` became `start..new_end` of `rope`: lexed
    /// again from the statement before the edit until a line starts a statement that started there
    /// before the edit (the rest only moves), or to the end.
    pub fn edited(&self, rope: &Rope, start: usize, old_end: usize, new_end: usize) -> Segments {
        let segments = &self.0;
        let moved = |at: usize| if at >= old_end { (at + new_end).checked_sub(old_end) } else { None };
        // The statement holding the edit, and the one before it (an edit at a line start can join
        // it to the previous statement, or make a clause of it).
        let holding = segments.iter().position(|s| start < s.range.end).unwrap_or(segments.len());
        let from = holding.saturating_sub(1);
        // Nothing before the first statement belongs to one: lex from the top then.
        let at = if from == 0 { 0 } else { segments[from].range.start };
        let mut lexing = Lexing { out: segments[..from].to_vec(), ..Lexing::default() };
        let len = rope.len_bytes();
        // A few statements past the edit usually hold the point where the old statements resume.
        let near = segments.get(holding + 2).and_then(|s| moved(s.range.end)).filter(|&end| end > at);
        for end in [near, Some(len)].into_iter().flatten() {
            let text: Cow<str> = rope.byte_slice(at..end).into();
            let mut resumes = |line_start: usize| {
                let old = line_start.checked_sub(new_end).map(|d| d + old_end)?;
                if line_start < new_end {
                    return None;
                }
                segments.binary_search_by_key(&old, |s| s.range.start).ok().filter(|&k| k >= holding)
            };
            if let Some(k) = lexing.lines(&text, at, Some(&mut resumes)) {
                let mut out = lexing.finish();
                out.0.extend(segments[k..].iter().map(|s| Segment {
                    range: s.range.start + new_end - old_end..s.range.end + new_end - old_end,
                    defines: s.defines.clone(),
                }));
                return out;
            }
            if end == len {
                return lexing.finish();
            }
            // Not there yet: lex the same stretch again, to the end this time.
            lexing = Lexing { out: segments[..from].to_vec(), ..Lexing::default() };
        }
        lexing.finish()
    }

    /// The ranges a hover at `offset` needs (see `python_window`), adjacent ones merged, reading
    /// each statement's text through `text`; `None` when they would be more than `1 / at_most` of
    /// the file (a window of most of the file saves nothing).
    pub fn window<'t>(
        &self,
        text: impl Fn(Range<usize>) -> Cow<'t, str>,
        offset: usize,
        at_most: Option<usize>,
    ) -> Option<Vec<Range<usize>>> {
        let segments = &self.0;
        let mut keep: Vec<bool> = segments
            .iter()
            .map(|s| s.defines.is_none() || (s.range.start <= offset && offset <= s.range.end))
            .collect();
        let total = segments.last().map_or(0, |s| s.range.end);
        let kept =
            |keep: &[bool]| segments.iter().zip(keep).filter(|(_, k)| **k).map(|(s, _)| s.range.len()).sum::<usize>();
        let too_big = |keep: &[bool]| at_most.is_some_and(|n| kept(keep) > total / n);
        if too_big(&keep) {
            return None;
        }
        let mut named: HashSet<String> = HashSet::new();
        let mut scanned = vec![false; segments.len()];
        let mut mentioned: Vec<Option<HashSet<String>>> = vec![None; segments.len()];
        loop {
            let mut grew = false;
            for (i, segment) in segments.iter().enumerate() {
                if keep[i] && !scanned[i] {
                    scanned[i] = true;
                    named.extend(identifiers(&text(segment.range.clone())).map(str::to_string));
                }
            }
            for (i, segment) in segments.iter().enumerate() {
                if !keep[i] && segment.defines.as_deref().is_some_and(|name| named.contains(name)) {
                    keep[i] = true;
                    grew = true;
                }
            }
            // And the definitions that call a kept one: an unannotated parameter takes its type
            // from the calls of its function (values/callers.rs), wherever they are.
            let kept_defs: HashSet<&str> =
                segments.iter().zip(&keep).filter(|(_, k)| **k).filter_map(|(s, _)| s.defines.as_deref()).collect();
            for (i, segment) in segments.iter().enumerate() {
                if keep[i] {
                    continue;
                }
                let mentions = mentioned[i]
                    .get_or_insert_with(|| identifiers(&text(segment.range.clone())).map(str::to_string).collect());
                if mentions.iter().any(|m| kept_defs.contains(m.as_str())) {
                    keep[i] = true;
                    grew = true;
                }
            }
            if !grew || too_big(&keep) {
                break;
            }
        }
        if too_big(&keep) {
            return None;
        }
        let mut ranges: Vec<Range<usize>> = Vec::new();
        for (segment, kept) in segments.iter().zip(keep) {
            if !kept {
                continue;
            }
            match ranges.last_mut() {
                Some(last) if last.end == segment.range.start => last.end = segment.range.end,
                _ => ranges.push(segment.range.clone()),
            }
        }
        Some(ranges)
    }
}

/// The statement splitter's state between lines.
#[derive(Default)]
struct Lexing {
    out: Vec<Segment>,
    lexer: Lexer,
}

impl Lexing {
    /// Lexes `text`, which starts at byte `base` of the file, line by line; stops before a line
    /// that starts a statement where `resumes` (given the line's byte in the file) names an old
    /// statement, and returns that statement's index.
    fn lines(
        &mut self,
        text: &str,
        base: usize,
        mut resumes: Option<&mut dyn FnMut(usize) -> Option<usize>>,
    ) -> Option<usize> {
        let mut line_start = base;
        for line in text.split_inclusive('\n') {
            let continues = self.lexer.inside();
            let first = line.trim_start_matches([' ', '\t', '\r', '\n', '\x0c']);
            let at_column_0 = first.len() == line.len() && !first.is_empty();
            let starts = !continues && at_column_0 && !first.starts_with('#') && !is_clause(first);
            let after_decorator = self.out.last().is_some_and(|s| s.defines.as_deref() == Some("@"));
            if starts && !after_decorator {
                if let Some(k) = resumes.as_mut().and_then(|resumes| resumes(line_start)) {
                    return Some(k);
                }
                self.out.push(Segment { range: line_start..line_start + line.len(), defines: defines(first) });
            } else if let Some(last) = self.out.last_mut() {
                if starts && after_decorator {
                    last.defines = defines(first);
                }
                // Blank and comment lines belong to the statement before; a trailing run of them
                // is harmless either way.
                last.range.end = line_start + line.len();
            }
            self.lexer.line(line);
            line_start += line.len();
        }
        None
    }

    fn finish(mut self) -> Segments {
        for segment in &mut self.out {
            if segment.defines.as_deref() == Some("@") {
                segment.defines = None;
            }
        }
        Segments(self.out)
    }
}

/// `def NAME`, `async def NAME`, `class NAME`; `@` for a decorator, whose definition follows.
fn defines(line: &str) -> Option<Arc<str>> {
    if line.starts_with('@') {
        return Some("@".into());
    }
    let rest = line.strip_prefix("async ").map(str::trim_start).unwrap_or(line);
    let rest = rest.strip_prefix("def ").or_else(|| rest.strip_prefix("class "))?;
    let name: String = rest.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty()).then(|| Arc::from(name))
}

fn is_clause(line: &str) -> bool {
    ["else", "elif ", "except", "finally", "case ", "case("].iter().any(|k| {
        line.strip_prefix(k)
            .is_some_and(|rest| k.ends_with(' ') || k.ends_with('(') || rest.starts_with([':', ' ', '(']))
    })
}

/// Names in a piece of code (strings and comments included: a name there only keeps more).
fn identifiers(code: &str) -> impl Iterator<Item = &str> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| !c.is_ascii_digit()) && !w.is_empty())
}

/// Just enough of Python's lexer to know whether a line ends inside brackets, a string or a
/// backslash continuation.
#[derive(Default)]
struct Lexer {
    depth: usize,
    /// The open string's quote (`'`, `"`, `'''`, `"""`).
    string: Option<&'static str>,
    backslash: bool,
}

impl Lexer {
    fn inside(&self) -> bool {
        self.depth > 0 || self.string.is_some() || self.backslash
    }

    fn line(&mut self, line: &str) {
        self.backslash = false;
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if let Some(quote) = self.string {
                if bytes[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if bytes[i..].starts_with(quote.as_bytes()) {
                    self.string = None;
                    i += quote.len();
                    continue;
                }
                if bytes[i] == b'\n' && quote.len() == 1 {
                    self.string = None; // an unterminated one-line string ends with its line
                }
                i += 1;
                continue;
            }
            match bytes[i] {
                b'#' => break,
                b'(' | b'[' | b'{' => self.depth += 1,
                b')' | b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                b'\\' if line[i + 1..].trim_end_matches(['\r', '\n']).is_empty() => self.backslash = true,
                b'"' | b'\'' => {
                    let rest = &bytes[i..];
                    let quote: &'static str = match bytes[i] {
                        b'"' if rest.starts_with(b"\"\"\"") => "\"\"\"",
                        b'\'' if rest.starts_with(b"'''") => "'''",
                        b'"' => "\"",
                        _ => "'",
                    };
                    self.string = Some(quote);
                    i += quote.len();
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"import torch
import torch.nn as nn
from torch.nn import functional as F

DIM = (
    64
)
DOC = """a module string
def not_a_function():
"""


@torch.no_grad()
def helper(x):
    return F.gelu(x)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(DIM, DIM)

    def forward(self, x):
        return helper(self.fc(x))


def unrelated(y):
    return y.view(-1)


def train(model: Block):
    x = torch.zeros(4, DIM)
    out = model(x)
    out.sum().backward()


try:
    import numpy as np
except ImportError:
    np = None
if __name__ == "__main__":
    train(Block())
"#;

    fn kept_lines(window: &str) -> Vec<usize> {
        window.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, _)| i + 1).collect()
    }

    #[test]
    fn segments_follow_python_s_statements() {
        let defines: Vec<Option<Arc<str>>> = Segments::lex(FILE).0.into_iter().map(|s| s.defines).collect();
        let names: Vec<&str> = defines.iter().map(|d| d.as_deref().unwrap_or("-")).collect();
        // The docstring's `def` is inside a string; the decorator joins its function; `except`
        // continues the `try`.
        assert_eq!(names, ["-", "-", "-", "-", "-", "helper", "Block", "unrelated", "train", "-", "-"]);
    }

    #[test]
    fn a_window_keeps_what_the_block_under_the_cursor_names() {
        let at = FILE.find("out.sum()").unwrap();
        let window = python_window(FILE, at);
        assert_eq!(window.len(), FILE.len());
        assert_eq!(window.lines().count(), FILE.lines().count());
        // train names Block, which names helper; unrelated is named by nothing kept.
        assert!(window.contains("def train") && window.contains("class Block") && window.contains("def helper"));
        assert!(!window.contains("def unrelated"), "{window}");
        assert!(window.contains("except ImportError") && window.contains("DOC = \"\"\"a module string"));
        // Every kept byte is where it was.
        for (a, b) in window.bytes().zip(FILE.bytes()) {
            assert!(a == b || a == b' ');
        }
        let unrelated = python_window(FILE, FILE.find("y.view").unwrap());
        assert!(unrelated.contains("def unrelated"), "{:?}", kept_lines(&unrelated));
    }

    /// Every name of `text` hovered in the window gets the answer the whole file gives.
    fn same_answers(name: &str, text: &str) -> usize {
        use crate::catalog::Catalog;
        use crate::documents::Document;
        let catalog = Catalog::builtin();
        let mut full = Document::new(&format!("file:///w/{name}"), "python", 0, text);
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
        let mut answered = 0;
        for offset in offsets {
            let expected = crate::ide::hover(&full, &catalog, offset);
            let window = full.window_at(offset, &catalog, None).unwrap();
            let got = crate::ide::hover(&window, &catalog, offset);
            assert_eq!(got, expected, "{name} at byte {offset} ({:?})", &text[offset..text.len().min(offset + 30)]);
            answered += expected.is_some() as usize;
        }
        answered
    }

    #[test]
    fn hovers_in_the_window_answer_as_the_whole_file_does() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["tests/fixtures", "tests/fixtures/values", "tests/fixtures/kernels", "tests/triton/fixtures"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
                if entry.path().extension().is_some_and(|e| e == "py") {
                    files.push(entry.path());
                }
            }
        }
        assert!(files.len() >= 8, "{files:?}");
        let mut answered = 0;
        for path in &files {
            let text = std::fs::read_to_string(path).unwrap();
            answered += same_answers(&path.file_name().unwrap().to_string_lossy(), &text);
        }
        answered += same_answers("FILE.py", FILE);
        assert!(answered > 300, "only {answered} hovers answered: the comparison must cover real answers");
    }

    /// Edits of every kind at spread positions: the statements moved along by `edited` are the
    /// ones lexed afresh from the new text.
    #[test]
    fn edited_segments_equal_a_fresh_lex() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut texts = vec![FILE.to_string(), String::new(), "# only a comment\n".to_string()];
        for name in ["tests/fixtures/train.py", "tests/triton/fixtures/matmul.py"] {
            texts.push(std::fs::read_to_string(root.join(name)).unwrap());
        }
        let inserts = [
            "x",
            "\n",
            " ",
            "    ",
            "def f():\n",
            "class C:\n",
            "'''",
            "\"\"\"",
            "(",
            ")",
            "[",
            "@d\n",
            "else:\n",
            "#",
            "\\\n",
            "'",
            "é",
            "\r\n",
            "\nimport os\n",
            "\n\n@d\nasync def g(a,\n",
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
            let mut segments = Segments::lex(&text);
            for _ in 0..400 {
                let start = boundary(&text, next(text.len() + 1));
                let span = if next(3) == 0 { next(40) } else { 0 };
                let old_end = boundary(&text, (start + span).min(text.len())).max(start);
                let insert = if next(4) == 0 { "" } else { inserts[next(inserts.len())] };
                text.replace_range(start..old_end, insert);
                let rope = Rope::from_str(&text);
                segments = segments.edited(&rope, start, old_end, start + insert.len());
                assert_eq!(segments, Segments::lex(&text), "after {insert:?} at {start}..{old_end}");
                checked += 1;
            }
        }
        assert!(checked >= 2_000);
    }

    #[test]
    fn odd_text_never_panics() {
        for text in ["", "\n", "(", "'''", "def", "@x\n", "x = 'é\\\n", "class\n  é\n", "\\\n\\", "é"] {
            for offset in 0..=text.len() {
                let window = python_window(text, offset);
                assert_eq!(window.len(), text.len(), "{text:?}");
            }
        }
    }
}
