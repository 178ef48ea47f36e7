//! Issue 16, item 13: the per-mode systemd units parse (`systemd-analyze verify`, when the
//! machine has it; where it does not, README says the units are untested by it).

use crate::helpers::cutover_bin;

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
    else {
        println!("systemd-analyze is not installed: the units were not checked");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd");
    for name in ["cutover-managed.service", "cutover-system.service"] {
        // Verify checks that ExecStart's program exists: point it at the binary we built.
        let text = std::fs::read_to_string(units.join(name)).unwrap();
        let text = text.replace("/usr/local/bin/cutover", cutover_bin().to_str().unwrap());
        let unit = dir.path().join(name);
        std::fs::write(&unit, text).unwrap();
        let out = std::process::Command::new(analyze)
            .arg("verify")
            .arg(&unit)
            .env("SYSTEMD_LOG_LEVEL", "warning")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        // Only what concerns our unit: the host's own units may have problems of their own.
        let ours: Vec<&str> = said.lines().filter(|l| l.contains(name)).collect();
        println!(
            "systemd-analyze verify {name}: {}",
            if ours.is_empty() {
                "clean"
            } else {
                "see below"
            }
        );
        assert!(ours.is_empty(), "{}", ours.join("\n"));
    }
}
