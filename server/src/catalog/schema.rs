//! The catalog's file format (see catalog/README.md) and its validation rules.
//!
//! Shared with `server/build.rs` through `#[path]`, so it depends on serde only: no LSP, no IO.
//! Keep every struct free of `skip_serializing_if`: the embedded index is postcard, which is not
//! self-describing and needs every field written.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Text that borrows from the embedded index at run time and is owned when read from TOML.
pub type Text<'a> = Cow<'a, str>;

pub const GROUPS: &[&str] =
    &["research", "production", "low-level", "edge", "usability", "cloud", "compilers", "ecosystem"];
pub const KINDS: &[&str] = &[
    "module",
    "function",
    "class",
    "method",
    "attribute",
    "constant",
    "decorator",
    "type",
    "enum",
    "macro",
    "qualifier",
    "builtin",
    "namespace",
    "header",
];
pub const LANGUAGES: &[&str] = &["python", "cuda", "cpp"];

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile<'a> {
    #[serde(borrow)]
    pub system: System<'a>,
    #[serde(default, borrow)]
    pub symbols: Vec<Symbol<'a>>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct System<'a> {
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(borrow)]
    pub group: Text<'a>,
    #[serde(borrow)]
    pub maintainer: Text<'a>,
    #[serde(borrow)]
    pub summary: Text<'a>,
    #[serde(default, borrow)]
    pub about: Option<Text<'a>>,
    #[serde(borrow)]
    pub docs: Text<'a>,
    #[serde(default, borrow)]
    pub guide: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub languages: Vec<Text<'a>>,
    #[serde(default, borrow)]
    pub python_modules: Vec<Text<'a>>,
    #[serde(default, borrow)]
    pub c_prefixes: Vec<Text<'a>>,
    #[serde(default, borrow)]
    pub headers: Vec<Text<'a>>,
    #[serde(default, borrow)]
    pub namespaces: Vec<Text<'a>>,
    /// Other web domains its official documentation lives on, besides those of `docs` and `guide`
    /// (e.g. XLA's Python API is documented on jax.dev).
    #[serde(default, borrow)]
    pub domains: Vec<Text<'a>>,
    #[serde(default, borrow)]
    pub part_of: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub related: Vec<Related<'a>>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Related<'a> {
    #[serde(borrow)]
    pub system: Text<'a>,
    #[serde(borrow)]
    pub how: Text<'a>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Symbol<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(borrow)]
    pub kind: Text<'a>,
    #[serde(default, borrow)]
    pub signature: Option<Text<'a>>,
    /// Our own words; empty for harvested facts that nobody has described yet.
    #[serde(default, borrow)]
    pub summary: Text<'a>,
    #[serde(borrow)]
    pub docs: Text<'a>,
    #[serde(default, borrow)]
    pub aliases: Vec<Text<'a>>,
    #[serde(default, borrow)]
    pub equivalents: Vec<Text<'a>>,
    #[serde(default, borrow)]
    pub deprecated: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub replacement: Option<Text<'a>>,
    /// How uses of a deprecated symbol are rewritten, reviewed against the replacement's real
    /// signature; `None` (not reviewed) offers no automatic fix.
    #[serde(default, borrow)]
    pub fix: Option<Fix<'a>>,
    /// What a call gives: a qualified type (`torch.Tensor`) for Python, or the status type a C
    /// function returns (`cudaError_t`, whose dropped value gets a diagnostic). For Python
    /// attributes and properties: the attribute's type.
    #[serde(default, borrow)]
    pub returns: Option<Text<'a>>,
    /// Classes: their qualified base classes, nearest first, for member lookup through inheritance.
    #[serde(default, borrow)]
    pub bases: Vec<Text<'a>>,
    /// Parameters, for keyword-argument hovers and signature help. Harvested facts give names,
    /// annotations and defaults; curated entries may add our own words for the most used ones.
    #[serde(default, borrow)]
    pub params: Vec<Param<'a>>,
    /// Where a harvested fact came from: package and version (`torch 2.15.0`). `None` when curated.
    #[serde(default, borrow)]
    pub source: Option<Text<'a>>,
}

impl Symbol<'_> {
    /// A copy that borrows every text from `self`.
    pub fn reborrow(&self) -> Symbol<'_> {
        fn b<'s>(t: &'s Text<'_>) -> Text<'s> {
            Cow::Borrowed(t)
        }
        Symbol {
            name: b(&self.name),
            kind: b(&self.kind),
            signature: self.signature.as_ref().map(b),
            summary: b(&self.summary),
            docs: b(&self.docs),
            aliases: self.aliases.iter().map(b).collect(),
            equivalents: self.equivalents.iter().map(b).collect(),
            deprecated: self.deprecated.as_ref().map(b),
            replacement: self.replacement.as_ref().map(b),
            fix: self.fix.as_ref().map(Fix::reborrow),
            returns: self.returns.as_ref().map(b),
            bases: self.bases.iter().map(b).collect(),
            params: self.params.iter().map(Param::reborrow).collect(),
            source: self.source.as_ref().map(b),
        }
    }

    /// Whether a call returns a C status code that callers should check. Python return types are
    /// always qualified (`torch.Tensor`); a C status type never has a dot.
    pub fn returns_status(&self) -> bool {
        self.returns.as_deref().is_some_and(|r| !r.contains('.'))
    }

    /// Whether our own words describe it (not only harvested facts).
    pub fn is_curated(&self) -> bool {
        !self.summary.is_empty()
    }
}

pub const FIX_KINDS: &[&str] = &["rename", "template", "none"];

/// How the uses of a deprecated symbol become uses of its replacement (catalog/README.md, "fix").
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Fix<'a> {
    /// `rename`: the replacement's name in place of the old one, for every use (signature and
    /// meaning are the same). `template`: calls are rewritten by `template`. `none`: no rewrite keeps
    /// the meaning, so there is only a message.
    #[serde(borrow)]
    pub kind: Text<'a>,
    /// `template`: the new code for a call, over its arguments (see `ide::fixes`).
    #[serde(default, borrow)]
    pub template: Option<Text<'a>>,
    /// `template`: the deprecated callable's parameters in order; they bind the call's positional
    /// and keyword arguments to the names the template uses.
    #[serde(default, borrow)]
    pub params: Vec<Text<'a>>,
    /// The rewrite keeps the meaning of every call it applies to; only then is it preferred.
    #[serde(default)]
    pub safe: bool,
    /// What to change by hand, for the calls (or the kind `none`) that get no automatic fix.
    #[serde(default, borrow)]
    pub note: Option<Text<'a>>,
}

impl Fix<'_> {
    pub fn reborrow(&self) -> Fix<'_> {
        Fix {
            kind: Cow::Borrowed(&self.kind),
            template: self.template.as_deref().map(Cow::Borrowed),
            params: self.params.iter().map(|p| Cow::Borrowed(p.as_ref())).collect(),
            safe: self.safe,
            note: self.note.as_deref().map(Cow::Borrowed),
        }
    }
}

/// What is wrong with a fix, checked without the rest of the catalog.
pub fn fix_problems(sym: &Symbol<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(fix) = &sym.fix else { return problems };
    if sym.deprecated.is_none() {
        problems.push("fix without deprecated".to_string());
    }
    if !FIX_KINDS.contains(&fix.kind.as_ref()) {
        problems.push(format!("fix kind {:?} is not one of {FIX_KINDS:?}", fix.kind));
    }
    match (fix.kind.as_ref(), &fix.template) {
        ("template", None) => problems.push("a template fix without template".to_string()),
        ("template", Some(template)) => {
            if let Err(problem) = check_template(template, &fix.params) {
                problems.push(format!("fix template {template:?}: {problem}"));
            }
        }
        (_, Some(_)) => problems.push(format!("a {} fix with a template", fix.kind)),
        _ => {}
    }
    if fix.kind == "rename" && sym.replacement.is_none() {
        problems.push("a rename fix without replacement".to_string());
    }
    if fix.kind != "template" && !fix.params.is_empty() {
        problems.push(format!("a {} fix with params", fix.kind));
    }
    if fix.kind == "none" && fix.safe {
        problems.push("a none fix marked safe".to_string());
    }
    problems
}

/// One piece of a fix template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece<'t> {
    /// Code written as is.
    Text(&'t str),
    /// `` `torch.amp.autocast` ``: a catalog name, written the way the file reaches it.
    Name(&'t str),
    /// `{dtype}`, `{dtype?}`, `{eps|1e-06}`: the argument bound to a parameter.
    Arg { param: &'t str, absent: Absent<'t> },
    /// `{**}`: every bound argument no other piece uses, as `name=value`.
    Rest,
}

/// What a template argument does when the call does not pass it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Absent<'t> {
    /// `{x}`: the rewrite needs it; without it the call gets no fix.
    Required,
    /// `{x?}`: the template argument it sits in is left out.
    Omit,
    /// `{x|1e-06}`: this text instead (the old default, where the new one differs).
    Default(&'t str),
}

/// Splits a template into its pieces, with each piece's byte range in the template.
pub fn template_pieces(template: &str) -> Result<Vec<(std::ops::Range<usize>, Piece<'_>)>, String> {
    let mut pieces = Vec::new();
    let mut text_start = 0;
    let mut idx = 0;
    let bytes = template.as_bytes();
    while idx < bytes.len() {
        let (open, close) = match bytes[idx] {
            b'`' => (b'`', b'`'),
            b'{' => (b'{', b'}'),
            _ => {
                idx += 1;
                continue;
            }
        };
        let Some(len) = template[idx + 1..].find(close as char) else {
            return Err(format!("an unclosed {}", open as char));
        };
        let inner = &template[idx + 1..idx + 1 + len];
        let end = idx + len + 2;
        let piece = if open == b'`' {
            let plain = !inner.is_empty()
                && inner
                    .split("::")
                    .flat_map(|p| p.split('.'))
                    .all(|seg| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            if !plain {
                return Err(format!("`{inner}` is not a qualified name"));
            }
            Piece::Name(inner)
        } else if inner == "**" {
            Piece::Rest
        } else {
            let (param, absent) = if let Some(param) = inner.strip_suffix('?') {
                (param, Absent::Omit)
            } else if let Some((param, default)) = inner.split_once('|') {
                (param, Absent::Default(default))
            } else {
                (inner, Absent::Required)
            };
            let identifier = !param.is_empty()
                && !param.starts_with(|c: char| c.is_ascii_digit())
                && param.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !identifier {
                return Err(format!("{{{inner}}} does not name a parameter"));
            }
            Piece::Arg { param, absent }
        };
        if text_start < idx {
            pieces.push((text_start..idx, Piece::Text(&template[text_start..idx])));
        }
        pieces.push((idx..end, piece));
        idx = end;
        text_start = end;
    }
    if text_start < template.len() {
        pieces.push((text_start..template.len(), Piece::Text(&template[text_start..])));
    }
    Ok(pieces)
}

/// A template is well formed and names only parameters in `params`, each at most once.
pub fn check_template(template: &str, params: &[Text<'_>]) -> Result<(), String> {
    let pieces = template_pieces(template)?;
    let mut used: Vec<&str> = Vec::new();
    for (_, piece) in &pieces {
        if let Piece::Arg { param, .. } = piece {
            if !params.iter().any(|p| p == param) {
                return Err(format!("{{{param}}} is not one of the params {params:?}"));
            }
            if used.contains(param) {
                return Err(format!("{{{param}}} is used twice"));
            }
            used.push(param);
        }
    }
    if !pieces.iter().any(|(_, p)| matches!(p, Piece::Name(_))) {
        return Err("it names no replacement (a `qualified.name`)".to_string());
    }
    for (idx, param) in params.iter().enumerate() {
        if params[..idx].contains(param) {
            return Err(format!("param {param:?} is listed twice"));
        }
    }
    Ok(())
}

/// One parameter of a function, method or class constructor.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Param<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
    /// As written in the package (`float | Tensor`), when it says.
    #[serde(default, borrow)]
    pub annotation: Option<Text<'a>>,
    /// As written in the package (`1e-3`); `None` when the parameter is required.
    #[serde(default, borrow)]
    pub default: Option<Text<'a>>,
    /// Our own words; empty when nobody has described it yet.
    #[serde(default, borrow)]
    pub summary: Text<'a>,
}

impl Param<'_> {
    pub fn reborrow(&self) -> Param<'_> {
        Param {
            name: Cow::Borrowed(&self.name),
            annotation: self.annotation.as_deref().map(Cow::Borrowed),
            default: self.default.as_deref().map(Cow::Borrowed),
            summary: Cow::Borrowed(&self.summary),
        }
    }
}

/// Why `url` may not be a link target, or `None` when it may: only `https://` URLs with a plain
/// host (letters, digits, dots, dashes, an optional port; no user name) and printable ASCII that
/// needs no escaping in markdown. Everything the catalog links to passes here: `javascript:`,
/// `command:` (VS Code runs commands from trusted markdown links), `file:`, `data:` and plain
/// `http:` never do, and neither does anything that could end a markdown link early.
pub fn link_problem(url: &str) -> Option<&'static str> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Some("is not an https URL");
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return Some("has a host that is not a plain domain name"),
        None => authority,
    };
    let plain_host = !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !host.starts_with(['.', '-']);
    if !plain_host {
        return Some("has a host that is not a plain domain name");
    }
    let unsafe_byte = |b: u8| !(0x21..0x7f).contains(&b) || b"\"'<>\\^`{|}()[]".contains(&b);
    if path.bytes().any(unsafe_byte) {
        return Some(
            "holds a space, a non-ASCII character or one of \" ' < > \\ ^ ` { | } ( ) [ ] (percent-encode it)",
        );
    }
    None
}

/// Whether `url` may be a link target (see `link_problem`).
pub fn is_safe_link(url: &str) -> bool {
    link_problem(url).is_none()
}

/// The registrable part of a URL's host (`docs.nvidia.com` -> `nvidia.com`), for domain checks.
pub fn url_domain(url: &str) -> Option<&str> {
    let host = url.strip_prefix("https://")?.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let mut dots = host.rmatch_indices('.');
    dots.next()?;
    Some(match dots.next() {
        Some((idx, _)) => &host[idx + 1..],
        None => host,
    })
}

/// The domains a system's documentation may link to.
pub fn official_domains<'s>(system: &'s System<'_>) -> Vec<&'s str> {
    std::iter::once(system.docs.as_ref())
        .chain(system.guide.as_deref())
        .filter_map(url_domain)
        .chain(system.domains.iter().map(|d| d.as_ref()))
        .collect()
}

/// Checks one file on its own: fields, values, links. `stem` is the file name without `.toml`.
pub fn check_file(stem: &str, file: &CatalogFile<'_>) -> Vec<String> {
    let mut problems = check_fields(stem, file);
    for (label, url) in links(file) {
        if let Some(problem) = link_problem(url) {
            problems.push(format!("{label} {url:?} {problem}"));
        }
    }
    problems
}

/// Every link a file gives, with the words that name it in a problem.
fn links<'f>(file: &'f CatalogFile<'_>) -> impl Iterator<Item = (String, &'f str)> + 'f {
    let sys = &file.system;
    let system = std::iter::once(("system.docs".to_string(), sys.docs.as_ref()))
        .chain(sys.guide.as_deref().map(|guide| ("system.guide".to_string(), guide)));
    system.chain(file.symbols.iter().map(|sym| (format!("symbol {:?}: docs", sym.name), sym.docs.as_ref())))
}

/// Takes out every link that `link_problem` refuses (a symbol's `docs` becomes empty, a guide
/// `None`), so that no feature can show it, and says which ones went. For user files, whose other
/// entries stay usable without the link.
pub fn refuse_unsafe_links(file: &mut CatalogFile<'_>) -> Vec<String> {
    let mut problems: Vec<String> = links(file)
        .filter_map(|(label, url)| link_problem(url).map(|p| format!("{label} {url:?} {p}; the link is left out")))
        .collect();
    problems.dedup();
    let sys = &mut file.system;
    if !is_safe_link(&sys.docs) {
        sys.docs = Cow::Borrowed("");
    }
    if sys.guide.as_deref().is_some_and(|g| !is_safe_link(g)) {
        sys.guide = None;
    }
    for sym in &mut file.symbols {
        if !is_safe_link(&sym.docs) {
            sym.docs = Cow::Borrowed("");
        }
    }
    problems
}

/// Checks one file's fields and values, links aside.
pub fn check_fields(stem: &str, file: &CatalogFile<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let sys = &file.system;
    if sys.id != stem {
        problems.push(format!("system.id {:?} differs from the file name {stem:?}", sys.id));
    }
    for (field, value) in [("name", &sys.name), ("maintainer", &sys.maintainer), ("summary", &sys.summary)] {
        if value.trim().is_empty() {
            problems.push(format!("system.{field} is empty"));
        }
    }
    if !GROUPS.contains(&sys.group.as_ref()) {
        problems.push(format!("system.group {:?} is not one of {GROUPS:?}", sys.group));
    }
    for lang in &sys.languages {
        if !LANGUAGES.contains(&lang.as_ref()) {
            problems.push(format!("language {lang:?} is not one of {LANGUAGES:?}"));
        }
    }
    if sys.summary.contains('\n') {
        problems.push("system.summary spans several lines".to_string());
    }
    for sym in &file.symbols {
        let label = format!("symbol {:?}", sym.name);
        if sym.name.trim().is_empty() {
            problems.push("a symbol has an empty name".to_string());
        }
        if !KINDS.contains(&sym.kind.as_ref()) {
            problems.push(format!("{label}: kind {:?} is not one of {KINDS:?}", sym.kind));
        }
        if sym.summary.trim().is_empty() {
            problems.push(format!("{label}: summary is empty"));
        }
        if sym.summary.contains('\n') {
            problems.push(format!("{label}: summary spans several lines"));
        }
        for param in &sym.params {
            if param.name.trim().is_empty() {
                problems.push(format!("{label}: a parameter has an empty name"));
            }
            if param.summary.contains('\n') {
                problems.push(format!("{label}: the summary of parameter {:?} spans several lines", param.name));
            }
        }
        if sym.replacement.is_some() && sym.deprecated.is_none() {
            problems.push(format!("{label}: replacement without deprecated"));
        }
        for problem in fix_problems(sym) {
            problems.push(format!("{label}: {problem}"));
        }
    }
    problems
}

/// Checks what spans files: unique ids and names, and that every cross-reference resolves, to a
/// name or system in `files` or one `known_elsewhere` accepts (harvested facts, the built-in
/// catalog and its systems).
/// Returns `(file stem, problem)` pairs.
pub fn check_catalog(files: &[CatalogFile<'_>], known_elsewhere: &dyn Fn(&str) -> bool) -> Vec<(String, String)> {
    use std::collections::HashMap;
    let mut problems = Vec::new();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut names: HashMap<&str, &str> = HashMap::new();
    for file in files {
        let id = file.system.id.as_ref();
        if ids.insert(id, 0).is_some() {
            problems.push((id.to_string(), format!("system id {id:?} is defined twice")));
        }
        for sym in &file.symbols {
            for name in std::iter::once(&sym.name).chain(&sym.aliases) {
                if let Some(prev) = names.insert(name.as_ref(), id) {
                    problems.push((id.to_string(), format!("name {name:?} is already defined in {prev}.toml")));
                }
            }
        }
    }
    for file in files {
        let id = file.system.id.as_ref();
        if let Some(parent) = &file.system.part_of {
            if !ids.contains_key(parent.as_ref()) && !known_elsewhere(parent) {
                problems.push((id.to_string(), format!("part_of {parent:?} is not a system")));
            }
        }
        for rel in &file.system.related {
            if !ids.contains_key(rel.system.as_ref()) && !known_elsewhere(&rel.system) {
                problems.push((id.to_string(), format!("related system {:?} is not a system", rel.system)));
            }
        }
        for sym in &file.symbols {
            for target in sym.equivalents.iter().chain(&sym.replacement) {
                if !names.contains_key(target.as_ref()) && !known_elsewhere(target) {
                    problems.push((
                        id.to_string(),
                        format!("symbol {:?} refers to {target:?}, which is not in the catalog", sym.name),
                    ));
                }
            }
        }
    }
    problems
}
