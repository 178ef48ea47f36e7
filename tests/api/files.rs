//! Issue 16, item 8: no database file is ever readable by others; a data folder anyone may
//! write to is refused.

use std::os::unix::fs::PermissionsExt;

use crate::helpers::{spawn_app, test_settings};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_database_and_its_wal_and_shm_are_private() {
    let app = spawn_app().await;
    let db = app.settings.database_path();
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        assert!(p.exists(), "{} exists while the console runs", p.display());
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}

#[tokio::test]
async fn a_world_writable_data_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(dir.path());
    std::fs::create_dir_all(&settings.data_dir).unwrap();
    std::fs::set_permissions(&settings.data_dir, PermissionsExt::from_mode(0o777)).unwrap();
    let err = cutover::app::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{err:#}").contains("writable by every user"),
        "{err:#}"
    );
}
