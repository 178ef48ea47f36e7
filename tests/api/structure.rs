//! The shape of the code, checked so it stays (issue 11): no import circle among the files
//! under `src/`, no SQL outside the database layer and the stores, no file over 400 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// Longest a source file under `src/` may be (data files aside).
const MAX_LINES: usize = 400;

/// Module path (`["golive", "switch"]`) → file, for every `.rs` under `src/` but `main.rs`.
fn modules() -> BTreeMap<Vec<String>, PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path == root.join("main.rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

/// The source without comments and string literals (so `// crate::x` is not an import).
fn code_of(text: &str) -> String {
    let re = Regex::new(r#"(?s)//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*""#).unwrap();
    re.replace_all(text, "\"\"").into_owned()
}

/// Every path a file names: `use` trees expanded, and `crate::…`, `super::…`, `self::…` and
/// `<child module>::…` paths in code.
fn named_paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let uses = Regex::new(r"\buse\s+([^;]+);").unwrap();
    for u in uses.captures_iter(code) {
        expand(
            &u[1].replace(char::is_whitespace, ""),
            &mut Vec::new(),
            &mut paths,
        );
    }
    let inline = Regex::new(r"(?:^|[^\w:])((?:crate|super|self)(?:::\w+)+)").unwrap();
    for p in inline.captures_iter(code) {
        paths.push(p[1].split("::").map(str::to_owned).collect());
    }
    for child in children {
        let re = Regex::new(&format!(r"(?:^|[^\w:])({child}(?:::\w+)+)")).unwrap();
        for p in re.captures_iter(code) {
            paths.push(p[1].split("::").map(str::to_owned).collect());
        }
    }
    paths
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into whole paths.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut depth = 0;
    let mut start = 0;
    let mut items = Vec::new();
    for (i, ch) in tree.char_indices() {
        match ch {
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
    for item in items.into_iter().filter(|i| !i.is_empty()) {
        if let (Some(open), true) = (item.find('{'), item.ends_with('}')) {
            let head: Vec<String> = item[..open]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let n = prefix.len();
            prefix.extend(head);
            expand(&item[open + 1..item.len() - 1], prefix, out);
            prefix.truncate(n);
        } else {
            let item = item.split(" as ").next().unwrap_or(item);
            let mut p = prefix.clone();
            p.extend(
                item.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
            out.push(p);
        }
    }
}

/// The file each file imports from (edges of the import graph).
fn imports() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mods = modules();
    let mut edges = BTreeMap::new();
    let declared = Regex::new(r"\bmod\s+(\w+)\s*;").unwrap();
    for (module, path) in &mods {
        let code = code_of(&std::fs::read_to_string(path).unwrap());
        let children: BTreeSet<String> = declared
            .captures_iter(&code)
            .map(|c| c[1].to_owned())
            .collect();
        let mut targets = BTreeSet::new();
        for p in named_paths(&code, &children) {
            let absolute: Vec<String> = match p[0].as_str() {
                "crate" => p[1..].to_vec(),
                "self" => module.iter().chain(&p[1..]).cloned().collect(),
                "super" => {
                    let ups = p.iter().take_while(|s| *s == "super").count();
                    let base = &module[..module.len().saturating_sub(ups)];
                    base.iter().chain(&p[ups..]).cloned().collect()
                }
                first if children.contains(first) => module.iter().chain(&p).cloned().collect(),
                _ => continue,
            };
            let target = (0..=absolute.len())
                .rev()
                .map(|k| absolute[..k].to_vec())
                .find(|k| mods.contains_key(k));
            if let Some(t) = target.filter(|t| t != module) {
                targets.insert(t);
            }
        }
        edges.insert(module.clone(), targets);
    }
    edges
}

/// A circle of imports through `from`, if there is one.
fn circle_through(
    from: &Vec<String>,
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> Option<Vec<String>> {
    let mut stack = vec![(from.clone(), vec![from.join("/")])];
    let mut seen = BTreeSet::new();
    while let Some((at, trail)) = stack.pop() {
        for next in edges.get(&at).into_iter().flatten() {
            if next == from {
                return Some(trail.iter().cloned().chain([from.join("/")]).collect());
            }
            if seen.insert(next.clone()) {
                let mut t = trail.clone();
                t.push(next.join("/"));
                stack.push((next.clone(), t));
            }
        }
    }
    None
}

#[test]
fn no_file_under_src_imports_itself_in_a_circle() {
    let edges = imports();
    assert!(edges.len() > 50, "found only {} modules", edges.len());
    // The checker itself must see real imports (golive/activate uses golive/switch).
    let activate = edges
        .get(&vec!["golive".into(), "activate".into()])
        .unwrap();
    assert!(activate.contains(&vec!["golive".to_string(), "switch".to_string()]));
    let circles: Vec<String> = edges
        .keys()
        .filter_map(|m| circle_through(m, &edges))
        .map(|c| c.join(" → "))
        .collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn sql_lives_in_the_database_layer_and_the_stores_only() {
    for (module, path) in modules() {
        let area = module.first().map(String::as_str).unwrap_or("");
        if area == "web" || area == "golive" {
            let code = code_of(&std::fs::read_to_string(&path).unwrap());
            assert!(!code.contains("sqlx"), "{} uses sqlx", path.display());
        }
    }
}

#[test]
fn every_source_file_reads_in_one_sitting() {
    for (_, path) in modules() {
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(
            lines <= MAX_LINES,
            "{} has {lines} lines (at most {MAX_LINES})",
            path.display()
        );
    }
}
