//! `cutover site set SITE --field value…`: the settings API's PATCH from a shell, through the
//! same checked switch (a refused change stores nothing and exits non-zero).

use crate::app::Core;
use crate::audit::Source;
use crate::config::Settings;
use crate::sites::{self, store, SitePaths};

/// `--field value` pairs as a JSON patch: `--allow-override all` → `"allow_override": "all"`.
/// A value that is JSON (`true`, `300`, `["Indexes"]`, `{"settings": …}`) is taken as such,
/// anything else as text.
pub fn patch_from_args(
    args: &[String],
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut patch = serde_json::Map::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(name) = flag.strip_prefix("--") else {
            anyhow::bail!("expected --field value pairs (e.g. --runtime php), found {flag:?}");
        };
        let Some(value) = it.next() else {
            anyhow::bail!("--{name} needs a value");
        };
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.clone()));
        patch.insert(name.replace('-', "_"), value);
    }
    anyhow::ensure!(
        !patch.is_empty(),
        "name at least one setting to change, e.g. --runtime php"
    );
    Ok(patch)
}

/// Changes the named settings of `site`.
pub async fn set(
    settings: &Settings,
    actor: &str,
    site: &str,
    args: &[String],
) -> anyhow::Result<()> {
    let patch = patch_from_args(args)?;
    let core = Core::open(settings).await?;
    let golive = super::release::golive(settings, &core)?;
    let current = store::get(&core.pool, site).await?;
    let merged = sites::merge_patch(&current.settings, patch)?;
    let dir = SitePaths::new(&settings.sites_root(), &current.name).dir;
    let new = sites::from_json(merged)?.validate(&dir)?;
    let changed = golive
        .change_settings(&current.name, new, actor, &Source::default())
        .await?;
    println!("{}", serde_json::to_string_pretty(&changed)?);
    Ok(())
}
