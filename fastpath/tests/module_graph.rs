//! No import circles between fastpath's top-level modules.
//!
//! Reads `src/**/*.rs`, takes every `crate::X` path outside comments as an
//! edge from the file's top-level module (its first path component under
//! `src/`) to `X`, and fails, naming the circle and where each of its
//! edges is used, if the graph of edges between different top-level
//! modules has one. Circles inside one module (one folder's files) are
//! its own business and not counted.
//!
//! The check is textual: it relies on the crate's convention that a path
//! into another top-level module is spelled `crate::…` (never
//! `super::super::…` out of a folder, never through a re-export in
//! `lib.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Edges between top-level modules, each with the places that make it.
type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `text` without its comments (line, doc and block comments; string
/// literals are not told apart, which at worst drops a path after a
/// `//` inside a string).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut depth = 0usize;
    while !rest.is_empty() {
        if depth > 0 {
            if let Some(r) = rest.strip_prefix("*/") {
                depth -= 1;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("/*") {
                depth += 1;
                rest = r;
            } else {
                let c = rest.chars().next().unwrap();
                if c == '\n' {
                    out.push('\n');
                }
                rest = &rest[c.len_utf8()..];
            }
        } else if let Some(r) = rest.strip_prefix("/*") {
            depth = 1;
            rest = r;
        } else if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The top-level modules `crate::X` paths in `code` name, with the line
/// of each (1-based).
fn crate_paths(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (i, line) in code.lines().enumerate() {
        let mut from = 0;
        while let Some(at) = line[from..].find("crate::") {
            let start = from + at;
            let before = line[..start].chars().next_back();
            from = start + "crate::".len();
            // `$crate::` or a longer identifier ending in `crate`.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let name: String = line[from..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push((name, i + 1));
            }
        }
    }
    out
}

/// The modules `lib.rs` declares (`mod x;`, `pub mod x;`).
fn declared_modules(lib: &str) -> BTreeSet<String> {
    strip_comments(lib)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

fn module_graph(src: &Path) -> (BTreeSet<String>, Graph) {
    let modules = declared_modules(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rs_files(src, &mut files);
    let mut graph = Graph::new();
    for m in &modules {
        graph.entry(m.clone()).or_default();
    }
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let top = first.strip_suffix(".rs").unwrap_or(first);
        if top == "lib" {
            continue;
        }
        assert!(
            modules.contains(top),
            "{}: not under a module lib.rs declares",
            rel.display()
        );
        let code = strip_comments(&fs::read_to_string(&f).unwrap());
        for (to, line) in crate_paths(&code) {
            if to == top || !modules.contains(&to) {
                // Within the module, or an item of lib.rs itself.
                continue;
            }
            graph
                .get_mut(top)
                .unwrap()
                .entry(to)
                .or_default()
                .push(format!("{}:{line}", rel.display()));
        }
    }
    (modules, graph)
}

/// A circle in `graph`, as the modules along it (the first repeated at
/// the end), if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit<'g>(
        g: &'g Graph,
        n: &'g str,
        marks: &mut BTreeMap<&'g str, Mark>,
        path: &mut Vec<&'g str>,
    ) -> Option<Vec<String>> {
        marks.insert(n, Mark::OnPath);
        path.push(n);
        for to in g.get(n).into_iter().flat_map(|e| e.keys()) {
            match marks.get(to.as_str()).copied().unwrap_or(Mark::New) {
                Mark::OnPath => {
                    let from = path.iter().position(|m| m == to).unwrap();
                    let mut c: Vec<String> = path[from..].iter().map(|m| m.to_string()).collect();
                    c.push(to.clone());
                    return Some(c);
                }
                Mark::New => {
                    if let Some(c) = visit(g, to, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(n, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in graph.keys() {
        if marks.get(n.as_str()).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(c) = visit(graph, n, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn describe(graph: &Graph, cycle: &[String]) -> String {
    let mut s = cycle.join(" -> ");
    for w in cycle.windows(2) {
        let uses = &graph[&w[0]][&w[1]];
        s += &format!("\n  {} -> {}: {}", w[0], w[1], uses.join(", "));
    }
    s
}

#[test]
fn no_import_circles_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (modules, graph) = module_graph(&src);
    // The parse found the crate: its modules, and the engine's uses.
    assert!(modules.len() >= 10, "modules: {modules:?}");
    assert!(
        graph["ipvs"].contains_key("conn"),
        "ipvs -> conn not seen: {graph:?}"
    );
    let edges: Vec<String> = graph
        .iter()
        .map(|(m, to)| {
            format!(
                "{m} -> {}",
                to.keys().cloned().collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    if let Some(c) = find_cycle(&graph) {
        panic!(
            "import circle between fastpath's modules: {}\n\nthe graph:\n{}",
            describe(&graph, &c),
            edges.join("\n")
        );
    }
}

#[test]
fn a_circle_is_found() {
    let g = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string())
                .or_default()
                .insert(b.to_string(), vec![format!("{a}.rs:1")]);
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(find_cycle(&g(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    let c = find_cycle(&g(&[("a", "b"), ("b", "c"), ("c", "d"), ("d", "b")])).unwrap();
    assert_eq!(c, ["b", "c", "d", "b"]);
    assert_eq!(
        find_cycle(&g(&[("x", "y"), ("y", "x")])).unwrap(),
        ["x", "y", "x"]
    );
}

#[test]
fn paths_are_read_outside_comments() {
    let code = strip_comments(
        "use crate::conn::Conn; // crate::ipvs\n/* crate::sync\n */ let x = crate::wire::X;\n\
         /// [`crate::host`]\n$crate::io::Buf; notcrate::stats",
    );
    let found: Vec<_> = crate_paths(&code);
    assert_eq!(found, [("conn".to_string(), 1), ("wire".to_string(), 3)]);
    assert_eq!(
        declared_modules("pub mod a;\nmod b;\n// mod c;\npub use a::X;"),
        BTreeSet::from(["a".to_string(), "b".to_string()])
    );
}
