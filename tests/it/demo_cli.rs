//! `sla-timerd demo`, the README's first command: the live path on librdkafka's mock
//! cluster, with nothing to install.

use std::process::Command;

#[test]
fn the_demo_runs_on_the_mock_cluster_and_reads_alerts_back() {
    let out = Command::new(env!("CARGO_BIN_EXE_sla-timerd"))
        .args(["demo", "--seconds", "12", "--listen", "127.0.0.1:0"])
        .output()
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("demo finished; alerts read back:"))
        .unwrap_or_else(|| panic!("no summary:\n{stdout}"));
    assert!(
        summary.contains("sla.warning"),
        "alerts came back: {summary}"
    );
}
