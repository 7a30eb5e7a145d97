//! Prometheus metrics: request counts and latency histograms by route and status, the store's
//! group commit counters (batch size = appends / batches), and open SSE clients; `write_lines`
//! writes the unlabelled ones, here and for the background managers (`ops::metrics`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store::Store;

/// One unlabelled metric: name, type (`counter` or `gauge`), help text and value.
pub(crate) type Line = (&'static str, &'static str, &'static str, i64);

/// Appends Prometheus text (help, type and value) for each line.
pub(crate) fn write_lines(out: &mut String, lines: &[Line]) {
    for (name, kind, help, value) in lines {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

/// A counter's or gauge's value as the text shows it.
pub(crate) fn load(value: &std::sync::atomic::AtomicU64) -> i64 {
    value.load(Ordering::Relaxed) as i64
}

/// Latency histogram bucket bounds, in seconds.
const BUCKETS_SECONDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; BUCKETS_SECONDS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// By route: counts by (method, status) and the latency histogram. One lock and, once a
    /// route has been seen, no allocation per request.
    routes: Mutex<BTreeMap<String, RouteMetrics>>,
    sse_clients: Arc<AtomicI64>,
}

#[derive(Debug, Default)]
struct RouteMetrics {
    requests: BTreeMap<(String, u16), u64>,
    latency: Histogram,
}

/// Counts an open SSE client while it lives.
#[derive(Debug)]
pub struct SseClient(Arc<AtomicI64>);

impl Drop for SseClient {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let mut routes = self
            .routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), RouteMetrics::default());
        }
        let Some(metrics) = routes.get_mut(route) else {
            return;
        };
        match metrics
            .requests
            .iter_mut()
            .find(|((known, known_status), _)| known == method && *known_status == status)
        {
            Some((_, count)) => *count += 1,
            None => {
                metrics.requests.insert((method.to_owned(), status), 1);
            }
        }
        let seconds = elapsed.as_secs_f64();
        let histogram = &mut metrics.latency;
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS_SECONDS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum_seconds += seconds;
    }

    pub fn sse_client(&self) -> SseClient {
        self.sse_clients.fetch_add(1, Ordering::Relaxed);
        SseClient(self.sse_clients.clone())
    }

    /// Renders everything; `lags` are (read model, events behind, seconds behind).
    pub fn render(&self, store: &Store, lags: &[(&str, u64, i64)]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP docket_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE docket_http_requests_total counter\n");
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        for (route, metrics) in routes.iter() {
            for ((method, status), count) in &metrics.requests {
                let _ = writeln!(
                    out,
                    "docket_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
                );
            }
        }
        out.push_str(
            "# HELP docket_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE docket_http_request_duration_seconds histogram\n");
        for (route, histogram) in routes
            .iter()
            .map(|(route, metrics)| (route, &metrics.latency))
        {
            for (bucket, bound) in histogram.buckets.iter().zip(BUCKETS_SECONDS) {
                let _ = writeln!(
                    out,
                    "docket_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {bucket}"
                );
            }
            let _ = writeln!(
                out,
                "docket_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "docket_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum_seconds
            );
            let _ = writeln!(
                out,
                "docket_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
        drop(routes);
        let (batches, appends, events, failed) = store.stats().snapshot();
        let counters = [
            (
                "docket_store_batches_total",
                "Group commit transactions.",
                batches,
            ),
            (
                "docket_store_appends_total",
                "Appends answered by group commits (batch size = appends / batches).",
                appends,
            ),
            ("docket_store_events_total", "Events written.", events),
            (
                "docket_store_failed_batches_total",
                "Group commits that failed.",
                failed,
            ),
        ];
        let mut lines: Vec<Line> = counters
            .into_iter()
            .map(|(name, help, value)| (name, "counter", help, value as i64))
            .collect();
        lines.push((
            "docket_sse_clients",
            "gauge",
            "Open live event stream clients.",
            self.sse_clients.load(Ordering::Relaxed),
        ));
        write_lines(&mut out, &lines);
        out.push_str("# HELP docket_store_batch_appends Appends per group commit transaction.\n");
        out.push_str("# TYPE docket_store_batch_appends histogram\n");
        let mut cumulative = 0;
        for (count, bound) in store
            .stats()
            .batch_sizes
            .iter()
            .zip(store::BATCH_SIZE_BUCKETS)
        {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "docket_store_batch_appends_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "docket_store_batch_appends_bucket{{le=\"+Inf\"}} {batches}"
        );
        let _ = writeln!(
            out,
            "docket_store_batch_appends_sum {appends}\ndocket_store_batch_appends_count {batches}"
        );
        out.push_str(
            "# HELP docket_projection_lag_events Events a read model is behind the log.\n",
        );
        out.push_str("# TYPE docket_projection_lag_events gauge\n");
        for (name, events, _) in lags {
            let _ = writeln!(
                out,
                "docket_projection_lag_events{{projection=\"{name}\"}} {events}"
            );
        }
        out.push_str("# HELP docket_projection_lag_seconds How long the oldest record a read model has not applied has waited.\n");
        out.push_str("# TYPE docket_projection_lag_seconds gauge\n");
        for (name, _, seconds) in lags {
            let _ = writeln!(
                out,
                "docket_projection_lag_seconds{{projection=\"{name}\"}} {seconds}"
            );
        }
        out
    }
}
