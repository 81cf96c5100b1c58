//! docker-compose.yml documents the scale deployment; Docker does not run here, so this checks
//! that every `lifeos` flag and `LIFEOS_*` variable it uses exists in the binary's `--help`, and
//! that the role lists parse.

use std::collections::BTreeSet;
use std::process::Command;

use lifeos::config::Roles;
use yaml_rust2::{Yaml, YamlLoader};

/// A mapping with YAML merge keys (`<<: *anchor`) resolved, outer keys winning.
fn merged(node: &Yaml) -> Vec<(String, Yaml)> {
    let Yaml::Hash(map) = node else {
        return Vec::new();
    };
    let mut out: Vec<(String, Yaml)> = Vec::new();
    if let Some(base) = map.get(&Yaml::String("<<".into())) {
        out = merged(base);
    }
    for (key, value) in map {
        let Some(key) = key.as_str() else { continue };
        if key == "<<" {
            continue;
        }
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value.clone()));
    }
    out
}

fn get<'a>(entries: &'a [(String, Yaml)], key: &str) -> Option<&'a Yaml> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn help(subcommand: &str) -> String {
    let args: &[&str] = if subcommand.is_empty() {
        &["--help"]
    } else {
        &[subcommand, "--help"]
    };
    let out = Command::new(env!("CARGO_BIN_EXE_lifeos"))
        .args(args)
        .output()
        .expect("run lifeos --help");
    assert!(out.status.success(), "lifeos {subcommand} --help failed");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

#[test]
fn compose_uses_only_real_flags_and_variables() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .expect("docker-compose.yml at the repository root");
    let doc = &YamlLoader::load_from_str(&text).expect("valid YAML")[0];
    let services = merged(&doc["services"]);
    let mut checked = BTreeSet::new();
    let top_help = help("");
    for (name, service) in &services {
        let service = merged(service);
        if get(&service, "image").and_then(Yaml::as_str) != Some("lifeos:latest") {
            continue;
        }
        let command: Vec<String> = get(&service, "command")
            .and_then(Yaml::as_vec)
            .unwrap_or_else(|| panic!("{name}: a command list"))
            .iter()
            .map(|a| a.as_str().expect("string args").to_string())
            .collect();
        let subcommand = &command[0];
        let help = help(subcommand);
        for (i, arg) in command.iter().enumerate().skip(1) {
            if let Some(flag) = arg.strip_prefix("--") {
                let flag = flag.split('=').next().unwrap();
                assert!(
                    help.contains(&format!("--{flag} ")) || help.contains(&format!("--{flag}\n")),
                    "{name}: `lifeos {subcommand}` has no flag --{flag}"
                );
                if flag == "roles" {
                    command[i + 1]
                        .parse::<Roles>()
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                }
                checked.insert(format!("--{flag}"));
            }
        }
        let env = merged(get(&service, "environment").expect("environment"));
        for (var, value) in &env {
            if !var.starts_with("LIFEOS_") {
                continue;
            }
            assert!(
                help.contains(&format!("[env: {var}")) || top_help.contains(var.as_str()),
                "{name}: `lifeos {subcommand}` reads no variable {var}"
            );
            if var == "LIFEOS_ROLES" {
                value
                    .as_str()
                    .expect("roles text")
                    .parse::<Roles>()
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            checked.insert(var.clone());
        }
    }
    // the file really exercises the scale flags
    for needed in [
        "--roles",
        "--listen",
        "LIFEOS_DATABASE_URL",
        "LIFEOS_NATS_URL",
        "LIFEOS_JWT_SECRET",
        "LIFEOS_ROLES",
    ] {
        assert!(
            checked.contains(needed),
            "docker-compose.yml no longer uses {needed}"
        );
    }
}

#[test]
fn serve_documents_the_scale_settings() {
    let serve = help("serve");
    for var in [
        "LIFEOS_NATS_URL",
        "LIFEOS_ROLES",
        "LIFEOS_DATABASE_URL",
        "LIFEOS_JWT_SECRET",
    ] {
        assert!(
            serve.contains(&format!("[env: {var}")),
            "serve --help lacks {var}"
        );
    }
    assert!(
        help("").contains("LIFEOS_LOG"),
        "--help documents LIFEOS_LOG"
    );
}
