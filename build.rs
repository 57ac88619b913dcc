//! Records the git revision the binary is built from, for
//! `model_exporter_build_info{revision}`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MODEL_EXPORTER_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    if std::env::var_os("MODEL_EXPORTER_REVISION").is_some() {
        return;
    }
    let rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    if let Some(rev) = rev {
        println!("cargo:rustc-env=MODEL_EXPORTER_REVISION={rev}");
    }
}
