//! A switch being watched: its steps as they end, the site command running now with its
//! output so far, and its answer once done. The go-live page of a site with steps starts the
//! switch in the background and polls this (or reloads, without JavaScript).
//!
//! Kept in memory only: a run's lasting record is the audit log and the steps' records; a
//! restart loses the watch, never the result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::report::{Report, Step};
use crate::error::Code;
use crate::steps::run::{tail, Output};

/// How long a finished run stays watchable.
const KEEP: Duration = Duration::from_secs(3600);
/// Characters of a running step's output a poll returns.
pub const LIVE_TAIL_CHARS: usize = 8000;

/// One switch being watched.
#[derive(Clone, Default)]
pub struct Live(Arc<Mutex<View>>);

#[derive(Default)]
struct View {
    steps: Vec<Step>,
    running: Option<(String, Instant, Arc<Mutex<Output>>)>,
    done: Option<Result<Report, (Code, String)>>,
    ended: Option<Instant>,
}

/// What a watcher sees.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// The switch is over.
    pub done: bool,
    /// Its answer, once done (`None` when it ended in an error).
    pub report: Option<Report>,
    /// Why it could not run, when it ended in an error (busy, unusable release…).
    pub error: Option<String>,
    /// That error's code.
    pub error_code: Option<Code>,
    /// The steps finished so far.
    pub steps: Vec<Step>,
    /// The site command running now.
    pub running: Option<RunningStep>,
}

/// The site command running now.
#[derive(Debug, Serialize)]
pub struct RunningStep {
    /// Its name (stage and command).
    pub step: String,
    /// Seconds so far.
    pub seconds: u64,
    /// Its output so far (the end of it).
    pub output: String,
}

impl Live {
    fn view(&self) -> MutexGuard<'_, View> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A step ended.
    pub(crate) fn step_done(&self, step: &Step) {
        let mut v = self.view();
        v.running = None;
        v.steps.push(step.clone());
    }

    /// A site command started; `output` fills while it runs.
    pub(crate) fn running(&self, step: &str, output: Arc<Mutex<Output>>) {
        self.view().running = Some((step.to_owned(), Instant::now(), output));
    }

    /// The switch is over.
    pub fn finish(&self, result: Result<Report, (Code, String)>) {
        let mut v = self.view();
        v.running = None;
        v.done = Some(result);
        v.ended = Some(Instant::now());
    }

    /// What a watcher sees now.
    pub fn snapshot(&self) -> Snapshot {
        let v = self.view();
        let running = v.running.as_ref().map(|(step, at, out)| {
            let text = out.lock().map(|o| o.text()).unwrap_or_default();
            RunningStep {
                step: step.clone(),
                seconds: at.elapsed().as_secs(),
                output: tail(&text, LIVE_TAIL_CHARS),
            }
        });
        let (report, error) = match &v.done {
            Some(Ok(r)) => (Some(r.clone()), None),
            Some(Err(e)) => (None, Some(e.clone())),
            None => (None, None),
        };
        Snapshot {
            done: v.done.is_some(),
            report,
            error_code: error.as_ref().map(|e| e.0),
            error: error.map(|e| e.1),
            steps: v.steps.clone(),
            running,
        }
    }
}

/// The switches being watched, by run id.
#[derive(Clone, Default)]
pub struct Runs(Arc<Mutex<HashMap<String, (String, Live)>>>);

impl Runs {
    /// A new watch for a switch on `site`; returns its id.
    pub fn start(&self, site: &str) -> (String, Live) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let live = Live::default();
        let mut runs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        runs.retain(|_, (_, l)| l.view().ended.is_none_or(|e| e.elapsed() < KEEP));
        runs.insert(id.clone(), (site.to_owned(), live.clone()));
        (id, live)
    }

    /// The watch `id` of `site`, if it is still kept.
    pub fn get(&self, site: &str, id: &str) -> Option<Live> {
        let runs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        runs.get(id)
            .filter(|(s, _)| s == site)
            .map(|(_, l)| l.clone())
    }
}

/// The steps of one switch, in order; mirrored to `live` (the page watching it) as they end.
#[derive(Default)]
pub(crate) struct Steps(pub(crate) Vec<Step>, pub(crate) Option<Live>);

impl Steps {
    /// Records a finished step (and shows it to whoever watches).
    pub(crate) fn add(&mut self, step: Step) {
        if let Some(live) = &self.1 {
            live.step_done(&step);
        }
        self.0.push(step);
    }

    /// Records the steps of a put-back, each named as such.
    pub(crate) fn add_prefixed(&mut self, prefix: &str, steps: Vec<Step>) {
        for mut s in steps {
            s.step = format!("{prefix}{}", s.step);
            self.add(s);
        }
    }

    /// Records a step that began at `started`.
    pub(crate) fn push(
        &mut self,
        step: &str,
        started: Instant,
        ok: bool,
        detail: impl Into<String>,
    ) {
        self.add(Step {
            step: step.to_owned(),
            ok,
            ms: started.elapsed().as_millis() as u64,
            detail: detail.into(),
            command: None,
        });
    }
}
