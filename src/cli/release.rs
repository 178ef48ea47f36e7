//! `cutover release activate|rollback`: the same switch as the web console, from a shell.
//! It takes the same per-site lock, so the CLI and `serve` never switch a site at once.

use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;

use crate::apache::ApacheCtl;
use crate::app::Core;
use crate::audit::Source;
use crate::config::Settings;
use crate::golive::{GoLive, Kind, Report};

/// `release …`
#[derive(Subcommand, Debug)]
pub enum ReleaseCommand {
    /// Put a release live.
    Activate {
        /// Site name.
        site: String,
        /// Release id.
        id: String,
    },
    /// Go back to the release live before the current one, or to `--to`.
    Rollback {
        /// Site name.
        site: String,
        /// A ready release to go back to.
        #[arg(long)]
        to: Option<String>,
    },
}

/// Runs a release command; a switch that did not happen is an error (non-zero exit).
pub async fn run(settings: &Settings, actor: &str, cmd: ReleaseCommand) -> anyhow::Result<()> {
    let core = Core::open(settings).await?;
    let golive = golive(settings, &core)?;
    let source = Source::default();
    let report = match cmd {
        ReleaseCommand::Activate { site, id } => {
            golive
                .activate(&site, &id, Kind::Activate, actor, &source)
                .await?
        }
        ReleaseCommand::Rollback { site, to } => {
            golive
                .rollback(
                    &site,
                    to.as_deref(),
                    crate::golive::Expect::Anything,
                    actor,
                    &source,
                )
                .await?
        }
    };
    print_report(&report);
    anyhow::ensure!(report.ok, "{}", report.message);
    Ok(())
}

/// The switch machinery as `serve` has it, for a command run from a shell.
pub(crate) fn golive(settings: &Settings, core: &Core) -> anyhow::Result<GoLive> {
    let golive = golive_anywhere(settings, core)?;
    if let ApacheCtl::Unavailable(why) = golive.apache.as_ref() {
        anyhow::bail!("{why}");
    }
    Ok(golive)
}

/// The switch machinery without insisting on an Apache here (sites on several hosts).
pub(crate) fn golive_anywhere(settings: &Settings, core: &Core) -> anyhow::Result<GoLive> {
    let apache = Arc::new(ApacheCtl::from_settings(settings));
    Ok(GoLive {
        pool: core.pool.clone(),
        sites_root: settings.sites_root(),
        apache,
        http: crate::golive::health::client()?,
        health_timeout: Duration::from_secs(settings.apache.health_timeout_seconds),
        php: crate::php::managed(settings),
        steps: std::sync::Arc::new(settings.step_runner(&core.pool)),
        ssh: Arc::new(settings.ssh()),
    })
}

fn print_report(r: &Report) {
    for s in &r.steps {
        println!(
            "{} {:<28} {:>6} ms  {}",
            if s.ok { "ok  " } else { "FAIL" },
            s.step,
            s.ms,
            s.detail.lines().next().unwrap_or("")
        );
    }
    println!("{}", r.message);
}
