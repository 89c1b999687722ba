//! Each setting is defined once (`sandgraph::config::SETTINGS`): `--help` lists every
//! one, `docs/configuration.md` is its generated form, and no environment variable is
//! read anywhere in the source without being in the table.

mod common;

use std::process::Command;

use sandgraph::config::SETTINGS;

fn sandgraph(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sandgraph"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_lists_every_setting_the_config_accepts() {
    let help = sandgraph(&["--help"]);
    for setting in SETTINGS {
        assert!(help.contains(setting.env), "--help lacks {}", setting.env);
    }
    for endpoint in sandgraph::auth::Endpoint::ALL {
        assert!(
            help.contains(endpoint.name()),
            "--help does not name the rate-limit endpoint {}",
            endpoint.name()
        );
    }
}

#[test]
fn docs_configuration_md_is_the_generated_table() {
    let generated = sandgraph(&["settings", "--markdown"]);
    let committed =
        std::fs::read_to_string(common::repo_root().join("docs/configuration.md")).unwrap();
    assert_eq!(
        committed, generated,
        "docs/configuration.md is stale: run `sandgraph settings --markdown > docs/configuration.md`"
    );
}

/// Every quoted upper-case `SANDGRAPH_*` / `NEO4J_*` name in the source is a setting, so a
/// variable read outside the table (and missing from --help) fails here.
#[test]
fn no_environment_variable_is_read_outside_the_table() {
    let mut unknown = Vec::new();
    let mut stack = vec![common::repo_root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, _) in text.match_indices('"') {
                let rest = &text[i + 1..];
                let name: String = rest
                    .chars()
                    .take_while(|c| {
                        c.is_ascii_uppercase()
                            || c.is_ascii_digit()
                            || *c == '_'
                            || *c == '<'
                            || *c == '>'
                    })
                    .collect();
                let is_env = name.starts_with("SANDGRAPH_") || name.starts_with("NEO4J_");
                let per_endpoint = sandgraph::auth::Endpoint::ALL.iter().any(|e| {
                    name == format!("SANDGRAPH_RATE_LIMIT_{}", e.name().to_ascii_uppercase())
                });
                if is_env
                    && !per_endpoint
                    && rest[name.len()..].starts_with('"')
                    && !SETTINGS.iter().any(|s| s.env == name)
                {
                    unknown.push(format!("{}: {name}", path.display()));
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "environment variables outside config::SETTINGS: {unknown:?}"
    );
}
