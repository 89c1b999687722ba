//! `SANDGRAPH_GUEST_REQUIREMENTS`: an operator's own hash-pinned requirements file,
//! built into the Python guest by `sandbox/build.sh` (what `make guest` runs). Each test
//! runs the real build into its own directory under target/ (a later run of an
//! unchanged build is skipped by the build's own BUILD_ID check), then, for the build
//! that succeeds, serves it and imports the package in the guest.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{TestServer, repo_root};
use serde_json::json;

/// Run `sandbox/build.sh OUT` with `requirements` as the operator's extra file.
fn build_guest(out: &Path, requirements: &Path) -> Output {
    Command::new(repo_root().join("sandbox/build.sh"))
        .arg(out)
        .env("SANDGRAPH_GUEST_REQUIREMENTS", requirements)
        .current_dir(repo_root())
        .output()
        .expect("running sandbox/build.sh")
}

fn out_dir(name: &str) -> PathBuf {
    repo_root().join("target/test-guest-builds").join(name)
}

#[test]
fn an_operator_package_with_native_code_fails_the_guest_build_naming_it() {
    let out = out_dir("native-extra");
    let built = build_guest(
        &out,
        &repo_root().join("tests/guest-requirements/native-extra.txt"),
    );
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(!built.status.success(), "the build succeeded: {stderr}");
    assert!(
        stderr.contains("error: package msgpack 1.2.4 ships native code (msgpack/"),
        "{stderr}"
    );
    assert!(stderr.contains("runs only pure-Python wheels"), "{stderr}");
    // No BUILD_ID: nothing half-built is taken for a guest a server could load.
    assert!(!out.join("BUILD_ID").exists());
}

#[tokio::test]
async fn an_operator_pure_python_package_becomes_importable_and_listed() {
    let out = out_dir("pure-extra");
    let requirements = repo_root().join("tests/guest-requirements/pure-extra.txt");
    let built = tokio::task::spawn_blocking({
        let out = out.clone();
        move || build_guest(&out, &requirements)
    })
    .await
    .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let guest_dir = out.to_str().unwrap();
    let server = TestServer::spawn_with(&[("SANDGRAPH_GUEST_DIR", guest_dir)]);
    let result = server
        .python(
            "import humanize\n\
             print(humanize.intcomma(1234567), humanize.naturalsize(3_000_000), humanize.ordinal(22))\n",
        )
        .await;
    assert_eq!(result["exit_reason"], "ok", "{result}");
    assert_eq!(result["stdout"], "1,234,567 3.0 MB 22nd\n");
    let listed = server.get_json("/packages?language=python").await;
    let humanize = listed["python"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "humanize")
        .unwrap_or_else(|| panic!("humanize not listed: {listed}"))
        .clone();
    assert_eq!(humanize["version"], "4.17.0");
    assert_eq!(humanize["modules"], json!(["humanize"]));
    assert_eq!(
        humanize["requirements"],
        "tests/guest-requirements/pure-extra.txt"
    );
    // The curated set is still there beside it.
    let names = listed["python"]["packages"].to_string();
    assert!(names.contains("\"sympy\""), "{listed}");
}
