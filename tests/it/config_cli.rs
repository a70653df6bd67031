//! Settings from the outside: every command reads the file and the environment the same
//! way, names the variable at fault, and never prints a secret.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_sla-timerd");

/// Runs the binary with `env` on top of this process's environment, minus any
/// `SLA_TIMERD__` variable of its own. `run` gets a free port and stops after 20 s.
fn sla_timerd(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("timeout");
    c.arg("20").arg(BIN).args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SLA_TIMERD__") {
            c.env_remove(name);
        }
    }
    c.env("SLA_TIMERD__HTTP__LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied());
    c.output().expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bootstrap_list_that_is_not_host_port_stops_run_at_start_up() {
    for servers in [
        "127.0.0.1:notaport",
        "127.0.0.1:99999",
        "kafka://127.0.0.1:29092",
        ",,; ;",
    ] {
        let out = sla_timerd(
            &["run"],
            &[("SLA_TIMERD__KAFKA__BOOTSTRAP_SERVERS", servers)],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{servers}: {err}");
        let named = "kafka.bootstrap_servers: ";
        assert!(
            err.contains(named) && err.contains("write host:port entries separated by commas"),
            "{err}"
        );
    }
}
