//! Generates the gRPC client stubs from the Baton protos: the only thing this
//! program shares with the server. BATON_PROTO_DIR overrides where they are
//! (default: the repository's proto/ folder); PROTOC, the protoc binary.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::var("BATON_PROTO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("../../../proto"));
    let dir = root.join("baton/v1");
    let mut protos: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    protos.sort();
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(&protos, &[root])?;
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo:rerun-if-env-changed=BATON_PROTO_DIR");
    Ok(())
}
