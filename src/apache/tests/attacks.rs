//! Attack strings through every field of the VirtualHost template.

use std::path::PathBuf;

use super::super::vhost::{render, VhostSpec};
use super::validation::Clean;

/// Each line's directive keyword (or "#" for comments), in order.
fn skeleton(config: &str) -> Vec<String> {
    config
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .map(|k| {
            if k.starts_with('#') {
                "#".to_string()
            } else {
                k
            }
        })
        .collect()
}

#[test]
fn attack_strings_in_every_field_never_change_the_directives() {
    let attacks = [
        "x\nCustomLog \"|/bin/sh -c id\" combined",
        "x\r\nInclude /etc/passwd",
        "x\\",
        "x\"y",
        "${VAR}",
        "</VirtualHost>",
        "x\0y",
        "x\u{2028}y",
        "x y",
        "%{ENV}",
        "..",
        "x\n",
        "\u{85}x",
        "#x",
        "<Directory />",
        "x\tRequire all granted",
    ];
    let clean = Clean::new();
    let base = clean.spec();
    let template = render(&base).unwrap();
    let (want, want_lines) = (skeleton(&template), template.lines().count());
    let mut refused = 0;
    let mut tried = 0;
    for a in attacks {
        let host = format!("shop.test{a}");
        let alias_list = vec!["www.shop.test".to_string(), a.to_string()];
        let doc = PathBuf::from(format!("/srv/sites/shop/releases/{a}"));
        let site = PathBuf::from(format!("/srv/{a}/shop"));
        let logs = PathBuf::from(format!("/var/log/{a}"));
        let variants = [
            VhostSpec { site: a, ..base },
            VhostSpec {
                server_name: a,
                ..base
            },
            VhostSpec {
                server_name: &host,
                ..base
            },
            VhostSpec {
                aliases: &alias_list,
                ..base
            },
            VhostSpec {
                document_root: &doc,
                release: None,
                ..base
            },
            VhostSpec {
                document_root: &doc,
                release: Some(a),
                ..base
            },
            VhostSpec {
                release: Some(a),
                ..base
            },
            VhostSpec {
                site_dir: &site,
                ..base
            },
            VhostSpec {
                log_dir: &logs,
                ..base
            },
        ];
        for (field, spec) in variants.iter().enumerate() {
            tried += 1;
            match render(spec) {
                Err(e) => {
                    refused += 1;
                    // Messages are one line of plain text, safe to show anywhere.
                    assert!(
                        !e.is_empty() && !e.contains('\n') && !e.contains('\0'),
                        "{e:?}"
                    );
                }
                Ok(text) => {
                    assert_eq!(
                        skeleton(&text),
                        want,
                        "field {field}, attack {a:?}:\n{text}"
                    );
                    assert_eq!(
                        text.lines().count(),
                        want_lines,
                        "field {field}, attack {a:?}"
                    );
                    assert!(!text.contains(['\0', '\r', '\u{2028}', '\u{85}', '\\', '$', '%']));
                }
            }
        }
    }
    // Every one of these is refused outright by the allow-lists.
    assert_eq!(refused, tried);
    assert_eq!(tried, attacks.len() * 9);
}
