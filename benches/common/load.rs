//! Paced load against Apache from several clients (keep-alive and `Connection: close`),
//! bounded in time, with every answer checked by a judge that knows what each release serves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::raw::{Conn, Failure, Response};

/// Says whether a complete 2xx answer is consistent: `Err(kind)` when it is torn.
pub type Judge = Arc<dyn Fn(&str, &Response) -> Result<(), String> + Send + Sync>;

/// What to send.
#[derive(Clone)]
pub struct Spec {
    /// Apache's address.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// Paths requested in turn.
    pub paths: Vec<String>,
    /// Clients that keep their connection open between requests.
    pub keep_alive_clients: usize,
    /// Clients that send `Connection: close` (a new connection per request).
    pub close_clients: usize,
    /// Total requests per second aimed at (shared by the clients).
    pub rate: f64,
    /// Hard bound on how long the load runs.
    pub max_duration: Duration,
}

/// What the clients saw.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Requests sent (a retry after an idle close counts again).
    pub sent: u64,
    /// Complete 2xx answers that the judge found consistent.
    pub ok: u64,
    /// Complete answers that were not 2xx, by status.
    pub non_2xx: BTreeMap<u16, u64>,
    /// Requests that got no answer, by reason.
    pub conn_errors: BTreeMap<String, u64>,
    /// Idle keep-alive connections the server closed before any byte of the answer; the
    /// request was retried once on a new connection, as HTTP clients and browsers do.
    pub idle_closed_retried: u64,
    /// Torn answers (short body, or headers and body from different releases), by kind.
    pub torn: BTreeMap<String, u64>,
    /// A few torn answers described.
    pub torn_examples: Vec<String>,
    /// How long the load ran.
    pub elapsed: Duration,
    /// Time of every request that got an answer (retries included), milliseconds.
    pub latencies_ms: Vec<f64>,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.sent += o.sent;
        self.ok += o.ok;
        for (k, v) in o.non_2xx {
            *self.non_2xx.entry(k).or_default() += v;
        }
        for (k, v) in o.conn_errors {
            *self.conn_errors.entry(k).or_default() += v;
        }
        self.idle_closed_retried += o.idle_closed_retried;
        for (k, v) in o.torn {
            *self.torn.entry(k).or_default() += v;
        }
        for e in o.torn_examples {
            if self.torn_examples.len() < 5 {
                self.torn_examples.push(e);
            }
        }
        self.elapsed = self.elapsed.max(o.elapsed);
        self.latencies_ms.extend(o.latencies_ms);
    }

    /// Non-2xx answers.
    pub fn non_2xx_total(&self) -> u64 {
        self.non_2xx.values().sum()
    }

    /// Requests with no answer.
    pub fn conn_errors_total(&self) -> u64 {
        self.conn_errors.values().sum()
    }

    /// Failed = non-2xx + no answer (idle keep-alive closes that were retried excluded).
    pub fn failed(&self) -> u64 {
        self.non_2xx_total() + self.conn_errors_total()
    }

    /// Torn answers.
    pub fn torn_total(&self) -> u64 {
        self.torn.values().sum()
    }

    /// Requests per second achieved.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Running load.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Stats>>,
}

/// Starts the clients.
pub fn start(spec: Spec, judge: Judge) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let clients = spec.keep_alive_clients + spec.close_clients;
    let period = Duration::from_secs_f64(clients as f64 / spec.rate);
    let spec = Arc::new(spec);
    let tasks = (0..clients)
        .map(|i| {
            let keep_alive = i < spec.keep_alive_clients;
            tokio::spawn(client(
                spec.clone(),
                keep_alive,
                i,
                period,
                judge.clone(),
                stop.clone(),
            ))
        })
        .collect();
    Load { stop, tasks }
}

impl Load {
    /// Stops the clients and adds up what they saw.
    pub async fn finish(self) -> Stats {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Stats::default();
        for t in self.tasks {
            total.merge(t.await.expect("load client panicked"));
        }
        total
    }
}

async fn client(
    spec: Arc<Spec>,
    keep_alive: bool,
    index: usize,
    period: Duration,
    judge: Judge,
    stop: Arc<AtomicBool>,
) -> Stats {
    let mut stats = Stats::default();
    let mut conn = Conn::new(spec.addr, &spec.host, keep_alive);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut i = index;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < spec.max_duration {
        tick.tick().await;
        let path = &spec.paths[i % spec.paths.len()];
        i += 1;
        let mut retried = false;
        loop {
            stats.sent += 1;
            let t = Instant::now();
            let answer = conn.get(path).await;
            if answer.is_ok() {
                stats.latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            match answer {
                Ok(r) if r.truncated => {
                    *stats.torn.entry("short body".into()).or_default() += 1;
                    if stats.torn_examples.len() < 5 {
                        stats.torn_examples.push(format!(
                            "{path}: {} of {} bytes, then the connection ended (status {}, release header {:?})",
                            r.body.len(),
                            r.content_length.unwrap_or(0),
                            r.status,
                            r.header("x-cutover-release")
                        ));
                    }
                }
                Ok(r) if !(200..300).contains(&r.status) => {
                    *stats.non_2xx.entry(r.status).or_default() += 1;
                }
                Ok(r) => match judge(path, &r) {
                    Ok(()) => stats.ok += 1,
                    Err(kind) => {
                        if stats.torn_examples.len() < 5 {
                            stats.torn_examples.push(format!("{path}: {kind}"));
                        }
                        *stats.torn.entry(kind).or_default() += 1;
                    }
                },
                Err(Failure::ClosedIdle) if !retried => {
                    stats.idle_closed_retried += 1;
                    retried = true;
                    continue;
                }
                Err(e) => *stats.conn_errors.entry(e.kind()).or_default() += 1,
            }
            break;
        }
    }
    stats.elapsed = started.elapsed();
    stats
}
