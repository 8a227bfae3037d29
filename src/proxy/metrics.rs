//! The proxy's metrics, encoded by prometheus-client from a snapshot of its `/state`:
//! `berth_proxy_requests_total{listener,backend}`, `berth_proxy_errors_total{listener,backend}`,
//! `berth_proxy_active_connections{listener,backend,state}` (state `routed` or `draining`),
//! `berth_proxy_unserved_total{listener}`, and, in berth's own `/metrics` only,
//! `berth_proxy_up` (1: the proxy answered this scrape; 0: it did not).
//!
//! Pure rendering behind a [`ProxyCollector`] registered in a prometheus-client registry: the
//! proxy's admin endpoint (`admin`) sets its own state before it encodes; berth's telemetry
//! sets what it read from the proxy's `/state` (or that it got no answer) before each scrape.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::admin::State;

/// What the last look at the proxy found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Seen {
    /// No proxy is needed (no service hands off a port) or none is configured: no series.
    #[default]
    Absent,
    /// A proxy is needed and did not answer: `berth_proxy_up 0` and no per-backend series.
    NotAnswering,
    /// The proxy's state: `berth_proxy_up 1` and the per-backend series.
    Answered(State),
}

/// A prometheus-client collector of the proxy's series, fed with [`ProxyCollector::set`].
#[derive(Debug, Clone, Default)]
pub struct ProxyCollector {
    up_gauge: bool,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    listener: String,
    backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActiveLabels {
    listener: String,
    backend: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

impl ProxyCollector {
    /// A collector for berth's own registry: it adds `berth_proxy_up` unless [`Seen::Absent`].
    pub fn with_up_gauge() -> Self {
        Self {
            up_gauge: true,
            seen: Arc::default(),
        }
    }

    /// A collector for the proxy's own registry (no `berth_proxy_up`: it is the proxy).
    pub fn own() -> Self {
        Self::default()
    }

    /// What the next encoding shows.
    pub fn set(&self, seen: Seen) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = seen;
    }
}

/// The proxy's own `/metrics`: `state` as OpenMetrics text (its counters and gauges only).
pub fn openmetrics(state: &State) -> String {
    let mut registry = Registry::with_prefix("berth");
    let c = ProxyCollector::own();
    c.set(Seen::Answered(state.clone()));
    registry.register_collector(Box::new(c));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

impl Collector for ProxyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let state = match seen {
            Seen::Absent => return Ok(()),
            Seen::NotAnswering => None,
            Seen::Answered(s) => Some(s),
        };
        if self.up_gauge {
            let up = ConstGauge::new(i64::from(state.is_some()));
            let m = encoder.encode_descriptor(
                "proxy_up",
                "1 when the port-handoff proxy's admin endpoint answered this scrape, 0 when it did not (its per-backend series are then absent)",
                None,
                up.metric_type(),
            )?;
            up.encode(m)?;
        }
        let Some(state) = state else {
            return Ok(());
        };
        let backends = || {
            state.listeners.iter().flat_map(|l| {
                l.backends.iter().map(move |b| {
                    (
                        BackendLabels {
                            listener: l.name.clone(),
                            backend: b.name.clone(),
                        },
                        b,
                    )
                })
            })
        };

        let mut m = encoder.encode_descriptor(
            "proxy_requests",
            "Requests (http) or connections (tcp) the proxy handed to a backend",
            None,
            MetricType::Counter,
        )?;
        for (labels, b) in backends() {
            ConstCounter::new(b.requests).encode(m.encode_family(&labels)?)?;
        }
        let mut m = encoder.encode_descriptor(
            "proxy_errors",
            "Failures talking to a backend (refused, reset, no answer)",
            None,
            MetricType::Counter,
        )?;
        for (labels, b) in backends() {
            ConstCounter::new(b.errors).encode(m.encode_family(&labels)?)?;
        }
        let mut m = encoder.encode_descriptor(
            "proxy_active_connections",
            "Requests (http) or connections (tcp) in progress per backend; state=draining for backends switched away",
            None,
            MetricType::Gauge,
        )?;
        for (labels, b) in backends() {
            let labels = ActiveLabels {
                listener: labels.listener,
                backend: labels.backend,
                state: if b.routed { "routed" } else { "draining" },
            };
            let active = i64::try_from(b.active).unwrap_or(i64::MAX);
            ConstGauge::new(active).encode(m.encode_family(&labels)?)?;
        }
        let mut m = encoder.encode_descriptor(
            "proxy_unserved",
            "Requests (http) or connections (tcp) no backend could take",
            None,
            MetricType::Counter,
        )?;
        for l in &state.listeners {
            let labels = ListenerLabels {
                listener: l.name.clone(),
            };
            ConstCounter::new(l.unserved).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::model::HandoffMode;
    use crate::proxy::admin::ListenerState;
    use crate::proxy::table::BackendStats;

    fn state() -> State {
        State {
            routes: "abc".into(),
            listeners: vec![ListenerState {
                name: "shop/web:80".into(),
                bind: None,
                mode: HandoffMode::Http,
                backends: vec![
                    BackendStats {
                        name: "shop-web-2".into(),
                        addr: "10.0.0.2:80".parse().unwrap(),
                        routed: true,
                        active: 3,
                        requests: 10,
                        errors: 0,
                    },
                    BackendStats {
                        name: "shop-web-1".into(),
                        addr: "10.0.0.1:80".parse().unwrap(),
                        routed: false,
                        active: 1,
                        requests: 90,
                        errors: 2,
                    },
                ],
                unserved: 4,
                error: None,
            }],
        }
    }

    fn encode(c: ProxyCollector) -> String {
        let mut registry = Registry::with_prefix("berth");
        registry.register_collector(Box::new(c));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn per_backend_requests_errors_and_draining_connections() {
        let m = openmetrics(&state());
        for line in [
            "# TYPE berth_proxy_requests counter\n",
            "berth_proxy_requests_total{listener=\"shop/web:80\",backend=\"shop-web-1\"} 90\n",
            "berth_proxy_errors_total{listener=\"shop/web:80\",backend=\"shop-web-1\"} 2\n",
            "berth_proxy_active_connections{listener=\"shop/web:80\",backend=\"shop-web-1\",state=\"draining\"} 1\n",
            "berth_proxy_active_connections{listener=\"shop/web:80\",backend=\"shop-web-2\",state=\"routed\"} 3\n",
            "berth_proxy_unserved_total{listener=\"shop/web:80\"} 4\n",
        ] {
            assert!(m.contains(line), "missing {line:?} in\n{m}");
        }
        assert!(!m.contains("berth_proxy_up"), "{m}");
    }

    #[test]
    fn a_proxy_that_does_not_answer_is_up_0_without_backend_series() {
        let c = ProxyCollector::with_up_gauge();
        c.set(Seen::NotAnswering);
        let m = encode(c);
        assert!(m.contains("berth_proxy_up 0\n"), "{m}");
        assert!(!m.contains("berth_proxy_requests"), "{m}");
    }

    #[test]
    fn an_answering_proxy_is_up_1_with_its_series() {
        let c = ProxyCollector::with_up_gauge();
        c.set(Seen::Answered(state()));
        let m = encode(c);
        assert!(m.contains("berth_proxy_up 1\n"), "{m}");
        assert!(
            m.contains(
                "berth_proxy_requests_total{listener=\"shop/web:80\",backend=\"shop-web-2\"} 10\n"
            ),
            "{m}"
        );
    }

    #[test]
    fn no_proxy_needed_means_no_proxy_series() {
        let m = encode(ProxyCollector::with_up_gauge());
        assert!(!m.contains("berth_proxy"), "{m}");
    }
}
