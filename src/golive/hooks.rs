//! The site's own commands inside a switch: `before_switch` after configtest (a failure leaves
//! the live site untouched), `after_switch` after the reload and before the health check (a
//! failure puts the previous release back, as a failed health check does).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::live::Steps;
use super::report::{fail, CommandStep, Failure, Kind, Step};
use super::runner::GoLive;
use super::switch::Who;
use crate::error::code;
use crate::sites::{Site, SitePaths};
use crate::steps::run::{tail, Output};
use crate::steps::runner::Job;
use crate::steps::Stage;

/// Characters of a command's output the switch's answer carries (its record keeps more).
pub const REPORT_TAIL_CHARS: usize = 4000;

/// Whether a switch of `kind` runs the site's switch steps, and with which previous release.
pub fn runs_steps(site: &Site, kind: Kind) -> bool {
    let steps = &site.settings.config.steps;
    let any = !steps.before_switch.is_empty() || !steps.after_switch.is_empty();
    any && (kind == Kind::Activate || site.settings.config.rollback_runs_steps)
}

impl GoLive {
    /// Runs `stage`'s commands for `release_id` in order, stopping at the first that fails.
    /// `switched`: whether a failure must put the previous release back.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn stage(
        &self,
        site: &Site,
        paths: &SitePaths,
        release_id: &str,
        stage: Stage,
        steps: &mut Steps,
        who: Who<'_>,
        switched: bool,
    ) -> Result<(), Failure> {
        let job = Job {
            site,
            paths,
            release: release_id,
            previous: site.active_release.as_deref(),
            stage,
            actor: who.0,
            source: who.1,
        };
        for command in site.settings.config.steps.of(stage) {
            let t = Instant::now();
            let name = format!("{}: {}", stage.as_str(), crate::steps::show_line(command));
            let output = Arc::new(Mutex::new(Output::new(
                self.steps.settings.max_output_bytes,
            )));
            if let Some(live) = &steps.1 {
                live.running(&name, output.clone());
            }
            let result = self.steps.run(&job, command, output).await;
            let ok = result.outcome == crate::steps::run::Outcome::Ok;
            steps.add(Step {
                step: name.clone(),
                ok,
                ms: t.elapsed().as_millis() as u64,
                detail: result.summary.clone(),
                command: Some(CommandStep {
                    stage: stage.as_str(),
                    command: command.clone(),
                    exit: result.exit,
                    output: tail(&result.output, REPORT_TAIL_CHARS),
                    output_bytes: result.output_bytes,
                }),
            });
            if !ok {
                let line = crate::vocab::clip(&crate::steps::show_line(command));
                let end = tail(&result.output, 300);
                let said = match end.trim().is_empty() {
                    true => String::new(),
                    false => format!(" Its output ends with: {}", end.trim()),
                };
                let what = match stage {
                    Stage::AfterSwitch => "after the switch",
                    _ => "before the switch",
                };
                return Err(fail(
                    code::STEP_FAILED,
                    format!(
                        "The site's step {what}, `{line}`, failed ({}).{said}",
                        result.summary
                    ),
                    switched,
                ));
            }
        }
        Ok(())
    }
}
