//! The module map of docs/architecture.md, enforced: each top-level module of `src/` imports
//! (`crate::…`, outside its tests) only from modules in lower layers, so there are no cycles
//! between folders; inside a folder no two files import each other, directly or through
//! others; and the map in docs/architecture.md lists every module with exactly what it imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers, lowest first; a module may import from any lower layer, never from its own or a
/// higher one.
const LAYERS: &[&[&str]] = &[
    &["hexdigits"],
    &[
        "json",
        "pacing",
        "schema",
        "metrics",
        "signals",
        "reactor",
        "emulator",
        "trust",
        "random",
        "trace_context",
    ],
    &["http", "access_log", "cache"],
    &["aws"],
    &["telemetry"],
    &["lambda", "certificate", "access"],
    &["upstream"],
    &["credentials", "trace_export"],
    &["config"],
    &["fleet"],
    &["proxy", "admin", "demo", "logging", "https", "http2"],
    &["runtime"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// A file's code without its comments (doc links are not imports) and its tests: a
/// `#[cfg(test)]` item (a `mod tests { … }` block, a `mod testing;` line, a function) is left
/// out, whatever follows it.
fn without_tests(text: &str) -> String {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .flat_map(|line| [line, "\n"])
        .collect();
    let text = code.as_str();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at + "#[cfg(test)]".len()..];
        // The item ends at its `;` if that comes before any `{`, else at its block's end.
        let end = match (item.find(';'), item.find('{')) {
            (Some(semi), Some(open)) if semi < open => semi + 1,
            (Some(semi), None) => semi + 1,
            (_, Some(open)) => block_end(item, open),
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Where the block opening at `open` ends (just past its `}`), braces in string and character
/// literals and comments aside.
fn block_end(text: &str, open: usize) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            // A raw string, `r"…"` or `r#"…"#`.
            b'r' if text[i + 1..].starts_with("#\"") || text[i + 1..].starts_with('"') => {
                let hashes = text[i + 1..].bytes().take_while(|b| *b == b'#').count();
                let close = format!("\"{}", "#".repeat(hashes));
                let body = i + 2 + hashes;
                i = text[body..]
                    .find(&close)
                    .map_or(bytes.len(), |e| body + e + close.len() - 1);
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            // A character literal: `'x'` or `'\x'` (a lifetime has no closing quote).
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\\') && bytes.get(i + 3) == Some(&b'\'') => i += 3,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    text.len()
}

/// The names a path names after `prefix` (`crate::`, `super::`): `a` for `a::b`, and each of
/// `a`, `b` for `{a, b::c}`; macro invocations (`crate::settings!`) are not imports.
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        // `crate::` inside a longer path (`$crate::`) is not the crate's.
        if at > 0 && code.as_bytes()[at - 1] == b'$' {
            continue;
        }
        let after = &code[at + prefix.len()..];
        if let Some(group) = after.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for part in inner.split(',') {
                let name = ident(part.trim());
                if !name.is_empty() && name != "self" {
                    names.push(name);
                }
            }
            continue;
        }
        let name = ident(after);
        if !name.is_empty() && !after[name.len()..].starts_with('!') {
            names.push(name);
        }
    }
    names
}

/// Every `.rs` file under `src`, as (path relative to `src`, code without tests).
fn files(src: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read");
                let rel = path.strip_prefix(src).expect("under src").to_path_buf();
                out.push((rel, without_tests(&text)));
            }
        }
    }
    out.sort();
    out
}

fn top_module(rel: &Path) -> String {
    let first = rel.components().next().expect("component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// Top-level module → (imported module → a file that imports it).
fn imports(src: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (rel, code) in files(src) {
        let module = top_module(&rel);
        if module == "lib" || module == "main" {
            continue;
        }
        for name in names_after(&code, "crate::") {
            if name != module {
                out.entry(module.clone())
                    .or_default()
                    .entry(name)
                    .or_insert_with(|| rel.display().to_string());
            }
        }
    }
    out
}

#[test]
fn modules_import_only_from_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    for (module, used) in imports(&src) {
        let Some(own) = layer_of(&module) else {
            wrong.push(format!(
                "{module} is not in the module map (tests/layering.rs)"
            ));
            continue;
        };
        for (target, file) in used {
            match layer_of(&target) {
                Some(l) if l < own => {}
                _ => wrong.push(format!("{file} imports crate::{target}")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the module map:\n{}",
        wrong.join("\n")
    );
}

/// Inside each folder, which file imports which of its siblings (`super::x`, or
/// `crate::folder::x`), outside tests; the folder's `mod.rs` is its parent, not a sibling.
fn sibling_imports(src: &Path) -> BTreeMap<PathBuf, BTreeMap<String, BTreeSet<String>>> {
    let all = files(src);
    let mut out: BTreeMap<PathBuf, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (rel, code) in &all {
        let Some(dir) = rel.parent().filter(|d| !d.as_os_str().is_empty()) else {
            continue;
        };
        let stem = rel
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if stem == "mod" {
            continue;
        }
        let folder = dir.to_string_lossy().replace('/', "::");
        let siblings: BTreeSet<String> = all
            .iter()
            .filter(|(other, _)| other.parent() == Some(dir))
            .map(|(other, _)| {
                other
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string()
            })
            .filter(|s| s != "mod")
            .collect();
        let mut named = names_after(code, "super::");
        named.extend(names_after(code, &format!("crate::{folder}::")));
        let used: BTreeSet<String> = named
            .into_iter()
            .filter(|n| *n != stem && siblings.contains(n))
            .collect();
        out.entry(dir.to_path_buf()).or_default().insert(stem, used);
    }
    out
}

#[test]
fn no_file_imports_itself_through_its_siblings() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut cycles = Vec::new();
    for (dir, graph) in sibling_imports(&src) {
        for start in graph.keys() {
            // Depth-first from `start`: a path back to it is a cycle.
            let mut stack = vec![(start.clone(), vec![start.clone()])];
            let mut seen = BTreeSet::new();
            while let Some((at, path)) = stack.pop() {
                for next in graph.get(&at).into_iter().flatten() {
                    if next == start {
                        let mut cycle = path.clone();
                        cycle.push(next.clone());
                        cycles.push(format!("{}: {}", dir.display(), cycle.join(" → ")));
                    } else if seen.insert(next.clone()) {
                        let mut longer = path.clone();
                        longer.push(next.clone());
                        stack.push((next.clone(), longer));
                    }
                }
            }
        }
    }
    cycles.sort();
    cycles.dedup();
    assert!(
        cycles.is_empty(),
        "files importing each other:\n{}",
        cycles.join("\n")
    );
}

/// The module map's rows (docs/architecture.md): each module named in a row's first column,
/// with the modules its last column says it imports.
fn documented_map() -> BTreeMap<String, BTreeSet<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
    let text = std::fs::read_to_string(&path).expect("docs/architecture.md");
    let ticked = |cell: &str| -> BTreeSet<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(|name| name.trim_end_matches(".rs").to_string())
            .collect()
    };
    let mut map = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        let (Some(first), Some(last)) = (cells.first(), cells.last()) else {
            continue;
        };
        for module in ticked(first) {
            map.insert(module, ticked(last));
        }
    }
    map
}

#[test]
fn the_documented_module_map_is_the_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let actual = imports(&src);
    let documented = documented_map();
    let mut wrong = Vec::new();
    for module in LAYERS.iter().flat_map(|l| l.iter()) {
        let used: BTreeSet<String> = actual
            .get(*module)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        match documented.get(*module) {
            None => wrong.push(format!("{module} has no row in docs/architecture.md")),
            Some(said) if *said != used => wrong.push(format!(
                "{module}: docs/architecture.md says it imports {said:?}, it imports {used:?}"
            )),
            Some(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn tests_and_macros_are_told_apart_from_imports() {
    let code = without_tests(
        "use crate::a::b;\n#[cfg(test)]\npub mod testing;\nfn f() { crate::settings! {} }\n#[cfg(test)]\nmod tests {\n    use crate::c;\n    fn g() { let s = \"}\"; let c = '}'; }\n}\nuse super::{d, e::f};\n",
    );
    assert!(
        !code.contains("crate::c") && !code.contains("testing"),
        "{code}"
    );
    assert_eq!(names_after(&code, "crate::"), ["a"]);
    assert_eq!(names_after(&code, "super::"), ["d", "e"]);
}
