//! The rules of docs/architecture.md that the compiler does not check: the modules of
//! `src/` form no import cycle, the layout imports nothing, the wire formats know no layout,
//! and the model does no I/O and parses no wire format. Reads the sources as text: every
//! `crate::<module>` path outside comments is an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules its code names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let Some(module) = rel.strip_suffix(".rs") else {
                continue;
            };
            // src/lib.rs and src/main.rs are the crate's roots, not modules.
            if module == "lib" || module == "main" {
                continue;
            }
            let top = module.split('/').next().unwrap().to_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let deps = g.entry(top.clone()).or_default();
            for line in text.lines() {
                let code = line.split("//").next().unwrap();
                let mut rest = code;
                while let Some(at) = rest.find("crate::") {
                    rest = &rest[at + "crate::".len()..];
                    // `crate::{a, b::c}` names a and b.
                    let names: Vec<&str> = match rest.strip_prefix('{') {
                        Some(group) => group
                            .split('}')
                            .next()
                            .unwrap()
                            .split(',')
                            .map(str::trim)
                            .collect(),
                        None => vec![rest],
                    };
                    for n in names {
                        let name: String = n
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if !name.is_empty() && name != top {
                            deps.insert(name);
                        }
                    }
                }
            }
        }
    }
    g
}

/// A cycle through `start`, if there is one.
fn cycle_from(
    g: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    at: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in g.get(at).into_iter().flatten() {
        if next == start {
            let mut c = path.clone();
            c.push(next.clone());
            return Some(c);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(c) = cycle_from(g, start, next, path, seen) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn no_import_cycle_between_modules() {
    let g = graph();
    assert!(g.len() > 10, "read too few modules: {g:?}");
    for start in g.keys() {
        let mut path = vec![start.clone()];
        let c = cycle_from(&g, start, start, &mut path, &mut BTreeSet::new());
        assert!(c.is_none(), "import cycle: {}", c.unwrap().join(" -> "));
    }
}

fn deps_of(g: &BTreeMap<String, BTreeSet<String>>, module: &str) -> BTreeSet<String> {
    g.get(module)
        .unwrap_or_else(|| panic!("no module {module}"))
        .clone()
}

#[test]
fn the_leaves_import_nothing() {
    let g = graph();
    for leaf in ["layout", "decimal", "fault", "error_enum"] {
        assert_eq!(deps_of(&g, leaf), BTreeSet::new(), "{leaf}");
    }
}

#[test]
fn the_model_does_no_io_and_parses_no_wire_format() {
    let g = graph();
    for model in ["model", "net"] {
        let deps = deps_of(&g, model);
        for io in [
            "sys",
            "xenbus",
            "netlink",
            "publisher",
            "event_loop",
            "agent",
        ] {
            assert!(!deps.contains(io), "{model} uses {io}: {deps:?}");
        }
    }
}

/// Facts point one way: the sources read into the model's types, and the model and the
/// renderers never name a source (which would make the model depend on modules that do I/O).
#[test]
fn the_model_and_the_renderers_import_no_source() {
    let g = graph();
    for m in ["model", "net", "desired", "nics", "balloon", "publisher"] {
        let deps = deps_of(&g, m);
        assert!(!deps.contains("sources"), "{m} uses sources: {deps:?}");
    }
    // ...and the sources do depend on the model for their fact types.
    assert!(deps_of(&g, "sources").contains("model"));
}

#[test]
fn the_wire_formats_know_no_layout() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec!["xenbus/wire.rs".to_owned(), "netlink/wire.rs".to_owned()];
    for dir in ["xenbus/wire", "netlink/wire"] {
        for e in std::fs::read_dir(src.join(dir)).into_iter().flatten() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            files.push(format!("{dir}/{name}"));
        }
    }
    assert!(
        files.len() > 3,
        "the split xenbus wire module was not read: {files:?}"
    );
    for wire in &files {
        let text = std::fs::read_to_string(src.join(wire)).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap();
            for layer in [
                "crate::layout",
                "crate::desired",
                "crate::nics",
                "crate::model",
                "crate::net::",
            ] {
                assert!(!code.contains(layer), "{wire} uses {layer}: {line}");
            }
        }
    }
}
