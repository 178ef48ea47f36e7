//! `cutover host add|list|remove|confirm` and `cutover ssh-key`: a site's hosts from a shell,
//! through the same checks as the API (key scanned and pinned, the fingerprint confirmed).

use clap::Subcommand;

use crate::app::Core;
use crate::audit::Source;
use crate::config::Settings;
use crate::hosts::HostInput;

/// `host …`
#[derive(Subcommand, Debug)]
pub enum HostCommand {
    /// Add a host to a site; its key's fingerprint is shown, to confirm (or give --fingerprint).
    Add {
        /// The site.
        site: String,
        /// The host's short name (web1).
        name: String,
        /// `user@address[:port]`.
        #[arg(long)]
        ssh: String,
        /// The site's folder on the host (ends in /<site>).
        #[arg(long)]
        dir: String,
        /// The host's vhost folder (default /etc/apache2/sites-enabled).
        #[arg(long)]
        vhost_dir: Option<String>,
        /// The host's Apache log folder (default /var/log/apache2).
        #[arg(long)]
        log_dir: Option<String>,
        /// configtest as a JSON array (default ["apache2ctl","configtest"]).
        #[arg(long)]
        configtest: Option<String>,
        /// reload as a JSON array (default ["apache2ctl","graceful"]).
        #[arg(long)]
        reload: Option<String>,
        /// Where the health check reaches it (default http://<address>).
        #[arg(long)]
        check_url: Option<String>,
        /// The fingerprint read on the host: confirms it at once when it matches.
        #[arg(long)]
        fingerprint: Option<String>,
    },
    /// Confirm a host's key by its fingerprint.
    Confirm {
        /// The site.
        site: String,
        /// The host.
        name: String,
        /// `SHA256:…`, as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it on the host.
        fingerprint: String,
    },
    /// List a site's hosts: what each serves, its key, any drift.
    List {
        /// The site.
        site: String,
    },
    /// Remove a host from a site (the site is taken off it; its releases stay there).
    Remove {
        /// The site.
        site: String,
        /// The host.
        name: String,
    },
}

fn argv(field: &str, text: Option<String>) -> anyhow::Result<Option<Vec<String>>> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            anyhow::anyhow!(
                "--{field}: give a JSON array of words, like [\"apache2ctl\",\"configtest\"] ({e})"
            )
        })
    })
    .transpose()
}

/// Runs a `host` command as `actor`.
pub async fn run(settings: &Settings, actor: &str, cmd: HostCommand) -> anyhow::Result<()> {
    let core = Core::open(settings).await?;
    let golive = super::release::golive_anywhere(settings, &core)?;
    let source = Source::default();
    let who = (actor, &source);
    let added = match cmd {
        HostCommand::Add {
            site,
            name,
            ssh,
            dir,
            vhost_dir,
            log_dir,
            configtest,
            reload,
            check_url,
            fingerprint,
        } => {
            let input = HostInput {
                name,
                ssh,
                dir,
                vhost_dir,
                log_dir,
                configtest: argv("configtest", configtest)?,
                reload: argv("reload", reload)?,
                check_url,
                fingerprint,
                php: None,
            };
            golive.add_host(&site, input, who).await?
        }
        HostCommand::Confirm {
            site,
            name,
            fingerprint,
        } => golive.confirm_host(&site, &name, &fingerprint, who).await?,
        HostCommand::List { site } => {
            let site = crate::sites::store::get(&core.pool, &site).await?;
            for h in crate::hosts::store::list(&core.pool, site.id).await? {
                let state = if h.confirmed {
                    "confirmed"
                } else {
                    "NOT CONFIRMED"
                };
                let serving = h.serving.as_deref().unwrap_or("nothing");
                println!(
                    "{:<12} {:<28} {state:<14} serves {serving:<22} key {}",
                    h.name, h.ssh, h.fingerprint
                );
                if let Some(d) = &h.drift {
                    println!("             drift: {d}");
                }
            }
            return Ok(());
        }
        HostCommand::Remove { site, name } => {
            if let Some(w) = golive.remove_host(&site, &name, who).await? {
                eprintln!("warning: {w}");
            }
            println!("removed host {name} from {site}");
            return Ok(());
        }
    };
    let h = &added.host;
    println!("host {} ({}) of the site", h.name, h.ssh);
    println!("its SSH host key: {}", h.fingerprint);
    if !h.confirmed {
        println!("not confirmed yet: check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run");
        println!("    cutover host confirm SITE {} {}", h.name, h.fingerprint);
    }
    match &added.serving_live {
        Some(Ok(())) => println!("it now serves the live release"),
        Some(Err(why)) => anyhow::bail!("{why}"),
        None => {}
    }
    println!("on the host, add this line to the login user's ~/.ssh/authorized_keys:");
    println!("{}", added.authorized_keys);
    Ok(())
}

/// Prints the console's public key and the `authorized_keys` line for hosts.
pub async fn ssh_key(settings: &Settings) -> anyhow::Result<()> {
    let ssh = settings.ssh();
    println!("Cutover's SSH public key:");
    println!("{}", ssh.public_key().await?);
    println!("On each host, add this line to the login user's ~/.ssh/authorized_keys:");
    println!("{}", ssh.authorized_keys_line().await?);
    Ok(())
}
