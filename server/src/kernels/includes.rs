//! What a kernel's `#include`s may read. NVRTC opens included files itself, so before a unit goes
//! to it every include NVRTC would follow is resolved here the way NVRTC resolves it (a quoted name
//! next to the including file first, then the include folders in order; an absolute name as it
//! is), and the file it lands on is checked:
//!
//! - it is a regular file (no `/dev/zero`, FIFO, socket or folder), not under `/proc`, `/sys` or
//!   `/dev`, and at most `MAX_HEADER_BYTES`;
//! - its real path, symlinks followed, lies in the workspace folders (or, for a document in no
//!   workspace folder, directly in the document's own folder), or in a configured or CUDA toolkit
//!   include folder;
//! - a file from the workspace is read (by us, without blocking or following a last symlink) and
//!   its own includes are checked the same way, so that NVRTC never reaches a bad file through it.
//!   Toolkit and configured folders are trusted and not walked.
//!
//! An include that fails is blanked out of the unit (lines stay where they are) and reported:
//! "include "../../outside.h" is outside the workspace; not read". Directives are found
//! lexically and generously: line splices, comments between `#` and the name, `%:` and `??=`
//! all count, and one that is not really a directive (in a string, say) is only checked too.
//! A name computed by a macro (`#include HEADER`) cannot be checked and is never read.
//!
//! What is left: a file swapped between this check and NVRTC's read (a checked-out repository is
//! not changing under us), and flags the user configures themselves (`nvrtcFlags`).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest header read, ours or NVRTC's.
pub const MAX_HEADER_BYTES: u64 = 4 << 20;
/// The most files one unit may pull in from the workspace.
const MAX_WALKED_FILES: usize = 4096;

/// Where a document's kernels may include from.
#[derive(Debug, Clone, Default)]
pub struct IncludePolicy {
    /// Canonical workspace folders whose files are checked and walked; empty with `folder`.
    trees: Vec<PathBuf>,
    /// For a document in no workspace folder: its own folder (canonical), files directly in it.
    folder: Option<PathBuf>,
    /// Canonical configured and toolkit include folders: read without a walk.
    trusted: Vec<PathBuf>,
    /// Include folders in NVRTC's order, as NVRTC is given them.
    search: Vec<PathBuf>,
    /// The folder NVRTC takes quoted includes of the unit from: the program name's.
    unit_dir: PathBuf,
}

impl IncludePolicy {
    /// `path` is the program name NVRTC gets (a file path, or a URI for unsaved documents);
    /// `roots` the workspace folders; `search` the include folders NVRTC is given (configured,
    /// then the toolkit's), all of them trusted.
    pub fn new(path: &str, roots: &[PathBuf], search: &[PathBuf]) -> IncludePolicy {
        let unit_dir = match Path::new(path).parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let canonical = |p: &PathBuf| std::fs::canonicalize(p).ok();
        let trees: Vec<PathBuf> = roots.iter().filter_map(canonical).collect();
        // Only a document on disk has a folder of its own; an unsaved one has none.
        let own_folder = Path::new(path).is_absolute().then(|| std::fs::canonicalize(&unit_dir).ok()).flatten();
        let in_workspace = own_folder.as_ref().is_some_and(|dir| trees.iter().any(|root| dir.starts_with(root)));
        let (trees, folder) = if in_workspace { (trees, None) } else { (Vec::new(), own_folder) };
        IncludePolicy {
            trees,
            folder,
            trusted: search.iter().filter_map(canonical).collect(),
            search: search.to_vec(),
            unit_dir,
        }
    }

    fn outside(&self) -> &'static str {
        if self.folder.is_some() {
            "is outside the document's folder (the document is in no workspace folder)"
        } else {
            "is outside the workspace"
        }
    }

    fn walked(&self, canonical: &Path) -> bool {
        self.trees.iter().any(|root| canonical.starts_with(root))
            || self.folder.as_deref().is_some_and(|dir| canonical.parent() == Some(dir))
    }
}

/// An include refused, on a zero-based line of the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub line: u32,
    pub message: String,
}

/// The unit with every include that may not be read blanked out, and why each was.
pub fn confine(program: &str, policy: &IncludePolicy) -> (String, Vec<Refused>) {
    let mut walker = Walker { policy, texts: HashMap::new(), files: 0 };
    let mut bytes = program.as_bytes().to_vec();
    let mut refused = Vec::new();
    let line_starts: Vec<usize> = program.match_indices('\n').map(|(i, _)| i + 1).collect();
    // The same include written twice is checked once.
    let mut verdicts: HashMap<Operand, Result<(), String>> = HashMap::new();
    for directive in directives(program) {
        let verdict = verdicts
            .entry(directive.operand.clone())
            .or_insert_with(|| walker.check(&directive.operand, &policy.unit_dir, &mut HashSet::new()));
        let Err(why) = verdict.clone() else { continue };
        for byte in &mut bytes[directive.span.clone()] {
            if *byte != b'\n' && *byte != b'\r' {
                *byte = b' ';
            }
        }
        let line = line_starts.partition_point(|&start| start <= directive.span.start) as u32;
        refused.push(Refused { line, message: why });
    }
    // Whole bytes of whole lines were blanked: still UTF-8.
    (String::from_utf8(bytes).unwrap_or_default(), refused)
}

struct Walker<'p> {
    policy: &'p IncludePolicy,
    /// Directives of workspace files read so far, by canonical path.
    texts: HashMap<PathBuf, Result<Vec<Operand>, String>>,
    files: usize,
}

impl Walker<'_> {
    /// `Err` says why the include may not be read, in a sentence ending "; not read".
    fn check(&mut self, operand: &Operand, including_dir: &Path, seen: &mut HashSet<PathBuf>) -> Result<(), String> {
        let (name, quoted) = match operand {
            Operand::Computed(text) => {
                return Err(format!("include {text} is named by a macro, which cannot be checked; not read"))
            }
            Operand::Quoted(name) => (name, true),
            Operand::Angled(name) => (name, false),
        };
        let written = operand.written();
        let Some(found) = self.resolve(name, quoted, including_dir) else {
            return Ok(()); // NVRTC will say it cannot open it
        };
        let (canonical, walk) = self.admit(&found).map_err(|why| format!("include {written} {why}; not read"))?;
        if !walk || !seen.insert(canonical.clone()) {
            return Ok(());
        }
        self.files += 1;
        if self.files > MAX_WALKED_FILES {
            return Err(format!("include {written} pulls in more than {MAX_WALKED_FILES} files; not read"));
        }
        let operands = match self.texts.get(&canonical) {
            Some(known) => known.clone(),
            None => {
                let read =
                    read_header(&canonical).map(|text| directives(&text).into_iter().map(|d| d.operand).collect());
                self.texts.insert(canonical.clone(), read.clone());
                read
            }
        };
        let operands = operands.map_err(|why| format!("include {written} {why}; not read"))?;
        let dir = canonical.parent().unwrap_or(Path::new("/")).to_path_buf();
        let file_name = canonical.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for inner in &operands {
            if let Err(why) = self.check(inner, &dir, seen) {
                let why = why.strip_suffix("; not read").unwrap_or(&why);
                return Err(format!("include {written} is not read: in {file_name}, {why}"));
            }
        }
        Ok(())
    }

    /// The first place NVRTC would find `name` at: anything there at all, since NVRTC opens it.
    fn resolve(&self, name: &str, quoted: bool, including_dir: &Path) -> Option<PathBuf> {
        let path = Path::new(name);
        if path.is_absolute() {
            return exists(path).then(|| path.to_path_buf());
        }
        let local = quoted.then(|| including_dir.join(path));
        local.into_iter().chain(self.policy.search.iter().map(|dir| dir.join(path))).find(|p| exists(p))
    }

    /// The real path of a found file and whether it is to be walked, or why it may not be read.
    fn admit(&self, found: &Path) -> Result<(PathBuf, bool), String> {
        let canonical = std::fs::canonicalize(found).map_err(|_| "cannot be resolved to a file".to_string())?;
        let special = ["/proc", "/sys", "/dev"].iter().any(|dir| canonical.starts_with(dir));
        let meta = std::fs::metadata(&canonical).map_err(|_| "cannot be resolved to a file".to_string())?;
        if special || !meta.is_file() {
            return Err("is not a regular file".into());
        }
        if meta.len() > MAX_HEADER_BYTES {
            return Err(format!("is larger than {} MiB", MAX_HEADER_BYTES >> 20));
        }
        let walk = self.policy.walked(&canonical);
        if !walk && !self.policy.trusted.iter().any(|dir| canonical.starts_with(dir)) {
            return Err(self.policy.outside().into());
        }
        Ok((canonical, walk))
    }
}

/// Whether anything is at `path` (a dangling symlink is nothing: NVRTC cannot open it either).
fn exists(path: &Path) -> bool {
    std::fs::metadata(path).is_ok()
}

/// Reads a checked workspace header: never blocking on a FIFO swapped in, never following a
/// symlink put in its place, never more than the cap.
fn read_header(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|err| format!("cannot be read ({err})"))?;
    let meta = file.metadata().map_err(|err| format!("cannot be read ({err})"))?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    let mut bytes = Vec::new();
    file.take(MAX_HEADER_BYTES + 1).read_to_end(&mut bytes).map_err(|err| format!("cannot be read ({err})"))?;
    if bytes.len() as u64 > MAX_HEADER_BYTES {
        return Err(format!("is larger than {} MiB", MAX_HEADER_BYTES >> 20));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// What follows an include directive's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Operand {
    Quoted(String),
    Angled(String),
    /// A macro that expands to the name.
    Computed(String),
}

impl Operand {
    fn written(&self) -> String {
        match self {
            Operand::Quoted(name) => format!("\"{name}\""),
            Operand::Angled(name) => format!("<{name}>"),
            Operand::Computed(text) => text.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Directive {
    /// Bytes of the source to blank: from the `#` to the end of the logical line.
    span: std::ops::Range<usize>,
    operand: Operand,
}

/// Every directive that reads a file (`include`, `include_next`, `import`, `embed`), found on
/// the text as the preprocessor sees it after trigraphs and line splices. Two ways, and what
/// either finds counts: a C++ lexer that knows comments, strings and raw strings and looks at
/// what starts each line; and a plain look after every `#` and `%:`, wherever it stands, in case
/// the lexer reads something differently from NVRTC. Both take linear time.
fn directives(source: &str) -> Vec<Directive> {
    let (text, map) = logical(source);
    // The lexer's line starts are looked at through comments of any length (they are comments it
    // skips anyway); the plain look sees only short ones, so that it stays linear.
    let mut hashes: Vec<(usize, usize)> = lexed_hashes(&text).into_iter().map(|h| (h, usize::MAX)).collect();
    hashes.extend(
        (0..text.len())
            .filter(|&i| text[i] == '#' || (text[i] == '%' && text.get(i + 1) == Some(&':')))
            .map(|h| (h, SHORT_COMMENT)),
    );
    hashes.sort_unstable_by_key(|&(hash, limit)| (hash, std::cmp::Reverse(limit)));
    hashes.dedup_by_key(|&mut (hash, _)| hash);
    let mut found: Vec<Directive> = Vec::new();
    for (hash, limit) in hashes {
        let Some((operand, operand_end)) = directive_at(&text, hash, limit) else { continue };
        let line_end = text[operand_end..].iter().position(|&c| c == '\n').map_or(text.len(), |p| operand_end + p);
        let span = map[hash]..map.get(line_end).copied().unwrap_or(source.len());
        if found.last().is_some_and(|last| last.span.end > span.start) {
            continue; // `#` inside a directive already found
        }
        found.push(Directive { span, operand });
    }
    found
}

/// The operand of a file-reading directive whose `#` (or `%:`) is at `hash`.
fn directive_at(text: &[char], hash: usize, limit: usize) -> Option<(Operand, usize)> {
    let start = hash + if text[hash] == '#' { 1 } else { 2 };
    let at = skip_blank(text, start, true, limit)?;
    let end = at + text[at..].iter().take_while(|&&c| is_ident(c)).count();
    let word: String = text[at..end].iter().collect();
    if !matches!(word.as_str(), "include" | "include_next" | "import" | "embed") {
        return None;
    }
    operand_after(text, end, limit)
}

/// Past white space (line breaks too when `lines`) and block comments from `from`: where the next
/// token starts. A comment longer than `limit` gives `None`, as does one that never ends.
fn skip_blank(text: &[char], from: usize, lines: bool, limit: usize) -> Option<usize> {
    let mut i = from;
    loop {
        while i < text.len() && text[i].is_whitespace() && (lines || text[i] != '\n') {
            i += 1;
        }
        if text.get(i) == Some(&'/') && text.get(i + 1) == Some(&'*') {
            let stop = text.len().min((i + 2).saturating_add(limit).saturating_add(1));
            let close = (i + 2..stop.saturating_sub(1)).find(|&j| text[j] == '*' && text[j + 1] == '/')?;
            i = close + 2;
            continue;
        }
        return Some(i);
    }
}

/// How far the plain look reads through a comment between a directive's parts.
const SHORT_COMMENT: usize = 64;

/// The `#` and `%:` that start a line as a C++ lexer sees it: outside comments, strings and raw
/// strings, with only white space and comments before them on their line.
fn lexed_hashes(text: &[char]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut line_start = true;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        let next = text.get(i + 1).copied();
        if c == '\n' {
            line_start = true;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            i += text[i..].iter().position(|&c| c == '\n').unwrap_or(text.len() - i);
        } else if c == '/' && next == Some('*') {
            i = (i + 2..text.len().saturating_sub(1))
                .find(|&j| text[j] == '*' && text[j + 1] == '/')
                .map_or(text.len(), |j| j + 2);
        } else if (c == '#' || (c == '%' && next == Some(':'))) && line_start {
            found.push(i);
            line_start = false;
            i += 1;
        } else if c == '"' || c == '\'' {
            line_start = false;
            i = skip_quoted(text, i);
        } else if is_ident(c) {
            line_start = false;
            let end = i + text[i..].iter().take_while(|&&c| is_ident(c)).count();
            let word: String = text[i..end].iter().collect();
            i = if c.is_ascii_digit() {
                // A number, with C++14 digit separators (`1'000`).
                let mut j = end;
                while text.get(j) == Some(&'\'') && text.get(j + 1).is_some_and(|&c| is_ident(c)) {
                    j += 1 + text[j + 1..].iter().take_while(|&&c| is_ident(c)).count();
                }
                j
            } else if matches!(word.as_str(), "R" | "LR" | "uR" | "UR" | "u8R") && text.get(end) == Some(&'"') {
                skip_raw(text, end).unwrap_or(end)
            } else {
                end
            };
        } else {
            line_start = false;
            i += 1;
        }
    }
    found
}

/// Past a string or character literal starting at `at`; it ends at its quote or the line's end.
fn skip_quoted(text: &[char], at: usize) -> usize {
    let quote = text[at];
    let mut i = at + 1;
    while i < text.len() && text[i] != '\n' {
        match text[i] {
            '\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Past a raw string whose `"` is at `quote`: `R"delim( ... )delim"`. `None` when it is not one.
fn skip_raw(text: &[char], quote: usize) -> Option<usize> {
    let open = quote + 1 + text[quote + 1..].iter().take(17).position(|&c| c == '(')?;
    let delim: String = text[quote + 1..open].iter().collect();
    if delim.chars().any(|c| c.is_whitespace() || matches!(c, '\\' | ')' | '"')) {
        return None;
    }
    let close: Vec<char> = format!("){delim}\"").chars().collect();
    let end = (open + 1..text.len()).find(|&j| text[j..].starts_with(&close)).map_or(text.len(), |j| j + close.len());
    Some(end)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The text after trigraphs (`??=`, `??/`) and line splices, with each char's source byte
/// (one more entry for the end).
fn logical(source: &str) -> (Vec<char>, Vec<usize>) {
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut text = Vec::with_capacity(chars.len());
    let mut map = Vec::with_capacity(chars.len() + 1);
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let trigraph = |next: char| {
            c == '?' && chars.get(i + 1).map(|x| x.1) == Some('?') && chars.get(i + 2).map(|x| x.1) == Some(next)
        };
        let (c, width) = if trigraph('=') {
            ('#', 3)
        } else if trigraph('/') {
            ('\\', 3)
        } else {
            (c, 1)
        };
        if c == '\\' {
            // A backslash, perhaps spaces, then a line break: the lines join.
            let mut j = i + width;
            while chars.get(j).is_some_and(|x| x.1 == ' ' || x.1 == '\t') {
                j += 1;
            }
            if chars.get(j).is_some_and(|x| x.1 == '\r') {
                j += 1;
            }
            if chars.get(j).is_some_and(|x| x.1 == '\n') {
                i = j + 1;
                continue;
            }
        }
        text.push(c);
        map.push(at);
        i += width;
    }
    map.push(source.len());
    (text, map)
}

/// The header name after a directive's name, and where it ends.
fn operand_after(text: &[char], from: usize, limit: usize) -> Option<(Operand, usize)> {
    let i = skip_blank(text, from, false, limit)?;
    let first = *text.get(i)?;
    let until = |close: char| -> Option<(String, usize)> {
        let len = text[i + 1..].iter().take_while(|&&c| c != close && c != '\n').count();
        (text.get(i + 1 + len) == Some(&close)).then(|| (text[i + 1..i + 1 + len].iter().collect(), i + 2 + len))
    };
    match first {
        '"' => until('"').map(|(name, end)| (Operand::Quoted(name), end)),
        '<' => until('>').map(|(name, end)| (Operand::Angled(name), end)),
        c if is_ident(c) => {
            let len = text[i..].iter().take_while(|&&c| c != '\n').count();
            let written: String = text[i..i + len].iter().collect();
            Some((Operand::Computed(written.trim().to_string()), i + len))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operands(source: &str) -> Vec<Operand> {
        directives(source).into_iter().map(|d| d.operand).collect()
    }

    #[test]
    fn finds_directives_however_they_are_spelled() {
        let q = |s: &str| Operand::Quoted(s.into());
        assert_eq!(operands("#include \"a.h\"\n"), [q("a.h")]);
        assert_eq!(operands("  #  include <b.h>\n"), [Operand::Angled("b.h".into())]);
        assert_eq!(operands("#/* x */include \"c.h\"\n"), [q("c.h")]);
        assert_eq!(operands("#inc\\\nlude \"d.h\"\n"), [q("d.h")]);
        assert_eq!(operands("#include \\\n \"e.h\"\n"), [q("e.h")]);
        assert_eq!(operands("%:include \"f.h\"\n"), [q("f.h")]);
        assert_eq!(operands("??=include \"g.h\"\n"), [q("g.h")]);
        assert_eq!(operands("#include_next <h.h>\n#import \"i.h\"\n#embed \"j.bin\"\n").len(), 3);
        assert_eq!(operands("#include /* a\ncomment */ \"k.h\"\n"), [q("k.h")]);
        assert_eq!(operands("#define H \"x.h\"\n#include H\n"), [Operand::Computed("H".into())]);
        // Not directives: a plain word, a directive without a name.
        assert!(operands("int include = 1;\n#include\n#pragma once\n").is_empty());
        // Strings and comments do not hide a directive that follows them.
        assert_eq!(operands("const char* s = \"/*\";\n#/**/include \"l.h\"\n"), [q("l.h")]);
        assert_eq!(operands("/* a\n */ #include \"m.h\"\n"), [q("m.h")]);
        assert_eq!(
            operands("auto r = R\"x(\n#include \"in_raw.h\"\n)x\";\nint n = 1'000;\n#include \"n.h\"\n").len(),
            2
        );
        assert_eq!(operands("#/* a /* b */include \"o.h\"\n"), [q("o.h")]);
        let long = format!("#/*{}*/include \"p.h\"\n", " ".repeat(10_000));
        assert_eq!(operands(&long), [q("p.h")], "the lexer reads a long comment through");
    }

    #[test]
    fn hostile_text_is_scanned_in_linear_time() {
        let started = std::time::Instant::now();
        let texts =
            ["#/*".repeat(300_000), "\"/*".repeat(300_000), "#include ".repeat(100_000), "R\"(".repeat(300_000)];
        for text in &texts {
            let _ = directives(text);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    }

    #[test]
    fn blanks_whole_logical_lines_and_keeps_the_others() {
        let dir = std::env::temp_dir().join(format!("tensorlens-includes-blank-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.cu");
        let policy = IncludePolicy::new(path.to_str().unwrap(), std::slice::from_ref(&dir), &[]);
        let source = "int a;\n#include \\\n\"/dev/zero\"\nint b;\n";
        let (program, refused) = confine(source, &policy);
        assert_eq!(program, "int a;\n          \n           \nint b;\n");
        assert_eq!(
            refused,
            [Refused { line: 1, message: "include \"/dev/zero\" is not a regular file; not read".into() }]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_only_regular_files_inside_the_workspace() {
        let base = std::env::temp_dir().join(format!("tensorlens-includes-{}", std::process::id()));
        let ws = base.join("ws");
        std::fs::create_dir_all(ws.join("src/detail")).unwrap();
        std::fs::create_dir_all(base.join("elsewhere")).unwrap();
        std::fs::write(base.join("outside.h"), "#define SECRET 1\n").unwrap();
        std::fs::write(base.join("elsewhere/lib.h"), "#define LIB 1\n").unwrap();
        std::fs::write(ws.join("src/good.h"), "#include \"detail/inner.h\"\n").unwrap();
        std::fs::write(ws.join("src/detail/inner.h"), "#define INNER 1\n").unwrap();
        std::fs::write(ws.join("src/sneaky.h"), "#pragma once\n#include \"../../outside.h\"\n").unwrap();
        std::fs::write(ws.join("src/cycle_a.h"), "#include \"cycle_b.h\"\n").unwrap();
        std::fs::write(ws.join("src/cycle_b.h"), "#include \"cycle_a.h\"\n#include \"/dev/null\"\n").unwrap();
        let _ = std::fs::remove_file(ws.join("src/link.h"));
        std::os::unix::fs::symlink(base.join("outside.h"), ws.join("src/link.h")).unwrap();
        let fifo = ws.join("src/pipe.h");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);

        let path = ws.join("src/k.cu");
        let policy = IncludePolicy::new(path.to_str().unwrap(), std::slice::from_ref(&ws), &[base.join("elsewhere")]);
        let check = |include: &str| confine(&format!("{include}\n"), &policy).1.into_iter().next().map(|r| r.message);
        assert_eq!(check("#include \"good.h\""), None);
        assert_eq!(check("#include <lib.h>"), None, "a configured include folder is trusted");
        assert_eq!(check("#include \"missing.h\""), None, "NVRTC reports it");
        assert_eq!(
            check("#include \"../../outside.h\"").as_deref(),
            Some("include \"../../outside.h\" is outside the workspace; not read")
        );
        assert_eq!(
            check("#include \"link.h\"").as_deref(),
            Some("include \"link.h\" is outside the workspace; not read")
        );
        assert_eq!(
            check("#include \"sneaky.h\"").as_deref(),
            Some("include \"sneaky.h\" is not read: in sneaky.h, include \"../../outside.h\" is outside the workspace")
        );
        assert!(check("#include \"cycle_a.h\"").unwrap().contains("\"/dev/null\" is not a regular file"));
        assert!(check("#include </proc/self/environ>").unwrap().contains("is not a regular file"));
        assert!(check("#include <../../../../../../../../etc/passwd>").unwrap().contains("outside the workspace"));
        assert!(check("#define H \"good.h\"\n#include H").unwrap().contains("named by a macro"));
        if made {
            assert!(check("#include \"pipe.h\"").unwrap().contains("is not a regular file"));
        }

        // A document in no workspace folder may include only files in its own folder.
        let loose = IncludePolicy::new(path.to_str().unwrap(), &[], &[]);
        let check = |include: &str| confine(&format!("{include}\n"), &loose).1.into_iter().next().map(|r| r.message);
        assert_eq!(check("#include \"link.h\"").as_deref(), Some("include \"link.h\" is outside the document's folder (the document is in no workspace folder); not read"));
        assert!(check("#include \"good.h\"")
            .unwrap()
            .contains("in good.h, include \"detail/inner.h\" is outside the document's folder"));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
