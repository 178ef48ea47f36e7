//! HTTPS for a site: where its certificate and key are, and the checks made before a switch
//! (the files exist and parse, the key matches the certificate, the certificate covers every
//! name of the site and is in date). Works the same with certificates from certbot
//! (`/etc/letsencrypt/live/<name>/fullchain.pem` + `privkey.pem`) or mod_md's store.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// Days before expiry from which the site page warns.
pub const WARN_DAYS: i64 = 21;

/// A site's HTTPS settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate (a full chain is fine).
    pub certificate: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM intermediate certificates, when not in `certificate`.
    #[serde(default)]
    pub chain: Option<PathBuf>,
    /// Port 80 answers 301 to the https address.
    #[serde(default)]
    pub redirect_http: bool,
    /// `Strict-Transport-Security: max-age=31536000` on HTTPS answers.
    #[serde(default)]
    pub hsts: bool,
}

/// What the certificate check found.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// RFC 3339 end of validity.
    pub not_after: String,
    /// Whole days left (negative once expired).
    pub days_left: i64,
}

impl Tls {
    /// The paths are ones Cutover writes into Apache's configuration.
    pub fn check_paths(&self) -> Result<(), String> {
        let paths = [
            ("certificate", Some(&self.certificate)),
            ("key", Some(&self.key)),
            ("chain", self.chain.as_ref()),
        ];
        for (what, p) in paths {
            if let Some(p) = p {
                crate::apache::validate::config_path(p, &format!("TLS {what} file"))
                    .map_err(|m| format!("tls.{what}: {m}"))?;
            }
        }
        Ok(())
    }

    /// Reads and checks the files of a site answering to `names` (off the async threads);
    /// `None` for a site without HTTPS.
    pub async fn check_site(
        tls: Option<&Tls>,
        names: Vec<String>,
    ) -> Option<Result<CertInfo, String>> {
        let tls = tls?.clone();
        let checked = crate::blocking::spawn(move || tls.check_files(&names)).await;
        Some(checked.unwrap_or_else(|e| Err(format!("The certificate check stopped: {e}."))))
    }

    /// Reads and checks the files for a site answering to `names` (blocking file work).
    pub fn check_files(&self, names: &[String]) -> Result<CertInfo, String> {
        self.check_paths()?;
        let certs = read_certs(&self.certificate, "certificate")?;
        if let Some(chain) = &self.chain {
            read_certs(chain, "chain")?;
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| {
            format!("tls.key: {} could not be read as a PEM private key ({e}). Check the path and that the console may read it.", self.key.display())
        })?;
        let leaf = &certs[0];
        let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| {
            format!(
                "tls.certificate: {} is not a certificate Cutover can read ({e}).",
                self.certificate.display()
            )
        })?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
            format!(
                "tls.key: {} is not a key type Apache and Cutover support ({e}).",
                self.key.display()
            )
        })?;
        let matches = signing
            .public_key()
            .is_some_and(|spki| spki.as_ref() == cert.tbs_certificate.subject_pki.raw);
        if !matches {
            return Err(format!(
                "tls.key: the key {} does not belong to the certificate {}: Apache would refuse to start. Give the key that was made with this certificate.",
                self.key.display(),
                self.certificate.display()
            ));
        }
        let covered = covered_names(&cert);
        for name in names {
            if !covered.iter().any(|c| covers(c, name)) {
                return Err(format!(
                    "tls.certificate: the certificate does not cover {name} (it covers {}). Browsers would refuse it: get a certificate for every name of the site, or remove the name.",
                    if covered.is_empty() { "no name".into() } else { covered.join(", ") }
                ));
            }
        }
        let end = cert.validity().not_after.to_datetime();
        let days_left = (end - time::OffsetDateTime::now_utc()).whole_days();
        let not_after = end
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        if days_left < 0 {
            return Err(format!("tls.certificate: the certificate expired on {not_after}. Renew it (certbot renew), then try again."));
        }
        Ok(CertInfo {
            not_after,
            days_left,
        })
    }
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls.{what}: {} could not be read as PEM certificates ({e}). Check the path and that the console may read it.", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls.{what}: {} holds no certificate.",
            path.display()
        ));
    }
    Ok(certs)
}

/// The DNS names a certificate is for (its SANs; its CN only when it has none).
fn covered_names(cert: &x509_parser::certificate::X509Certificate) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|g| match g {
                GeneralName::DNSName(n) => Some(n.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_ascii_lowercase))
            .collect();
    }
    names
}

/// Whether certificate name `pattern` covers host `name` (a `*.` wildcard covers one label).
fn covers(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(base) => name.strip_prefix("*.").map_or_else(
            || name.split_once('.').is_some_and(|(_, rest)| rest == base),
            |wild| wild == base,
        ),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use crate::sites::tls::covers;

    #[test]
    fn a_wildcard_covers_one_label_only() {
        assert!(covers("*.example.org", "www.example.org"));
        assert!(covers("*.example.org", "*.example.org"));
        assert!(!covers("*.example.org", "example.org"));
        assert!(!covers("*.example.org", "a.b.example.org"));
        assert!(covers("example.org", "example.org"));
        assert!(!covers("example.org", "www.example.org"));
    }
}
