//! What a switch leaves behind: the health check's verdict, an audit event per step, and the
//! new live period in the database.

use std::time::Instant;

use serde_json::json;

use super::health;
use super::live::Steps;
use super::report::{fail, Failure, Kind, Step};
use super::runner::GoLive;
use super::switch::Who;
use crate::audit::{self, Event, Outcome};
use crate::db::{self, activations};
use crate::error::code;
use crate::error::AppResult;
use crate::sites::{store as sites, Site, SwitchMode};

impl GoLive {
    /// "Apache still running": a switch whose Apache died is a failure (put back).
    pub(crate) async fn alive_step(&self, steps: &mut Steps) -> Result<(), Failure> {
        let t = Instant::now();
        let alive = self.apache.is_alive().await;
        let detail = if alive {
            "yes"
        } else {
            "Apache stopped during the switch"
        };
        steps.push("Apache still running", t, alive, detail);
        if !alive {
            return Err(fail(
                code::APACHE_DIED,
                "Apache stopped running during the switch.".into(),
                true,
            ));
        }
        Ok(())
    }

    /// The health check through Apache, recorded as a step and an audit event.
    #[tracing::instrument(skip_all, fields(site = %site.name, release = release_id))]
    pub(crate) async fn health_step(
        &self,
        site: &Site,
        release_id: &str,
        steps: &mut Steps,
        who: Who<'_>,
    ) -> Result<(), Failure> {
        let hosts = self.hosts_of(site).await?;
        if !hosts.is_empty() {
            return self.fleet_health(site, release_id, steps, &hosts).await;
        }
        let t = Instant::now();
        let header_release =
            (site.settings.switch_mode == SwitchMode::Pinned).then_some(release_id);
        // In maintenance the check goes past the 503 page to the release, with the site's key.
        let key = self.health_key(site);
        // An HTTPS site is checked over HTTPS, its certificate verified.
        let https = match &site.settings.config.tls {
            Some(tls) => Some(self.https_client(site, tls).await.map_err(|m| {
                fail(
                    code::HEALTH_CHECK_FAILED,
                    format!("The HTTPS health check could not be set up: {m}."),
                    true,
                )
            })?),
            None => None,
        };
        let (client, base) = match &https {
            Some((c, b)) => (c, b.clone()),
            None => (&self.http, self.apache.check_base()),
        };
        let verdict = health::check(
            client,
            &base,
            (&site.name, &site.settings.server_name),
            &site.settings.health_path,
            header_release,
            key.as_deref(),
            self.health_timeout,
        )
        .await;
        steps.push("health check", t, verdict.healthy, verdict.detail.clone());
        let (ok, detail) = (verdict.healthy, &verdict.detail);
        self.audit_step(who, site, release_id, "health_check", ok, detail)
            .await;
        if !verdict.healthy {
            return Err(fail(
                code::HEALTH_CHECK_FAILED,
                format!(
                    "The new release failed its health check: {}.",
                    verdict.detail
                ),
                true,
            ));
        }
        Ok(())
    }

    /// A client that reaches the site's HTTPS address under its own name (so the certificate
    /// is verified for it), trusting the public roots and the site's chain; and its base URL.
    async fn https_client(
        &self,
        site: &Site,
        tls: &crate::sites::tls::Tls,
    ) -> Result<(reqwest::Client, String), String> {
        let (_, addr) = self.apache.tls_addresses()?;
        let files: Vec<std::path::PathBuf> = tls
            .chain
            .iter()
            .chain(std::iter::once(&tls.certificate))
            .cloned()
            .collect();
        let pems = crate::blocking::spawn(move || {
            files
                .iter()
                .map(std::fs::read)
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&site.settings.server_name, addr);
        for pem in pems {
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        Ok((
            client,
            format!("https://{}:{}", site.settings.server_name, addr.port()),
        ))
    }

    /// Records one step's result. Logged, not fatal, when it cannot be written: aborting
    /// half-way through a switch would be worse.
    pub(crate) async fn audit_step(
        &self,
        (actor, source): Who<'_>,
        site: &Site,
        release_id: &str,
        action: &str,
        ok: bool,
        output: &str,
    ) {
        let outcome = if ok { Outcome::Ok } else { Outcome::Failed };
        let event = Event::new(actor, action, outcome)
            .source(source)
            .site(&site.name)
            .release(release_id)
            .detail(json!({"output": output}));
        if let Err(e) = audit::record_alone(&self.pool, &event).await {
            tracing::error!(error = ?e, "could not record {action}");
        }
    }

    /// Records the new live release: the previous activation ends, a new one starts.
    #[tracing::instrument(skip_all, fields(site = %site.name, release = release_id))]
    pub(crate) async fn record_live(
        &self,
        site: &Site,
        release_id: &str,
        kind: Kind,
        (actor, source): Who<'_>,
        steps: &[Step],
    ) -> AppResult<()> {
        let now = audit::now_text();
        let mut tx = db::begin_write(&self.pool).await?;
        activations::end_open(&mut tx, site.id, &now, kind.ends_previous_as()).await?;
        activations::insert(&mut tx, site.id, release_id, kind.as_str(), actor, &now).await?;
        sites::set_active(&mut tx, site.id, Some(release_id)).await?;
        let event = Event::new(actor, kind.as_str(), Outcome::Ok)
            .source(source)
            .site(&site.name)
            .release(release_id);
        let detail = json!({"from": site.active_release, "to": release_id, "steps": steps});
        audit::record(&mut tx, &event.detail(detail)).await?;
        tx.commit().await?;
        Ok(())
    }
}
