//! os-release(5): `/etc/os-release`, then `/usr/lib/os-release`.
//!
//! Lines are `KEY=VALUE`; a value may be in double quotes (where `\"`, `\\`, `` \` `` and `\$`
//! are escapes), in single quotes, or bare. Comments and malformed lines are skipped.

use std::path::{Path, PathBuf};

use super::{read_capped, rooted};
use crate::model::OsRelease;

/// os-release files are a few hundred bytes; anything past this is ignored.
const MAX_LEN: u64 = 64 * 1024;

/// Candidate files, in the order os-release(5) prescribes.
pub fn candidates(root: &Path) -> [PathBuf; 2] {
    [
        rooted(root, "/etc/os-release"),
        rooted(root, "/usr/lib/os-release"),
    ]
}

/// Reads the first os-release file that exists. `Ok(None)`: neither exists (an initramfs).
pub fn load(root: &Path) -> std::io::Result<Option<(PathBuf, OsRelease)>> {
    // Room for a distribution's os-release (200-600 bytes) in one read: grown from empty, the
    // buffer takes a read and often a map/unmap per doubling.
    let mut buf = Vec::with_capacity(2048);
    for path in candidates(root) {
        match read_capped(&path, &mut buf, MAX_LEN) {
            Ok(()) => return Ok(Some((path, parse(&String::from_utf8_lossy(&buf))))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

pub fn parse(text: &str) -> OsRelease {
    let mut os = OsRelease::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let Some(value) = unquote(raw.trim()) else {
            continue;
        };
        let slot = match key.trim() {
            "ID" => &mut os.id,
            "NAME" => &mut os.name,
            "PRETTY_NAME" => &mut os.pretty_name,
            "VERSION_ID" => &mut os.version_id,
            _ => continue,
        };
        *slot = Some(value);
    }
    os
}

/// The value of a shell-style assignment; `None` when the quoting is broken.
fn unquote(raw: &str) -> Option<String> {
    let mut chars = raw.chars();
    match chars.next() {
        Some('"') => {
            let mut out = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => return Some(out),
                    '\\' => match chars.next() {
                        Some(e @ ('"' | '\\' | '`' | '$')) => out.push(e),
                        Some(other) => {
                            out.push('\\');
                            out.push(other);
                        }
                        None => return None,
                    },
                    c => out.push(c),
                }
            }
            None
        }
        Some('\'') => {
            let body = &raw[1..];
            body.find('\'').map(|end| body[..end].to_owned())
        }
        _ => Some(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian() {
        let os = parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
             VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n",
        );
        assert_eq!(
            os.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(os.name.as_deref(), Some("Debian GNU/Linux"));
        assert_eq!(os.id.as_deref(), Some("debian"));
        assert_eq!(os.version_id.as_deref(), Some("12"));
    }

    #[test]
    fn quoting_and_escapes() {
        let os = parse(
            "# comment\nID='alpine'\nPRETTY_NAME=\"A \\\"quoted\\\" \\$name\"\nbroken line\n\
             VERSION_ID=\"unterminated\nNAME=bare value\n",
        );
        assert_eq!(os.id.as_deref(), Some("alpine"));
        assert_eq!(os.pretty_name.as_deref(), Some("A \"quoted\" $name"));
        assert_eq!(os.version_id, None);
        assert_eq!(os.name.as_deref(), Some("bare value"));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let long = "x".repeat(10 * 1024);
        let os = parse(&format!(
            "PRETTY_NAME=\"{long}\"\nID=\"\\\nNAME=\u{1F600}\n=\n"
        ));
        assert_eq!(os.pretty_name.map(|s| s.len()), Some(10 * 1024));
        assert_eq!(os.id, None);
        assert_eq!(os.name.as_deref(), Some("\u{1F600}"));
    }

    #[test]
    fn load_prefers_etc_then_usr_lib() {
        let dir = std::env::temp_dir().join(format!("xb-osr-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::create_dir_all(dir.join("usr/lib")).unwrap();
        assert_eq!(load(&dir).unwrap(), None);
        std::fs::write(dir.join("usr/lib/os-release"), "ID=fromlib\n").unwrap();
        assert_eq!(
            load(&dir).unwrap().unwrap().1.id.as_deref(),
            Some("fromlib")
        );
        std::fs::write(dir.join("etc/os-release"), "ID=frometc\n").unwrap();
        assert_eq!(
            load(&dir).unwrap().unwrap().1.id.as_deref(),
            Some("frometc")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
