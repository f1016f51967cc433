//! Text into hover markdown without letting it become markup. Catalog text (a user file's summary,
//! name or signature) and text taken from the document (an expression, a compiler message) pass
//! through here on their way into markdown, so none of it can add a link, an image, HTML or
//! formatting that swallows ours.
//!
//! Only what markdown would read as markup is escaped, so ordinary sentences come out as they
//! went in: `lr * weight_decay`, `OPENAI_API_KEY` and `(keyword-only)` are left alone, while
//! `[run](command:...)`, `<img ...>`, `**x**` and `_x_` are not.

use crate::catalog::schema::is_safe_link;

/// Prose for a markdown paragraph or a line of one. Code spans the text opens and closes itself
/// (`` `pip install rich` ``) stay code spans; every other backtick is escaped. Line breaks become
/// spaces: the text stays inside the paragraph it is put in.
pub fn escape_markdown(text: &str) -> String {
    let text = one_line(text);
    let chars: Vec<char> = text.chars().collect();
    let underscores_pair = underscores_may_pair(&chars);
    // Where the text proper starts, and how many digits it starts with: for block markers.
    let first = chars.iter().position(|c| !c.is_whitespace()).unwrap_or(chars.len());
    let leading_digits = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '_' {
            // A whole run at once: escaped or not together.
            let end = i + chars[i..].iter().take_while(|&&c| c == '_').count();
            let inside_word =
                i > 0 && chars[i - 1].is_alphanumeric() && chars.get(end).is_some_and(|c| c.is_alphanumeric());
            for _ in i..end {
                out.push_str(if underscores_pair && !inside_word { "\\_" } else { "_" });
            }
            i = end;
            continue;
        }
        if c == '`' {
            let run = chars[i..].iter().take_while(|&&c| c == '`').count();
            match closing_run(&chars, i + run, run) {
                Some(close) => {
                    out.extend(&chars[i..close + run]);
                    i = close + run;
                }
                None => {
                    for _ in 0..run {
                        out.push_str("\\`");
                    }
                    i += run;
                }
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let at_start = i == first;
        let escape = match c {
            '\\' | '[' | ']' | '<' | '~' => true,
            // Emphasis: a `*` with spaces on both sides (`a * b`) can neither open nor close one.
            // A `_` only matters where one could open and a later one close (`__init__`, `_x_`):
            // `__shfl_down_sync` and `max_len` have none, and our own italics use `*`.
            '*' => !(prev.is_some_and(char::is_whitespace) && next.is_some_and(char::is_whitespace)),
            // What starts a block at the beginning of a line: headings, quotes, lists, rules.
            '#' | '>' | '-' | '+' | '=' | '|' => at_start,
            // `1. ` and `1) ` start a numbered list.
            '.' | ')' => i > 0 && i == leading_digits,
            // Bare URLs and e-mail addresses that renderers turn into links by themselves.
            ':' => chars[i + 1..].starts_with(&['/', '/']),
            '@' => prev.is_some_and(|p| p.is_alphanumeric() || "._-+".contains(p)),
            _ => false,
        };
        let www = c == '.' && i >= 3 && chars[i - 3..i].iter().collect::<String>().eq_ignore_ascii_case("www");
        if escape || www {
            out.push('\\');
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Whether some run of `_` that could open emphasis comes before one that could close it.
fn underscores_may_pair(chars: &[char]) -> bool {
    let mut opened = false;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '_' {
            i += 1;
            continue;
        }
        let end = i + chars[i..].iter().take_while(|&&c| c == '_').count();
        let before = i.checked_sub(1).map(|p| chars[p]);
        let after = chars.get(end).copied();
        let loose = |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || c.is_ascii_punctuation());
        if opened && before.is_some_and(|c| !c.is_whitespace()) && loose(after) {
            return true;
        }
        if after.is_some_and(|c| !c.is_whitespace()) && loose(before) {
            opened = true;
        }
        i = end;
    }
    false
}

/// The start of the next run of exactly `len` backticks at or after `from`.
fn closing_run(chars: &[char], from: usize, len: usize) -> Option<usize> {
    let mut i = from;
    while i < chars.len() {
        if chars[i] == '`' {
            let run = chars[i..].iter().take_while(|&&c| c == '`').count();
            if run == len {
                return Some(i);
            }
            i += run;
        } else {
            i += 1;
        }
    }
    None
}

fn one_line(text: &str) -> String {
    text.split(['\n', '\r']).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The longest run of backticks in `text`.
fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// `text` as an inline code span, fenced with more backticks than it holds in a row, so that
/// nothing in it can close the span early. Empty text gives nothing.
pub fn code(text: &str) -> String {
    let text = one_line(text);
    if text.is_empty() {
        return String::new();
    }
    let fence = "`".repeat(longest_backtick_run(&text) + 1);
    // A span that starts or ends with a backtick needs a space inside its fence; markdown strips
    // one space from each end, so a space at either end is padded too.
    let pad = if text.starts_with(['`', ' ']) || text.ends_with(['`', ' ']) { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// `text` as a fenced code block in `language`, fenced with more backticks than any line of it
/// could close it with. Ends with a line break.
pub fn code_block(language: &str, text: &str) -> String {
    let fence = "`".repeat((longest_backtick_run(text) + 1).max(3));
    format!("{fence}{language}\n{}\n{fence}\n", text.trim_end_matches(['\n', '\r']))
}

/// `[label](url)` when `url` is a plain https URL (see `schema::link_problem`), else `None`: no
/// other link reaches markdown. `label` is markdown already.
pub fn link(label: &str, url: &str) -> Option<String> {
    is_safe_link(url).then(|| format!("[{label}]({url})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_sentences_come_out_as_they_went_in() {
        for text in [
            "Decoupled decay that shrinks each weight by lr * weight_decay per step; default 0.01.",
            "Reads OPENAI_API_KEY and OPENAI_BASE_URL from the environment (keyword-only, required).",
            "Logs to Weights & Biases; needs `pip install rich` and replaces the default bar.",
            "Computes meta-parameters with a dict of name -> lambda(args), e.g. an EVEN_K flag.",
            "Element-wise sign: -1, 0 or 1; GPU | CPU; decorated with @triton.jit.",
        ] {
            assert_eq!(escape_markdown(text), text);
        }
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape_markdown("[run](command:workbench.action.terminal.new)"),
            "\\[run\\](command:workbench.action.terminal.new)"
        );
        assert_eq!(escape_markdown("![x](https://evil.example/p.png)"), "!\\[x\\](https\\://evil.example/p.png)");
        assert_eq!(escape_markdown("<img src=x onerror=alert(1)>"), "\\<img src=x onerror=alert(1)>");
        assert_eq!(escape_markdown("**bold** and _it_ and *em*"), "\\*\\*bold\\*\\* and \\_it\\_ and \\*em\\*");
        assert_eq!(escape_markdown("# Title"), "\\# Title");
        assert_eq!(escape_markdown("> quote"), "\\> quote");
        assert_eq!(escape_markdown("- item"), "\\- item");
        assert_eq!(escape_markdown("1. item"), "1\\. item");
        assert_eq!(
            escape_markdown("see www.evil.example or a@evil.example"),
            "see www\\.evil.example or a\\@evil.example"
        );
        assert_eq!(escape_markdown("a\\b"), "a\\\\b");
        assert_eq!(escape_markdown("line one\n# two"), "line one # two");
        assert_eq!(escape_markdown("~~gone~~"), "\\~\\~gone\\~\\~");
        assert_eq!(escape_markdown("torch.nn.Module.__init__"), "torch.nn.Module.\\_\\_init\\_\\_");
        // A `_` that nothing could pair with is left as it is.
        assert_eq!(escape_markdown("__shfl_down_sync"), "__shfl_down_sync");
        assert_eq!(escape_markdown("x._private and max_len"), "x._private and max_len");
    }

    #[test]
    fn long_hostile_text_takes_linear_time() {
        let started = std::time::Instant::now();
        for text in
            ["_".repeat(200_000), "#".repeat(200_000), format!("{}{}", "1".repeat(100_000), ".".repeat(100_000))]
        {
            assert!(escape_markdown(&text).len() >= text.len());
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn lone_backticks_cannot_open_a_span_that_reaches_our_markup() {
        assert_eq!(escape_markdown("a ` b"), "a \\` b");
        assert_eq!(escape_markdown("``x`"), "\\`\\`x\\`");
        // A span the text closes itself is code, and code holds no links.
        assert_eq!(escape_markdown("`[x](command:y)` ok"), "`[x](command:y)` ok");
    }

    #[test]
    fn code_spans_and_blocks_outlast_the_backticks_inside() {
        assert_eq!(code("torch.matmul"), "`torch.matmul`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`](command:x)"), "`` `](command:x) ``");
        assert_eq!(code(""), "");
        assert_eq!(code_block("python", "f(x)"), "```python\nf(x)\n```\n");
        assert_eq!(code_block("cpp", "a\n```\nb"), "````cpp\na\n```\nb\n````\n");
    }

    #[test]
    fn links_are_https_only() {
        assert_eq!(link("Docs", "https://pytorch.org").as_deref(), Some("[Docs](https://pytorch.org)"));
        for url in ["javascript:alert(1)", "command:workbench.action.terminal.new", "", "http://x.org"] {
            assert_eq!(link("Docs", url), None, "{url}");
        }
    }
}
