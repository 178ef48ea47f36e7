//! The command line (contract: serve, user add, token create, site add, audit verify; plus
//! release activate/rollback).

mod host;
mod release;
mod site;

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{Application, Core};
use crate::audit::{self, Source, Verification};
use crate::auth::password::Password;
use crate::auth::Role;
use crate::config::Settings;

/// Release websites that Apache serves, safely.
#[derive(Parser, Debug)]
#[command(name = "cutover", version)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "CUTOVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Sub-commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the console until SIGINT/SIGTERM.
    Serve,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage sites.
    #[command(subcommand)]
    Site(SiteCommand),
    /// Put releases live, roll back.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The web servers of sites served by several hosts.
    #[command(subcommand)]
    Host(host::HostCommand),
    /// Print Cutover's SSH public key and the `authorized_keys` line for hosts.
    SshKey,
}

/// `site …`
#[derive(Subcommand, Debug)]
pub enum SiteCommand {
    /// Create a site.
    Add {
        /// Short name (lower-case letters, digits, hyphens).
        name: String,
        /// The host name visitors use.
        #[arg(long)]
        server_name: String,
        /// Another host name (repeatable; `*.example.org` allowed).
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// Usable releases kept on disk.
        #[arg(long)]
        keep: Option<u32>,
        /// `pinned` (default) or `symlink`.
        #[arg(long = "switch")]
        switch_mode: Option<String>,
        /// Path checked after going live (default `/`).
        #[arg(long)]
        health_path: Option<String>,
        /// Folder shared by all releases (repeatable).
        #[arg(long = "shared")]
        shared_paths: Vec<String>,
        /// `static` (default) or `php`.
        #[arg(long)]
        runtime: Option<String>,
    },
    /// Change settings: `--field value` pairs, as the API's PATCH (e.g. `--options '["Indexes"]'`).
    Set {
        /// Site name.
        name: String,
        /// `--field value` pairs.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        fields: Vec<String>,
    },
}

/// `user …`
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user.
    Add {
        /// User name.
        name: String,
        /// viewer, operator, deployer or admin.
        #[arg(long)]
        role: Role,
        /// Read the password from standard input (one line). Without it, one is generated and printed.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `token …`
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token for a user; it is printed alone on the last line.
    Create {
        /// The user the token acts as.
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        label: String,
        /// The token stops working after this many days (default: never).
        #[arg(long)]
        expires_days: Option<u32>,
    },
}

/// `audit …`
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the audit log's hash chain, its triggers and its start (and checkpoints, if given).
    Verify {
        /// A checkpoint `ID:HASH` (from `audit checkpoint`) the log must still contain (repeatable).
        #[arg(long = "checkpoint")]
        checkpoints: Vec<crate::audit::checkpoint::Checkpoint>,
        /// A file of checkpoints, e.g. the console's `[audit] checkpoint_file` (repeatable).
        #[arg(long = "checkpoint-file")]
        files: Vec<PathBuf>,
    },
    /// Print the newest event's `ID:HASH`, to keep outside this machine.
    Checkpoint,
}

impl std::str::FromStr for Box<Role> {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<Role>().map(Box::new)
    }
}

/// `cli:<unix user>`, the audit actor of CLI commands.
fn cli_actor() -> String {
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid{uid}"));
    format!("cli:{name}")
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::User(UserCommand::Add {
            name,
            role,
            password_stdin,
        }) => {
            let core = Core::open(&settings).await?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                Some(Password::new(
                    line.trim_end_matches(['\n', '\r']).to_owned(),
                ))
            } else {
                None
            };
            let generated = core
                .auth
                .create_user(&cli_actor(), &Source::default(), &name, role, password)
                .await?;
            println!(
                "created user {} with role {role}",
                name.trim().to_lowercase()
            );
            if let Some(p) = generated {
                println!("generated password (shown once; to be changed at first log-in):\n{p}");
            }
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            name,
            label,
            expires_days,
        }) => {
            let core = Core::open(&settings).await?;
            let token = core
                .auth
                .create_token_expiring(
                    &cli_actor(),
                    &Source::default(),
                    &name,
                    &label,
                    expires_days,
                )
                .await?;
            if let Some(d) = expires_days {
                println!("The token expires in {d} days.");
            }
            println!(
                "API token for {} (label {label}); it is shown only this once:",
                name.trim().to_lowercase()
            );
            println!("{token}");
            Ok(())
        }
        Command::Site(SiteCommand::Add {
            name,
            server_name,
            aliases,
            keep,
            switch_mode,
            health_path,
            shared_paths,
            runtime,
        }) => {
            let core = Core::open(&settings).await?;
            let name = crate::sites::parse_name(&name)?;
            let input = crate::sites::SettingsInput {
                server_name: Some(server_name),
                aliases,
                keep_releases: keep,
                switch_mode,
                health_path,
                shared_paths,
                runtime,
                ..Default::default()
            };
            let site = crate::sites::store::create(
                &core.pool,
                &settings.sites_root(),
                &cli_actor(),
                &Source::default(),
                &name,
                &input
                    .validate(&crate::sites::SitePaths::new(&settings.sites_root(), &name).dir)?,
            )
            .await?;
            println!(
                "created site {} ({}), folder {}",
                site.name,
                site.settings.server_name,
                settings.sites_root().join(&site.name).display()
            );
            // System mode: names another VirtualHost serves are warned about, as in the console.
            if settings.apache.mode == crate::config::ApacheMode::System {
                let apache = crate::apache::ApacheCtl::from_settings(&settings);
                for w in apache.check_names(&site.name, &site.settings.names()).await {
                    eprintln!("warning: {w}");
                }
            }
            Ok(())
        }
        Command::Release(cmd) => release::run(&settings, &cli_actor(), cmd).await,
        Command::Host(cmd) => host::run(&settings, &cli_actor(), cmd).await,
        Command::SshKey => host::ssh_key(&settings).await,
        Command::Site(SiteCommand::Set { name, fields }) => {
            site::set(&settings, &cli_actor(), &name, &fields).await
        }
        Command::Audit(AuditCommand::Verify {
            mut checkpoints,
            files,
        }) => {
            for f in &files {
                checkpoints.extend(audit::checkpoint::read_file(f)?);
            }
            let core = Core::open(&settings).await?;
            match audit::verify_against(&core.pool, &checkpoints).await? {
                Verification::Intact { events } if checkpoints.is_empty() => {
                    println!("audit log intact, {events} events");
                    Ok(())
                }
                Verification::Intact { events } => {
                    let newest = checkpoints.iter().map(|c| c.id).max().unwrap_or(0);
                    println!(
                        "audit log intact, {events} events; it holds all {} checkpoints (the newest at event {newest})",
                        checkpoints.len()
                    );
                    Ok(())
                }
                Verification::Broken { at_id: 0, reason } => {
                    anyhow::bail!("audit log broken: {reason}")
                }
                Verification::Broken { at_id, reason } => {
                    anyhow::bail!("audit log broken at event {at_id}: {reason}")
                }
            }
        }
        Command::Audit(AuditCommand::Checkpoint) => {
            let core = Core::open(&settings).await?;
            let head = audit::checkpoint::current(&core.pool)
                .await?
                .context("the audit log is empty")?;
            println!("audit checkpoint (keep it elsewhere; check with audit verify --checkpoint):");
            println!("{head}");
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let url = format!("http://{}", app.addr());
    if let Some(password) = app.first_run_password() {
        println!("First run: created the user 'admin' with this password (shown only now):");
        println!("    {password}");
        println!("Log in at {url}/login as admin; you will be asked to choose your own password.");
    }
    for w in &app.warnings {
        println!("Warning: {w}");
    }
    let apache = app.apache();
    if apache.is_alive().await {
        println!(
            "Apache (private, managed by Cutover) serves the sites at {}/",
            apache.check_base()
        );
    }
    // Printed last: scripts wait for this line to know the console is up.
    println!("Cutover is running at {url}/");
    app.run_until_stopped().await
}
