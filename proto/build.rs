//! Compiles the lifeos.v1 protos with protox (pure Rust: no system protoc needed).

use std::path::PathBuf;

use prost::Message as _;

const PROTOS: &[&str] = &[
    "lifeos/v1/common.proto",
    "lifeos/v1/tasks.proto",
    "lifeos/v1/history.proto",
    "lifeos/v1/admin.proto",
    "lifeos/v1/events.proto",
    "lifeos/v1/preferences.proto",
    "lifeos/v1/focus.proto",
    "lifeos/v1/calendar.proto",
    "lifeos/v1/habits.proto",
    "lifeos/v1/journal.proto",
    "lifeos/v1/finance.proto",
    "lifeos/v1/health.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("lifeos_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
