//! The top-level modules of every workspace crate form a DAG (issue 13: front doors → use cases →
//! core/store/audit/mail/limits, arrows only pointing down).
//!
//! A text scan, not a parser: comments, strings and char literals are blanked out, then every
//! `crate::<name>` path (plain, `$crate::` in macros, and `crate::{a, b::c}` groups) in
//! `src/<top>.rs` or `src/<top>/**.rs` is an edge `<top> → <name>`. A name the crate root
//! re-exports (`pub use users::User;` in lib.rs) counts as the module it comes from. `super::`
//! paths are not followed: they stay inside a top-level module unless chained past it, which the
//! crates do not do. The crate root (lib.rs, main.rs) is the hub every module hangs from and is not
//! a node.
//!
//! Run `cargo test -p carrel-server --test module_graph -- --nocapture` to print each crate's graph.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Imports that still close a cycle, each with why it is left: (crate, from, to, reason). The
/// test fails when any other import closes a cycle, and when one of these no longer does (then
/// delete its line), so this list only shrinks.
const KNOWN: &[(&str, &str, &str, &str)] = &[];

#[test]
fn no_crate_has_a_cycle_among_its_top_level_modules() {
    let crates_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut crates: Vec<PathBuf> = fs::read_dir(&crates_dir)
        .expect("read crates/")
        .map(|entry| entry.expect("crates/ entry").path())
        .filter(|path| path.join("src").is_dir())
        .collect();
    crates.sort();
    assert!(
        crates.len() >= 9,
        "expected the workspace's crates under {}",
        crates_dir.display()
    );

    let mut failures = Vec::new();
    for krate in &crates {
        let name = krate.file_name().unwrap_or_default().to_string_lossy();
        let src = krate.join("src");
        let full = module_graph(&src);
        let known: Vec<(&str, &str)> = KNOWN
            .iter()
            .filter(|(k, ..)| *k == name)
            .map(|(_, from, to, _)| (*from, *to))
            .collect();
        print_graph(&name, &full);
        for (from, to) in &known {
            if !full.get(*from).is_some_and(|uses| uses.contains(*to)) {
                failures.push(format!(
                    "{name}: {from} no longer imports {to}; delete it from KNOWN"
                ));
            } else if !reaches(&full, to, from) {
                failures.push(format!(
                    "{name}: {from} -> {to} no longer closes a cycle; delete it from KNOWN"
                ));
            }
        }
        let mut graph = full.clone();
        for (from, to) in &known {
            if let Some(uses) = graph.get_mut(*from) {
                uses.remove(*to);
            }
        }
        let pairs = two_way_pairs(&graph);
        let cycles = elementary_cycles(&graph, 100_000);
        for component in tangled_components(&graph) {
            let mut message = format!(
                "{name}: modules {} import each other:",
                component.join(", ")
            );
            for (a, b) in pairs
                .iter()
                .filter(|(a, b)| component.contains(a) && component.contains(b))
            {
                message.push_str(&format!("\n    two-way: {a} <-> {b}"));
            }
            let in_component: Vec<&Vec<String>> = cycles
                .iter()
                .filter(|cycle| component.contains(&cycle[0]))
                .collect();
            for cycle in in_component.iter().take(10) {
                message.push_str(&format!(
                    "\n    cycle: {} -> {}",
                    cycle.join(" -> "),
                    cycle[0]
                ));
            }
            let mut sites = BTreeSet::new();
            for cycle in &in_component {
                for (i, from) in cycle.iter().enumerate() {
                    let to = &cycle[(i + 1) % cycle.len()];
                    if let Some(site) = first_reference(&src, from, to) {
                        sites.insert(format!("\n    {from} -> {to} first at {site}"));
                    }
                }
            }
            message.extend(sites);
            failures.push(message);
        }
    }
    assert!(
        failures.is_empty(),
        "the module graph must be a DAG (move the shared type down, or invert the dependency):\n{}",
        failures.join("\n")
    );
}

/// The crate's graph and its counts (shown with `--nocapture`).
fn print_graph(name: &str, graph: &Graph) {
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    let cycles = elementary_cycles(graph, 100_000);
    let tangled: usize = tangled_components(graph).iter().map(Vec::len).sum();
    println!(
        "{name}: {} modules, {edges} imports, {} two-way pairs, {} cycles, {tangled} modules on a cycle",
        graph.len(),
        two_way_pairs(graph).len(),
        cycles.len()
    );
    for (from, to) in graph {
        if !to.is_empty() {
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            println!("  {from} -> {}", to.join(", "));
        }
    }
}

/// Whether `to` can be reached from `from`.
fn reaches(graph: &Graph, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(node) = stack.pop() {
        if node == to {
            return true;
        }
        if seen.insert(node.clone()) {
            stack.extend(graph.get(&node).into_iter().flatten().cloned());
        }
    }
    false
}

#[test]
fn the_scanner_sees_paths_and_ignores_comments_and_strings() {
    let code = r##"
        use crate::{http::{self, rfc3339}, limits as l};
        // use crate::commented;
        /* crate::blocked /* nested crate::deeper */ */
        let s = "crate::in_string"; let r = r#"crate::raw"#; let c = '"'; let lt: &'static str = "";
        fn f() -> crate::store::X { $crate::pool::on() }
        pub(crate) fn g() {}
    "##;
    let found = referenced_modules(&strip_comments_and_strings(code));
    let found: Vec<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(found, ["http", "limits", "pool", "store"]);
}

/// `<top> → {modules it names}` for the crate whose sources are in `src`.
fn module_graph(src: &Path) -> Graph {
    let reexports = root_reexports(src);
    let mut graph = Graph::new();
    for top in top_level_modules(src) {
        let mut uses = BTreeSet::new();
        for file in files_of(src, &top) {
            let code = strip_comments_and_strings(&fs::read_to_string(&file).expect("read source"));
            for name in referenced_modules(&code) {
                let module = reexports.get(&name).cloned().unwrap_or(name);
                uses.insert(module);
            }
        }
        graph.insert(top, uses);
    }
    let nodes: BTreeSet<String> = graph.keys().cloned().collect();
    for (top, uses) in graph.iter_mut() {
        uses.retain(|used| used != top && nodes.contains(used));
    }
    graph
}

/// Top-level modules: `src/<name>.rs` and `src/<name>/` (not the crate roots).
fn top_level_modules(src: &Path) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    for entry in fs::read_dir(src).expect("read src/") {
        let path = entry.expect("src/ entry").path();
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let is_module = path.is_dir() || path.extension().is_some_and(|ext| ext == "rs");
        if is_module && !matches!(stem.as_str(), "lib" | "main" | "bin") {
            modules.insert(stem);
        }
    }
    modules
}

fn files_of(src: &Path, top: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = src.join(format!("{top}.rs"));
    if file.is_file() {
        files.push(file);
    }
    let dir = src.join(top);
    if dir.is_dir() {
        collect_rs(&dir, &mut files);
    }
    files.sort();
    files
}

fn collect_rs(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read module dir") {
        let path = entry.expect("module dir entry").path();
        if path.is_dir() {
            collect_rs(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// Names the crate root re-exports, mapped to the module they come from
/// (`pub use users::{User, UserQuery as Query};` → User ↦ users, Query ↦ users).
fn root_reexports(src: &Path) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let Ok(root) = fs::read_to_string(src.join("lib.rs")) else {
        return map;
    };
    let code = strip_comments_and_strings(&root);
    for statement in code.split(';') {
        let statement = statement.trim();
        let Some(rest) = statement
            .strip_prefix("pub use ")
            .or_else(|| statement.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        let rest = rest
            .trim()
            .trim_start_matches("self::")
            .trim_start_matches("crate::");
        let Some((module, tail)) = rest.split_once("::") else {
            continue;
        };
        for item in tail.split([',', '{', '}']) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let alias = item.rsplit(" as ").next().unwrap_or(item).trim();
            let alias = alias.rsplit("::").next().unwrap_or(alias).trim();
            if !alias.is_empty() && alias != "self" {
                map.insert(alias.to_string(), module.trim().to_string());
            }
        }
    }
    map
}

/// The first name after every `crate::` (each first-level name of a `crate::{…}` group).
fn referenced_modules(code: &str) -> BTreeSet<String> {
    references(code).into_iter().map(|(name, _)| name).collect()
}

/// Every module name after a `crate::`, with the byte offset of its `crate::`.
fn references(code: &str) -> Vec<(String, usize)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = code[at..].find("crate::") {
        let start = at + offset;
        at = start + "crate::".len();
        // `crate` must be a whole word (`$crate` is fine; `my_crate::` is not).
        if start > 0 && is_ident(bytes[start - 1]) {
            continue;
        }
        let rest = code[at..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            found.extend(group_heads(group).into_iter().map(|name| (name, start)));
        } else if let Some(name) = ident_prefix(rest) {
            found.push((name.to_string(), start));
        }
    }
    found
}

/// First-level names of a `{…}` use group (the text after `{`): `a, b::{c, d}, e as f` → a, b, e.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expecting = true;
    for (i, ch) in group.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expecting = true,
            c if depth == 0 && expecting && (c.is_alphabetic() || c == '_') => {
                if let Some(name) = ident_prefix(&group[i..]) {
                    heads.push(name.to_string());
                }
                expecting = false;
            }
            _ => {}
        }
    }
    heads.retain(|head| head != "self");
    heads
}

fn ident_prefix(text: &str) -> Option<&str> {
    let end = text
        .bytes()
        .position(|b| !is_ident(b))
        .unwrap_or(text.len());
    let name = &text[..end];
    (!name.is_empty() && !name.as_bytes()[0].is_ascii_digit()).then_some(name)
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The code with comments, string and char literals replaced by spaces (newlines kept).
fn strip_comments_and_strings(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let blank = |out: &mut String, part: &[char]| {
        out.extend(part.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
    };
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let len = if rest.starts_with(&['/', '/']) {
            let len = rest.iter().position(|&c| c == '\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..len]);
            len
        } else if rest.starts_with(&['/', '*']) {
            let mut depth = 0usize;
            let mut j = 0;
            while j < rest.len() {
                if rest[j..].starts_with(&['/', '*']) {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(&['*', '/']) {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            let len = j.min(rest.len());
            blank(&mut out, &rest[..len]);
            len
        } else if let Some(len) = raw_string_len(rest) {
            blank(&mut out, &rest[..len]);
            len
        } else if rest[0] == '"' || rest.starts_with(&['b', '"']) {
            let mut j = if rest[0] == '"' { 1 } else { 2 };
            while j < rest.len() && rest[j] != '"' {
                j += if rest[j] == '\\' { 2 } else { 1 };
            }
            let len = (j + 1).min(rest.len());
            blank(&mut out, &rest[..len]);
            len
        } else if rest[0] == '\'' {
            // A char literal ('x', '\n', '\u{..}', '"'); otherwise a lifetime or a label.
            let len = if rest.get(1) == Some(&'\\') {
                rest.iter()
                    .skip(2)
                    .position(|&c| c == '\'')
                    .map_or(1, |p| p + 3)
            } else if rest.get(2) == Some(&'\'') {
                3
            } else {
                1
            };
            blank(&mut out, &rest[..len]);
            len
        } else if rest[0].is_alphanumeric() || rest[0] == '_' {
            // A whole identifier, so an `r` or `b` inside a name never starts a literal.
            let len = rest
                .iter()
                .position(|&c| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.extend(&rest[..len]);
            len
        } else {
            out.push(rest[0]);
            1
        };
        i += len;
    }
    out
}

/// Length of a raw string literal (`r"…"`, `r#"…"#`, `br"…"`) starting at `text`.
fn raw_string_len(text: &[char]) -> Option<usize> {
    let after_prefix = if text.starts_with(&['b', 'r']) {
        2
    } else if text.starts_with(&['r']) {
        1
    } else {
        return None;
    };
    let hashes = text[after_prefix..]
        .iter()
        .take_while(|&&c| c == '#')
        .count();
    let open = after_prefix + hashes;
    if text.get(open) != Some(&'"') {
        return None;
    }
    let mut close = vec!['"'];
    close.extend(std::iter::repeat_n('#', hashes));
    let body = &text[open + 1..];
    let end = body
        .windows(close.len())
        .position(|w| w == close.as_slice())?;
    Some(open + 1 + end + close.len())
}

fn two_way_pairs(graph: &Graph) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (from, uses) in graph {
        for to in uses {
            if from < to && graph.get(to).is_some_and(|back| back.contains(from)) {
                pairs.push((from.clone(), to.clone()));
            }
        }
    }
    pairs
}

/// Strongly connected components with more than one module (Tarjan).
fn tangled_components(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        components: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, node: &'g str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in &self.graph[node] {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(top.to_string());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.components.push(component);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in graph.keys() {
        if !tarjan.index.contains_key(node.as_str()) {
            tarjan.visit(node);
        }
    }
    tarjan.components.sort();
    tarjan.components
}

/// Every elementary cycle, each listed once from its smallest module (at most `limit`).
fn elementary_cycles(graph: &Graph, limit: usize) -> Vec<Vec<String>> {
    fn walk(
        graph: &Graph,
        start: &str,
        path: &mut Vec<String>,
        cycles: &mut Vec<Vec<String>>,
        limit: usize,
    ) {
        let last = path.last().cloned().unwrap_or_default();
        for next in &graph[&last] {
            if cycles.len() >= limit {
                return;
            }
            if next == start {
                cycles.push(path.clone());
            } else if next.as_str() > start && !path.contains(next) {
                path.push(next.clone());
                walk(graph, start, path, cycles, limit);
                path.pop();
            }
        }
    }
    let mut cycles = Vec::new();
    for start in graph.keys() {
        let mut path = vec![start.clone()];
        walk(graph, start, &mut path, &mut cycles, limit);
    }
    cycles
}

/// `file:line` of the first `crate::<to>` reference in module `from` (for the failure message).
fn first_reference(src: &Path, from: &str, to: &str) -> Option<String> {
    let reexports = root_reexports(src);
    for file in files_of(src, from) {
        let code = strip_comments_and_strings(&fs::read_to_string(&file).ok()?);
        let hit = references(&code)
            .into_iter()
            .find(|(name, _)| reexports.get(name).unwrap_or(name) == to);
        if let Some((_, offset)) = hit {
            let line = code[..offset].lines().count().max(1);
            let shown = file.strip_prefix(src).unwrap_or(&file).display();
            return Some(format!("src/{shown}:{line}"));
        }
    }
    None
}
