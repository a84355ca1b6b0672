//! Generates the tonic/prost code for `ha.proto`.
//!
//! Uses the protoc shipped in the `protoc-bin-vendored` crate unless `PROTOC` is already set, so
//! a fresh machine needs no system protobuf compiler and no network.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: build scripts are single-threaded; nothing else reads the environment now.
        unsafe { std::env::set_var("PROTOC", protoc) };
    }
    println!("cargo:rerun-if-changed=ha.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["ha.proto"], &["."])?;
    Ok(())
}
