//! `// tensorlens: key=value ...` comments directly above a kernel: how the user tells analysis
//! (and timing) what the file cannot say, e.g. `block=128` or `instantiate=reduce<float, 256>`.

use std::ops::Range;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotation {
    /// Keys in the order written; a later repeat of a key wins.
    pub entries: Vec<(String, String)>,
    /// Byte range of the annotation lines in the source.
    pub range: Option<Range<usize>>,
}

const MARKER: &str = "tensorlens:";

impl Annotation {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Reads the run of comment lines that ends right before `start` (the line `start` is on is
    /// not included), keeping those that carry the marker.
    pub fn before(text: &str, start: usize) -> Annotation {
        Annotation::before_with(text, start, |line| {
            let is_comment = line.starts_with("//") || (line.starts_with("/*") && line.ends_with("*/"));
            is_comment.then(|| line.trim_start_matches('/').trim_start_matches('*').trim_end_matches("*/").trim())
        })
    }

    /// The same for Python: `# tensorlens: BLOCK_SIZE=1024 num_warps=4` above a kernel (or above
    /// its decorators).
    pub fn before_python(text: &str, start: usize) -> Annotation {
        Annotation::before_with(text, start, |line| line.starts_with('#').then(|| line.trim_start_matches('#').trim()))
    }

    /// `comment` gives a line's comment body, or `None` when the line is not a comment.
    fn before_with<'t>(text: &'t str, start: usize, comment: impl Fn(&'t str) -> Option<&'t str>) -> Annotation {
        let mut annotation = Annotation::default();
        let line_start = text[..start.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
        let mut end = line_start;
        let mut lines = Vec::new();
        while end > 0 {
            let above_end = end - 1; // the '\n' ending the line above
            let above_start = text[..above_end].rfind('\n').map_or(0, |i| i + 1);
            let Some(body) = comment(text[above_start..above_end].trim()) else { break };
            lines.push((above_start..above_end, body));
            end = above_start;
        }
        for (range, body) in lines.into_iter().rev() {
            let Some(pairs) = body.strip_prefix(MARKER) else { continue };
            annotation.entries.extend(parse_pairs(pairs));
            let start = annotation.range.as_ref().map_or(range.start, |r| r.start);
            annotation.range = Some(start..range.end);
        }
        annotation
    }
}

/// `n=1<<24 block=256 instantiate=k<float, 4>`: a key is a word followed by `=` at the start or
/// after a space; its value runs to the next key, so values may hold spaces and `=`.
pub fn parse_pairs(text: &str) -> Vec<(String, String)> {
    let bytes = text.as_bytes();
    let mut keys: Vec<(usize, usize)> = Vec::new(); // (key start, index of '=')
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start = i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t';
        if at_word_start && (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_') {
            let mut j = i;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            // `==` is a comparison inside a value, not a key.
            if j < bytes.len() && bytes[j] == b'=' && bytes.get(j + 1) != Some(&b'=') {
                keys.push((i, j));
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    keys.iter()
        .enumerate()
        .map(|(n, &(start, eq))| {
            let value_end = keys.get(n + 1).map_or(text.len(), |next| next.0);
            (text[start..eq].to_string(), text[eq + 1..value_end].trim().to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_run_to_the_next_key() {
        let pairs = parse_pairs("n=1<<24 block=256 grid=ceil(n / block) instantiate=k<float, 4> ok=a==b");
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("n", "1<<24"),
                ("block", "256"),
                ("grid", "ceil(n / block)"),
                ("instantiate", "k<float, 4>"),
                ("ok", "a==b")
            ]
        );
        assert!(parse_pairs("").is_empty());
        assert!(parse_pairs("no pairs here").is_empty());
    }

    #[test]
    fn reads_the_comment_lines_right_above() {
        let text = "int x;\n// tensorlens: block=128\n// a plain comment\n/* tensorlens: block=64 n=10 */\n__global__ void k() {}\n";
        let start = text.find("__global__").unwrap();
        let annotation = Annotation::before(text, start);
        assert_eq!(annotation.get("block"), Some("64"));
        assert_eq!(annotation.get("n"), Some("10"));
        let range = annotation.range.unwrap();
        assert!(text[range].starts_with("// tensorlens: block=128"));

        let separated = "// tensorlens: block=128\nint x;\n__global__ void k() {}\n";
        assert_eq!(Annotation::before(separated, separated.find("__global__").unwrap()), Annotation::default());
        assert_eq!(Annotation::before("", 0), Annotation::default());
        assert_eq!(Annotation::before("// tensorlens: block=1", 5), Annotation::default());
    }
}
