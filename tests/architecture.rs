//! The crate's layers, and the rule that imports between them point one way: down.
//!
//! Top to bottom, by path under `src/`:
//!
//! - server: `main.rs`, `lib.rs`, `server/**`; wires everything together, so may use anything.
//! - transports: `http/**` (with the `/ws` lobby), `realtime/**`; speak a wire protocol and call
//!   the service layer. They may use `service`, foundation and their own module, not each other
//!   (a transport that leans on another cannot be changed or removed alone), nor `domain`, `db`,
//!   `server`.
//! - service: `service/**`; may use `domain`, `db`, foundation.
//! - domain: `domain/**`; may use `db`, foundation.
//! - db: `db.rs` / `db/**`; may use foundation only.
//! - foundation: `config.rs`, `ids.rs`, `metrics.rs`; may use only foundation.
//!
//! Why a test: a layer that imports one above it can no longer be understood, tested or replaced
//! without that one, and nothing in the compiler stops it. Why read source text instead of asking
//! the compiler: this needs only std, runs in milliseconds and can be checked with plain `rustc`.
//! It understands just enough Rust to find every path into the crate root: comments, string, char
//! and raw string literals, `use` groups over several lines, `super::` chains and inline `mod`
//! blocks. Code under `#[cfg(test)]` counts like any other.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The tail of every violation line: the rule, so a failure explains itself.
const RULE: &str = "imports must point down (server -> transports -> service -> domain -> db; \
                    foundation from anywhere)";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Layer {
    Server,
    Transports,
    Service,
    Domain,
    Db,
    Foundation,
}

impl Layer {
    const ALL: [Layer; 6] = [
        Layer::Server,
        Layer::Transports,
        Layer::Service,
        Layer::Domain,
        Layer::Db,
        Layer::Foundation,
    ];

    fn name(self) -> &'static str {
        match self {
            Layer::Server => "server",
            Layer::Transports => "transports",
            Layer::Service => "service",
            Layer::Domain => "domain",
            Layer::Db => "db",
            Layer::Foundation => "foundation",
        }
    }

    /// Whether this layer may import a module of `target`'s layer (its own module always may be
    /// imported; see [`check`]). Transports skip past service to neither domain nor db, so that
    /// every request goes through the one place that enforces the rules of the domain.
    fn may_use(self, target: Layer) -> bool {
        use Layer::*;
        match self {
            Server => true,
            Transports => matches!(target, Service | Foundation),
            Service => matches!(target, Domain | Db | Foundation),
            Domain => matches!(target, Db | Foundation),
            Db | Foundation => target == Foundation,
        }
    }
}

/// Every top-level module of the crate and its layer. A new top-level module goes here, in the
/// layer whose rules it should live by; until it does, `every_source_file_belongs_to_a_layer`
/// fails, because a module in no layer would escape the check.
const MODULES: &[(&str, Layer)] = &[
    ("server", Layer::Server),
    ("http", Layer::Transports),
    ("realtime", Layer::Transports),
    ("webpush", Layer::Transports),
    ("mail", Layer::Transports),
    ("service", Layer::Service),
    ("domain", Layer::Domain),
    ("db", Layer::Db),
    ("config", Layer::Foundation),
    ("ids", Layer::Foundation),
    ("metrics", Layer::Foundation),
];

fn layer_of_module(module: &str) -> Option<Layer> {
    MODULES
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
}

/// A file of the crate, by its path from the crate root (`src/http/mod.rs`), with its text.
struct SourceFile {
    path: String,
    text: String,
}

/// Where a file sits in the module tree: its top-level module (none for the crate roots
/// `lib.rs` and `main.rs`) and how many modules deep it is, which is how many `super::` it
/// takes to reach the crate root from it.
struct Placement {
    top: Option<String>,
    depth: usize,
}

fn placement(path: &str) -> Placement {
    let relative = path.strip_prefix("src/").unwrap_or(path);
    let parts: Vec<&str> = relative.split('/').collect();
    if parts == ["lib.rs"] || parts == ["main.rs"] {
        return Placement {
            top: None,
            depth: 0,
        };
    }
    let first = parts.first().copied().unwrap_or_default();
    let top = first.strip_suffix(".rs").unwrap_or(first).to_string();
    let depth = if parts.last() == Some(&"mod.rs") {
        parts.len() - 1
    } else {
        parts.len()
    };
    Placement {
        top: Some(top),
        depth,
    }
}

/// The layer a file belongs to, or `None` when its top-level module is in no layer.
fn layer_of_file(path: &str) -> Option<Layer> {
    match placement(path).top {
        None => Some(Layer::Server),
        Some(top) => layer_of_module(&top),
    }
}

// ---------------------------------------------------------------------------------------------
// Lexing: just enough to tell code from comments and literals, and to keep line numbers right.

#[derive(Debug, PartialEq)]
enum Tok {
    /// An identifier, keyword or number.
    Word(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// The code tokens of a Rust source text, each with its line; comments and string and char
/// literals are dropped, so that prose mentioning `crate::domain` is not taken for an import.
fn tokens(source: &str) -> Vec<(usize, Tok)> {
    let c: Vec<char> = source.chars().collect();
    let at = |j: usize| c.get(j).copied();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == Some('/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(&c, i + 1, None, &mut line);
        } else if ch == '\'' {
            if at(i + 1) == Some('\\') {
                // An escaped char literal: '\n', '\'', '\u{2014}'.
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == Some('\'') {
                // A plain char literal: 'x', '"'.
                line += usize::from(at(i + 1) == Some('\n'));
                i += 3;
            } else {
                // A lifetime or a loop label.
                i += 1;
            }
        } else if ch == ':' && at(i + 1) == Some(':') {
            out.push((line, Tok::PathSep));
            i += 2;
        } else if ch == '_' || ch.is_alphanumeric() {
            let start = i;
            while i < c.len() && (c[i] == '_' || c[i].is_alphanumeric()) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            if matches!(word.as_str(), "r" | "br" | "cr") {
                let mut hashes = 0;
                while at(i + hashes) == Some('#') {
                    hashes += 1;
                }
                if at(i + hashes) == Some('"') {
                    i = skip_string(&c, i + hashes + 1, Some(hashes), &mut line);
                    continue;
                }
            }
            // The `b` of b"..." and b'x' is left as a harmless word; the literal follows.
            out.push((line, Tok::Word(word)));
        } else {
            out.push((line, Tok::Punct(ch)));
            i += 1;
        }
    }
    out
}

/// Skips a string literal whose opening quote precedes `i`: an ordinary one with backslash
/// escapes, or a raw one closed by a quote and `raw_hashes` hashes. Returns the index past it.
fn skip_string(c: &[char], mut i: usize, raw_hashes: Option<usize>, line: &mut usize) -> usize {
    while i < c.len() {
        match (c[i], raw_hashes) {
            ('\\', None) => {
                *line += usize::from(c.get(i + 1) == Some(&'\n'));
                i += 2;
            }
            ('"', None) => return i + 1,
            ('"', Some(n)) if (1..=n).all(|k| c.get(i + k) == Some(&'#')) => return i + 1 + n,
            (other, _) => {
                *line += usize::from(other == '\n');
                i += 1;
            }
        }
    }
    i
}

// ---------------------------------------------------------------------------------------------
// Finding the paths into the crate root.

/// The top-level modules a source text names through the crate root, with the line of each
/// name: `crate::M` anywhere (in `use` items, groups such as `use crate::{a::x, b}` over any
/// number of lines, or inline paths), and `super::` chains long enough to climb out of the
/// file's top-level module into the root. `depth` is the file's [`Placement::depth`].
fn crate_uses(source: &str, depth: usize) -> BTreeSet<(usize, String)> {
    let toks = tokens(source);
    let word = |j: usize| match toks.get(j) {
        Some((_, Tok::Word(w))) => Some(w.as_str()),
        _ => None,
    };
    let is_sep = |j: usize| matches!(toks.get(j), Some((_, Tok::PathSep)));
    let mut uses = BTreeSet::new();
    // One entry per open brace: whether it opened an inline `mod name { ... }`, which adds a
    // level that `super::` has to climb.
    let mut braces: Vec<bool> = Vec::new();
    for i in 0..toks.len() {
        let after_sep = i > 0 && is_sep(i - 1);
        match &toks[i].1 {
            Tok::Punct('{') => {
                braces.push(i >= 2 && word(i - 2) == Some("mod") && word(i - 1).is_some());
            }
            Tok::Punct('}') => {
                braces.pop();
            }
            Tok::Word(w) if w == "crate" && is_sep(i + 1) && !after_sep => {
                root_names(&toks, i + 2, &mut uses);
            }
            Tok::Word(w) if w == "super" && (!after_sep || starts_with_self(&toks, i)) => {
                let mut climbs = 0;
                let mut j = i;
                while word(j) == Some("super") && is_sep(j + 1) {
                    climbs += 1;
                    j += 2;
                }
                let levels = depth + braces.iter().filter(|opened_mod| **opened_mod).count();
                if climbs == levels {
                    root_names(&toks, j, &mut uses);
                }
            }
            _ => {}
        }
    }
    uses
}

/// Whether the `super` at `i` is the second segment of a path starting `self::super`.
fn starts_with_self(toks: &[(usize, Tok)], i: usize) -> bool {
    i >= 2
        && matches!(&toks[i - 2].1, Tok::Word(w) if w == "self")
        && !(i >= 3 && toks[i - 3].1 == Tok::PathSep)
}

/// Records the names a path takes from the crate root at token `j`: one name, or the first
/// name of each element of a `{ ... }` group.
fn root_names(toks: &[(usize, Tok)], j: usize, uses: &mut BTreeSet<(usize, String)>) {
    let mut record = |line: usize, name: &str| {
        if !matches!(name, "self" | "super" | "crate") {
            uses.insert((line, name.to_string()));
        }
    };
    match toks.get(j) {
        Some((line, Tok::Word(name))) => record(*line, name),
        Some((_, Tok::Punct('{'))) => {
            let mut depth = 0usize;
            let mut element_start = false;
            for (line, tok) in &toks[j..] {
                match tok {
                    Tok::Punct('{') => {
                        depth += 1;
                        if depth == 1 {
                            element_start = true;
                            continue;
                        }
                    }
                    Tok::Punct('}') => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            break;
                        }
                    }
                    Tok::Punct(',') if depth == 1 => {
                        element_start = true;
                        continue;
                    }
                    Tok::Word(name) if depth == 1 && element_start => record(*line, name),
                    _ => {}
                }
                element_start = false;
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The check.

/// What a scan of the crate's files found.
struct Report {
    /// One line per file whose top-level module is in no layer.
    unplaced: Vec<String>,
    /// One line per import that points up or across, in the form of [`RULE`].
    violations: Vec<String>,
    /// How many paths into the crate root were found in each layer's files.
    uses_per_layer: BTreeMap<Layer, usize>,
}

fn check(files: &[SourceFile]) -> Report {
    let mut files: Vec<&SourceFile> = files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    // Top-level modules: those with a file, and those the crate roots declare (mid-refactor the
    // two can differ), so that a module in no layer is never mistaken for a root item.
    let mut present: BTreeSet<String> = files
        .iter()
        .filter_map(|f| placement(&f.path).top)
        .collect();
    for root in files.iter().filter(|f| placement(&f.path).top.is_none()) {
        present.extend(declared_modules(&root.text));
    }
    let mut report = Report {
        unplaced: Vec::new(),
        violations: Vec::new(),
        uses_per_layer: BTreeMap::new(),
    };
    for file in files {
        let Placement { top, depth } = placement(&file.path);
        let Some(layer) = layer_of_file(&file.path) else {
            report.unplaced.push(format!(
                "{}: top-level module `{}` belongs to no layer; place it in a layer in \
                 tests/architecture.rs (MODULES)",
                file.path,
                top.unwrap_or_default(),
            ));
            continue;
        };
        let uses = crate_uses(&file.text, depth);
        *report.uses_per_layer.entry(layer).or_default() += uses.len();
        for (line, module) in uses {
            if top.as_deref() == Some(module.as_str()) {
                continue;
            }
            // A name that is no top-level module is an item of the crate root (a re-export in
            // lib.rs, say), which is the server layer's: import it from where it is defined.
            let target = match layer_of_module(&module) {
                Some(target) => Some(target),
                None if present.contains(&module) => None,
                None => Some(Layer::Server),
            };
            if target.is_some_and(|target| layer.may_use(target)) {
                continue;
            }
            let target = target.map_or("no layer", Layer::name);
            report.violations.push(format!(
                "{}:{line}: {} uses crate::{module} ({target}): {RULE}",
                file.path,
                layer.name(),
            ));
        }
    }
    report
}

/// The modules a crate root declares at its top level: `mod name;` or `mod name { ... }`.
fn declared_modules(source: &str) -> Vec<String> {
    let toks = tokens(source);
    let mut depth = 0usize;
    let mut names = Vec::new();
    for (i, (_, tok)) in toks.iter().enumerate() {
        match tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => depth = depth.saturating_sub(1),
            Tok::Word(w) if w == "mod" && depth == 0 => {
                if let Some((_, Tok::Word(name))) = toks.get(i + 1) {
                    names.push(name.clone());
                }
            }
            _ => {}
        }
    }
    names
}

/// Every `.rs` file under the crate's `src/`, with paths like `src/http/mod.rs`. Cargo runs the
/// test from the crate root and sets CARGO_MANIFEST_DIR; plain `rustc` builds fall back to the
/// working directory.
fn crate_sources() -> Vec<SourceFile> {
    let root = Path::new(option_env!("CARGO_MANIFEST_DIR").unwrap_or("."));
    let mut files = Vec::new();
    let mut pending = vec![root.join("src")];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("listing src/").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                let relative = path
                    .strip_prefix(root)
                    .expect("a path under the crate root");
                let parts: Vec<String> = relative
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy().into_owned())
                    .collect();
                files.push(SourceFile {
                    path: parts.join("/"),
                    text,
                });
            }
        }
    }
    assert!(
        !files.is_empty(),
        "found no .rs files under {}",
        root.join("src").display()
    );
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// A module in no layer would be exempt from every rule below; adding one must be a decision.
#[test]
fn every_source_file_belongs_to_a_layer() {
    let report = check(&crate_sources());
    assert!(
        report.unplaced.is_empty(),
        "{} file(s) under src/ belong to no layer:\n{}\n",
        report.unplaced.len(),
        report.unplaced.join("\n"),
    );
}

/// The rule itself: each layer imports only from the layers it may use, so that lower layers
/// stay usable, testable and replaceable without the ones above them.
#[test]
fn no_layer_imports_a_layer_above_it() {
    let report = check(&crate_sources());
    assert!(
        report.violations.is_empty(),
        "{} import(s) point up or across layers:\n{}\n",
        report.violations.len(),
        report.violations.join("\n"),
    );
}

/// A checker that finds nothing passes every time; this shows it finds what is planted, in
/// every form the rules name, and does not mistake comments or literals for code.
#[test]
fn the_checker_finds_planted_violations_and_ignores_comments_and_strings() {
    let file = |path: &str, text: &str| SourceFile {
        path: path.into(),
        text: text.into(),
    };
    let files = [
        file(
            "src/http/mod.rs",
            r#"//! Routes: handlers reach crate::service, never crate::domain.
use crate::{
    ids,
    domain::accounts,
    service::App,
};
use super::service::Session;
use crate::http::error::ApiError;
fn f() { super::realtime::notify(); }
"#,
        ),
        file(
            "src/http/threads.rs",
            r#"use super::error::ApiResult;
use super::super::service::App;
fn f() {
    super::super::domain::messaging::send();
}
"#,
        ),
        file(
            "src/db/mod.rs",
            r##"//! Storage; knows nothing of crate::domain.
/// Unlike crate::service, this never calls up.
use crate::config::Config;
/* crate::http /* nested */ crate::server */
pub const HELP: &str = "see crate::domain::accounts";
pub const RAW: &str = r#"crate::service "quoted" crate::domain"#;
pub const BYTES: &[u8] = b"crate::lobby";
pub fn quote(c: char) -> bool { c == '"' || c == '\'' } // crate::lobby
pub fn first<'a>(s: &'a str) -> &'a str { s }
pub fn after_literals() { crate::domain::accounts::find(); }
#[cfg(test)]
mod tests {
    use super::*;
    fn f() { super::super::service::go(); }
}
"##,
        ),
        file(
            "src/realtime/connect.rs",
            "use crate::realtime::events;\nuse crate::http::extract::ClientAddr;\n\
             use crate::app::App;\nuse crate::Server;\nuse crate::metrics::Metrics;\n\
             use crate::auth::Principal;\n",
        ),
        file("src/app.rs", "use crate::db::Database;\n"),
        file(
            "src/lib.rs",
            "pub mod app;\npub mod auth;\nuse crate::http::router;\n",
        ),
    ];
    let report = check(&files);

    let expected = [
        "src/db/mod.rs:10: db uses crate::domain (domain)",
        "src/db/mod.rs:14: db uses crate::service (service)",
        "src/http/mod.rs:4: transports uses crate::domain (domain)",
        "src/http/mod.rs:9: transports uses crate::realtime (transports)",
        "src/http/threads.rs:4: transports uses crate::domain (domain)",
        "src/realtime/connect.rs:2: transports uses crate::http (transports)",
        "src/realtime/connect.rs:3: transports uses crate::app (no layer)",
        "src/realtime/connect.rs:4: transports uses crate::Server (server)",
        "src/realtime/connect.rs:6: transports uses crate::auth (no layer)",
    ]
    .map(|v| format!("{v}: {RULE}"));
    assert_eq!(
        report.violations, expected,
        "violations found in the planted examples"
    );
    assert_eq!(
        report.unplaced,
        [
            "src/app.rs: top-level module `app` belongs to no layer; place it in a layer in \
          tests/architecture.rs (MODULES)"
        ],
    );
    // db: crate::config, crate::domain, super::super::service; nothing from comments or literals.
    assert_eq!(report.uses_per_layer.get(&Layer::Db), Some(&3));
    assert_eq!(report.uses_per_layer.get(&Layer::Server), Some(&1));
}

/// A scanner broken in a way that sees no imports at all would pass the rule vacuously. So every
/// layer with a file showing a plain `use crate::` line must have had imports found in it.
/// (Layers whose files show none, such as foundation, which may well import nothing, are
/// exempt: requiring imports of them would fail on a correct tree.)
#[test]
fn the_scan_sees_imports_in_every_layer_that_has_them() {
    let files = crate_sources();
    let report = check(&files);
    let mut blind = Vec::new();
    for layer in Layer::ALL {
        let evidence = files
            .iter()
            .filter(|f| layer_of_file(&f.path) == Some(layer))
            .flat_map(|f| {
                f.text
                    .lines()
                    .enumerate()
                    .map(move |(n, line)| (f, n + 1, line.trim()))
            })
            .find(|(_, _, line)| {
                ["use crate::", "pub use crate::", "pub(crate) use crate::"]
                    .iter()
                    .any(|start| line.starts_with(start))
            });
        let found = report.uses_per_layer.get(&layer).copied().unwrap_or(0);
        if let Some((file, n, line)) = evidence
            && found == 0
        {
            blind.push(format!(
                "{}: found no crate:: imports, yet {}:{n} reads `{line}`",
                layer.name(),
                file.path,
            ));
        }
    }
    assert!(
        blind.is_empty(),
        "the import scanner is blind (fix it in tests/architecture.rs):\n{}\n",
        blind.join("\n"),
    );
}
