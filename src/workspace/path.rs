//! A file's path inside a workspace, as callers give it: relative, `/`-separated,
//! normalised (empty and `.` components dropped), never `..`, never absolute, no NUL
//! or other control characters, no backslashes. Anything else is refused with a message
//! that says what to send instead.

use std::fmt;

/// Longest accepted path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest accepted path component, in bytes (what Linux file systems allow).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Most components (directory depth + 1).
pub const MAX_DEPTH: usize = 32;

/// A checked, normalised relative path (`a/b/c.csv`): its components are plain names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkspacePath(String);

impl WorkspacePath {
    /// Check and normalise `raw`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.contains('\0') {
            return Err("path contains a NUL byte".to_owned());
        }
        if raw.is_empty() {
            return Err(
                "path is empty: give a file path relative to the workspace root, e.g. data.csv"
                    .to_owned(),
            );
        }
        if raw.chars().any(char::is_control) {
            return Err(format!("path {raw:?} contains a control character"));
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(format!(
                "path is {} bytes long; the limit is {MAX_PATH_BYTES}",
                raw.len()
            ));
        }
        if raw.starts_with('/') {
            return Err(format!(
                "path {raw:?} is absolute: give a path relative to the workspace root, e.g. data.csv"
            ));
        }
        if raw.contains('\\') {
            return Err(format!(
                "path {raw:?} contains a backslash: separate directories with \"/\""
            ));
        }
        let mut components = Vec::new();
        for component in raw.split('/') {
            match component {
                "" | "." => continue,
                ".." => {
                    return Err(format!(
                        "path {raw:?} contains \"..\": paths must stay inside the workspace"
                    ));
                }
                name if name.len() > MAX_COMPONENT_BYTES => {
                    return Err(format!(
                        "path {raw:?} has a component longer than {MAX_COMPONENT_BYTES} bytes"
                    ));
                }
                name => components.push(name),
            }
        }
        if components.is_empty() {
            return Err(format!(
                "path {raw:?} names the workspace root: name a file inside it, e.g. data.csv"
            ));
        }
        if components.len() > MAX_DEPTH {
            return Err(format!(
                "path {raw:?} is {} levels deep; the limit is {MAX_DEPTH}",
                components.len()
            ));
        }
        Ok(Self(components.join("/")))
    }

    /// The path as text (`a/b/c.csv`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directories leading to the file (`a`, `b` for `a/b/c.csv`).
    pub fn parents(&self) -> impl Iterator<Item = &str> {
        let mut parts: Vec<&str> = self.0.split('/').collect();
        parts.pop();
        parts.into_iter()
    }

    /// The last component (`c.csv`).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The path with each component percent-encoded, for URIs and URLs.
    pub fn encoded(&self) -> String {
        self.0
            .split('/')
            .map(|c| {
                // Form encoding writes spaces as `+`; a path wants `%20`.
                serde_urlencoded::to_string([("", c)])
                    .map(|s| s[1..].replace('+', "%20"))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

impl fmt::Display for WorkspacePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decode a percent-encoded path (from a resource URI), then check it.
pub fn decode(encoded: &str) -> Result<WorkspacePath, String> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let raw = encoded.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("path {encoded:?} has a malformed %-escape"))?;
            bytes.push(hex);
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("path {encoded:?} is not UTF-8"))?;
    WorkspacePath::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_empty_and_dot_components() {
        assert_eq!(
            WorkspacePath::parse("./a//b/./c.csv").unwrap().as_str(),
            "a/b/c.csv"
        );
        assert_eq!(WorkspacePath::parse("out/").unwrap().as_str(), "out");
        let path = WorkspacePath::parse("a/b/c.csv").unwrap();
        assert_eq!(path.parents().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(path.file_name(), "c.csv");
    }

    #[test]
    fn refuses_escapes_with_exact_messages() {
        let cases = [
            (
                "../x",
                "path \"../x\" contains \"..\": paths must stay inside the workspace",
            ),
            (
                "a/../../x",
                "path \"a/../../x\" contains \"..\": paths must stay inside the workspace",
            ),
            (
                "/etc/passwd",
                "path \"/etc/passwd\" is absolute: give a path relative to the workspace root, e.g. data.csv",
            ),
            ("a\0b", "path contains a NUL byte"),
            (
                "",
                "path is empty: give a file path relative to the workspace root, e.g. data.csv",
            ),
            (
                ".",
                "path \".\" names the workspace root: name a file inside it, e.g. data.csv",
            ),
            (
                "a\\b",
                "path \"a\\\\b\" contains a backslash: separate directories with \"/\"",
            ),
            ("a\nb", "path \"a\\nb\" contains a control character"),
        ];
        for (raw, message) in cases {
            assert_eq!(WorkspacePath::parse(raw).unwrap_err(), message, "{raw:?}");
        }
        assert!(WorkspacePath::parse(&"a/".repeat(40)).is_err());
        assert!(WorkspacePath::parse(&"x".repeat(256)).is_err());
    }

    #[test]
    fn encodes_and_decodes_components() {
        let path = WorkspacePath::parse("charts/my chart+1 é.svg").unwrap();
        let encoded = path.encoded();
        assert_eq!(encoded, "charts/my%20chart%2B1%20%C3%A9.svg");
        assert_eq!(decode(&encoded).unwrap(), path);
        assert!(decode("..%2Fx").is_err(), "an encoded .. is still refused");
        assert!(decode("%2e%2e/x").is_err());
        assert!(decode("a%00b").is_err());
    }
}
