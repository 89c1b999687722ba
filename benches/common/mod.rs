//! Helpers shared by the benchmark harnesses (included with `mod common;`).
#![allow(dead_code)]

use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// The built guests (`SANDGRAPH_GUEST_DIR` or `build/guest`).
pub fn guest_dir() -> PathBuf {
    std::env::var_os("SANDGRAPH_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("build/guest"))
}

/// The 1-, 5- and 15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// "N CPUs (model)".
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cpus} CPUs ({model})")
}

/// The 50-line Python file the lint benchmarks lint (a unique comment is appended per
/// call so no cache answers).
pub const LINT_FILE: &str = r##"import os
import sys
from collections import defaultdict


def parse(lines):
    counts = defaultdict(int)
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        counts[key.strip()] += int(value or 0)
    return counts


def render(counts, width=10):
    out = []
    for key in sorted(counts):
        bar = "#" * min(counts[key], width)
        out.append(f"{key:<12} {bar}")
    return "\n".join(out)


class Report:
    def __init__(self, title):
        self.title = title
        self.rows = []

    def add(self, row):
        if isinstance(row, str):
            self.rows.append(row)
        else:
            raise TypeError("rows are strings")

    def text(self):
        head = self.title.upper()
        return head + "\n" + "\n".join(self.rows)


def main(argv):
    path = argv[1] if len(argv) > 1 else "data.txt"
    if not os.path.exists(path):
        print("missing", path)
        return 1
    with open(path) as f:
        report = Report("counts")
        report.add(render(parse(f)))
    print(report.text())
    return 0
"##;
