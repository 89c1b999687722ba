//! `lint_code`'s module summary is computed on the host from ruff's parser
//! (`tools::lint_summary`); the old platform's semantics are what CPython's `ast` and
//! mccabe compute inside the guest (`{"summary_only": true}`). This compares the two, file
//! by file, on tricky snippets and on real code: this repository's Python and a sample of
//! the guest's own site-packages (sympy, hypothesis, pytest, networkx, ...).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sandgraph::sandbox::{CancellationToken, SandboxLimits};
use sandgraph::tools::lint_summary::summarize;
use serde_json::{Value, json};

const SNIPPETS: &[&str] = &[
    "x = 1\n",
    "",
    "if a:\n    pass\nelif b:\n    def in_elif():\n        pass\nelif c and d:\n    pass\nelse:\n    def in_else():\n        pass\n",
    "for i in x:\n    if i or j:\n        break\nelse:\n    pass\nwhile y:\n    continue\nelse:\n    z = 1\n",
    "try:\n    a()\nexcept ValueError as e:\n    def handler():\n        pass\nexcept (TypeError, KeyError):\n    pass\nelse:\n    b()\nfinally:\n    def fin():\n        if x:\n            pass\n",
    "try:\n    pass\nexcept* ValueError:\n    pass\n",
    "def f(x):\n    match x:\n        case 1 if x and y:\n            def in_case():\n                pass\n        case [a, b]:\n            return a\n        case _:\n            pass\n",
    "async def g():\n    async with a as b, c:\n        async for i in b:\n            await i\n    with d:\n        pass\n",
    "class A:\n    class B:\n        def m(self):\n            if self:\n                return 1\n    def m(self):\n        pass\n    if flag:\n        x = 1\n    def m(self):\n        for i in y:\n            pass\n",
    "def f():\n    pass\n\n\ndef f():\n    if x:\n        pass\n",
    "@decorator(a or b)\ndef deco(x=lambda: p and q):\n    return [i for i in x if i and not i or i]\n",
    "def outer():\n    def inner():\n        def innermost():\n            while True:\n                break\n        return innermost\n    class Local:\n        def method(self):\n            pass\n    return inner\n",
    "x = f'{a or b} {c and d!r:>{w or 3}}'\n",
    "import a.b.c as d, e\nfrom . import f\nfrom ..g import h as i, j\nfrom k import *\nimport a\n",
    "def f():\n    import os\n    from sys import path\n\nimport json\n",
    "if __name__ == '__main__':\n    main()\n",
    "with open(p) as f:\n    for line in f:\n        print(line)\n",
    "type Alias[T] = list[T]\n\ndef generic[T](x: T) -> T:\n    return x\n\nclass Box[T]:\n    pass\n",
    "lambda: (yield)\n",
    "global g\nx = [y for y in range(3) if y > 1 and y < 3]\n",
    "def broken(:\n    pass\n",
    "x = (\n",
    "if x:\npass\n",
    "print 'hello'\n",
];

fn corpus() -> Vec<(String, String)> {
    let root = common::repo_root();
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["sandbox", "tests", "scripts", "locust-compatible"] {
        collect(&root.join(dir), &mut files);
    }
    let mut site = Vec::new();
    collect(&root.join("build/guest/python-site"), &mut site);
    site.sort();
    // Every 8th file of the guest's libraries (~400 files): a spread of real code.
    files.extend(site.into_iter().step_by(8));
    let mut cases: Vec<(String, String)> = SNIPPETS
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("snippet {i}"), (*s).to_owned()))
        .collect();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if text.len() <= 200_000 {
            cases.push((file.display().to_string(), text));
        }
    }
    cases
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !path.ends_with("node_modules") {
                collect(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "py") {
            out.push(path);
        }
    }
}

/// The host's summary in the guest's JSON shape.
fn host_summary(code: &str) -> Value {
    match summarize(code) {
        Ok(s) => json!({
            "syntax_error": false,
            "functions": s.functions,
            "classes": s.classes,
            "imports": s.imports,
            "complexity": s.complexity,
            "function_complexity": s.function_complexity,
        }),
        Err(_) => json!({"syntax_error": true}),
    }
}

fn guest_summary(report: &str) -> Value {
    let report: Value = serde_json::from_str(report).expect("the guest's JSON report");
    if !report["syntax_error"].is_null() {
        return json!({"syntax_error": true});
    }
    json!({
        "syntax_error": false,
        "functions": report["functions"],
        "classes": report["classes"],
        "imports": report["imports"],
        "complexity": report["complexity"],
        "function_complexity": report["function_complexity"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_summary_is_the_guests_on_real_code() {
    let scratch = tempfile::tempdir().unwrap();
    let sandbox = common::in_process_sandbox(scratch.path(), 8, Duration::from_secs(120));
    let cases = corpus();
    assert!(cases.len() > 300, "only {} files to compare", cases.len());
    let limits = SandboxLimits {
        timeout_ms: 60_000,
        memory_bytes: 512 << 20,
        ..SandboxLimits::default()
    };
    let semaphore = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = Vec::new();
    for (name, code) in cases {
        let (sandbox, semaphore) = (sandbox.clone(), semaphore.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore.acquire().await.unwrap();
            let (output, report) = sandbox
                .lint_python(
                    &code,
                    r#"{"summary_only": true}"#,
                    limits,
                    "test",
                    &CancellationToken::new(),
                )
                .await
                .unwrap();
            let report = report.unwrap_or_else(|| panic!("{name}: guest: {}", output.stderr));
            (name, code, guest_summary(&report))
        }));
    }
    let (mut compared, mut parsed) = (0, 0);
    let mut mismatches = Vec::new();
    for task in tasks {
        let (name, code, guest) = task.await.unwrap();
        let host = host_summary(&code);
        compared += 1;
        if guest["syntax_error"] == false {
            parsed += 1;
        }
        if host != guest {
            mismatches.push(format!("{name}:\n  host  {host}\n  guest {guest}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {compared} differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(parsed > 300, "only {parsed} of {compared} parsed");
}
