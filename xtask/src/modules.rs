//! `cargo xtask modules [--print]`: the module graph of every crate under `crates/`, from the
//! paths each file names (`crate::a::b`, `super::c`, and its own `mod` children), and a
//! failure for each import cycle between files. With `--print`, each crate's graph.
//!
//! A module depends on another when its code (not its comments, not its `#[cfg(test)]
//! mod tests`) names it; the crate root is left out, since it declares and re-exports
//! everything. The check is textual: it reads paths, not the compiler's resolution, so a
//! path that reaches a module through a re-export counts for the module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::run::workspace_root;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// `cargo xtask modules`'s command line.
#[derive(Debug, Default, clap::Args)]
pub struct Options {
    /// Also print each crate's graph: every file and the files it imports from.
    #[arg(long)]
    print: bool,
}

pub fn run(options: &Options) -> Result<(), String> {
    let print = options.print;
    let crates = workspace_root().join("crates");
    let mut names: Vec<_> = std::fs::read_dir(&crates)
        .map_err(|e| format!("{}: {e}", crates.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join("src").join("lib.rs").is_file())
        .collect();
    names.sort();
    let mut cycles = Vec::new();
    for path in names {
        let name = path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        let graph = graph_of(&path.join("src"))?;
        if print {
            println!("{name}:");
            for (module, deps) in &graph {
                let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
                println!("  {module} -> {}", deps.join(", "));
            }
        }
        for cycle in cycles_of(&graph) {
            cycles.push(format!("{name}: {} import each other", cycle.join(", ")));
        }
    }
    if cycles.is_empty() {
        println!("modules: no import cycle between files in any crate");
        Ok(())
    } else {
        Err(format!(
            "import cycles between files:\n  {}",
            cycles.join("\n  ")
        ))
    }
}

/// The modules of the crate whose sources are under `src`, and what each names.
fn graph_of(src: &Path) -> Result<Graph, String> {
    let mut files = Vec::new();
    collect(src, src, &mut files)?;
    let modules: BTreeSet<String> = files.iter().map(|(module, _)| module.clone()).collect();
    // What the crate root re-exports, by name: `crate::Error` names the module `error`.
    let mut reexported = BTreeMap::new();
    if let Some((_, root)) = files.iter().find(|(module, _)| module.is_empty()) {
        for path in use_paths(&code_of(root)) {
            if let (Some(name), Some(target)) = (path.last(), resolve("", &path, &modules))
                && !target.is_empty()
            {
                reexported.insert(name.clone(), target);
            }
        }
    }
    let mut graph = Graph::new();
    for (module, text) in &files {
        if module.is_empty() {
            continue; // the crate root
        }
        let code = code_of(text);
        let mut deps = BTreeSet::new();
        for mut path in paths_in(&code).into_iter().chain(use_paths(&code)) {
            // `crate::Item` where the root re-exports `Item` from a module: that module.
            if path.len() >= 2
                && path[0] == "crate"
                && !modules.contains(&path[1])
                && let Some(target) = reexported.get(&path[1])
            {
                let mut through: Vec<String> = vec!["crate".to_string()];
                through.extend(target.split("::").map(str::to_string));
                through.extend(path.drain(2..));
                path = through;
            }
            let absolute = match resolve(module, &path, &modules) {
                Some(absolute) => absolute,
                None => continue,
            };
            if !absolute.is_empty() && &absolute != module {
                deps.insert(absolute);
            }
        }
        graph.insert(module.clone(), deps);
    }
    Ok(graph)
}

/// Every `.rs` file under `dir`, with its module path (`""` for lib.rs, `a::b` for a/b.rs
/// or a/b/mod.rs).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files)?;
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let relative = path.strip_prefix(root).map_err(|e| e.to_string())?;
        let mut parts: Vec<String> = relative
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts
            .last()
            .is_some_and(|last| last == "mod" || last == "lib")
        {
            parts.pop();
        }
        if parts
            .first()
            .is_some_and(|first| first == "bin" || first == "main")
        {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        files.push((parts.join("::"), text));
    }
    Ok(())
}

/// The code of a file: without its comments and its `#[cfg(test)] mod tests`.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths that start with `crate::` or `super::` (as written: `a::b::{c, d}` counts as
/// `a::b`), and those that start with a child module this file declares (`mod x;`).
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let children: BTreeSet<String> = code
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub(crate) mod ")
                .or_else(|| line.strip_prefix("pub(super) mod "))
                .or_else(|| line.strip_prefix("pub mod "))
                .or_else(|| line.strip_prefix("mod "))?;
            rest.strip_suffix(';').map(str::to_string)
        })
        .collect();
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let starts_word = at == 0
            || !(bytes[at - 1].is_ascii_alphanumeric()
                || bytes[at - 1] == b'_'
                || bytes[at - 1] == b':');
        if !starts_word || !(bytes[at].is_ascii_alphabetic() || bytes[at] == b'_') {
            at += 1;
            continue;
        }
        let mut end = at;
        let mut segments = Vec::new();
        loop {
            let start = end;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            segments.push(code[start..end].to_string());
            if code[end..].starts_with("::")
                && code[end + 2..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            {
                end += 2;
            } else {
                break;
            }
        }
        let first = segments[0].as_str();
        if segments.len() > 1 && (first == "crate" || first == "super" || children.contains(first))
        {
            paths.push(segments);
        }
        at = end.max(at + 1);
    }
    paths
}

/// The paths of the `use` declarations in `code`, their trees expanded (`use a::{b, c::d}`
/// gives `a::b` and `a::c::d`); only those that start with `crate`, `super` or `self`.
fn use_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at + 4..];
        rest = tail;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(end) = tail.find(';') else { break };
        // One space between words (`Error as E`), none around punctuation.
        let words: Vec<&str> = tail[..end].split_whitespace().collect();
        let mut tree = words.join(" ");
        for punctuation in ["::", "{", "}", ","] {
            tree = tree
                .replace(&format!(" {punctuation}"), punctuation)
                .replace(&format!("{punctuation} "), punctuation);
        }
        let mut expanded = Vec::new();
        expand(&tree, &mut Vec::new(), &mut expanded);
        paths.extend(expanded.into_iter().filter(|path| {
            path.len() > 1 && matches!(path[0].as_str(), "crate" | "super" | "self")
        }));
    }
    paths
}

/// Expands the use tree `tree` (no whitespace but between words) under `prefix` into flat
/// paths.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    // Split the top level at commas that are not inside braces.
    let mut depth = 0;
    let mut start = 0;
    let mut items = Vec::new();
    for (i, c) in tree.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&tree[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&tree[start..]);
    for item in items {
        let item = item.split(" as ").next().unwrap_or(item);
        let item = item
            .split("as")
            .next()
            .filter(|_| !item.contains("::"))
            .unwrap_or(item);
        if item.is_empty() {
            continue;
        }
        let (head, group) = match item.find("{") {
            Some(open) if item.ends_with('}') => {
                (&item[..open], Some(&item[open + 1..item.len() - 1]))
            }
            _ => (item, None),
        };
        let before = prefix.len();
        prefix.extend(
            head.split("::")
                .filter(|s| !s.is_empty() && *s != "*")
                .map(str::to_string),
        );
        match group {
            Some(group) => expand(group, prefix, out),
            None => out.push(prefix.clone()),
        }
        prefix.truncate(before);
    }
}

/// The module that `path`, named in `module`, refers to: the longest prefix of its
/// absolute form that is a module of the crate. `None` outside the crate.
fn resolve(module: &str, path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    let mut absolute: Vec<String> = Vec::new();
    let mut segments = path.iter().peekable();
    match segments.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segments.next();
        }
        Some("self") => {
            segments.next();
            absolute = module.split("::").map(str::to_string).collect();
        }
        Some("super") => {
            absolute = module.split("::").map(str::to_string).collect();
            while segments.peek().is_some_and(|s| *s == "super") {
                segments.next();
                absolute.pop()?;
            }
        }
        _ => absolute = module.split("::").map(str::to_string).collect(),
    }
    absolute.extend(segments.cloned());
    while !absolute.is_empty() {
        let candidate = absolute.join("::");
        if modules.contains(&candidate) {
            return Some(candidate);
        }
        absolute.pop();
    }
    Some(String::new())
}

/// The cycles of `graph`: each strongly connected set of more than one module, in order.
fn cycles_of(graph: &Graph) -> Vec<Vec<String>> {
    // Tarjan's algorithm, iteratively small: graphs here have tens of nodes.
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(state: &mut State<'g>, node: &'g str) {
        state.index.insert(node, state.next);
        state.low.insert(node, state.next);
        state.next += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        if let Some(deps) = state.graph.get(node) {
            for dep in deps {
                let dep = dep.as_str();
                if !state.graph.contains_key(dep) {
                    continue;
                }
                if !state.index.contains_key(dep) {
                    visit(state, dep);
                    let low = state.low[node].min(state.low[dep]);
                    state.low.insert(node, low);
                } else if state.on_stack.contains(dep) {
                    let low = state.low[node].min(state.index[dep]);
                    state.low.insert(node, low);
                }
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(top);
                component.push(top.to_string());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found
}
