//! `zonegate operator` flags and entry point.

use super::delegated::{CheckMode, Checker, resolv_conf_nameserver};
use super::desired::{NodeSpread, ServerSettings};
use super::leader::LeaseSettings;
use super::placement::{Placement, Placements};
use super::policy::DomainPolicy;
use super::run::OperatorConfig;
use super::scope::Scope;
use crate::error::{Error, Result};
use crate::process;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The Lease of an operator of every namespace (`--lease-name` not given).
pub const DEFAULT_LEASE_NAME: &str = "zonegate-operator";

/// Flags of `zonegate operator`.
#[derive(clap::Args, Debug, Clone)]
pub struct OperatorArgs {
    /// Image of the nameserver pods (they run `zonegate serve --zone NS/NAME`).
    #[arg(long, env = "ZONEGATE_SERVER_IMAGE")]
    pub server_image: String,
    /// imagePullPolicy of the nameserver pods (default: Kubernetes' default for the tag).
    #[arg(long)]
    pub server_image_pull_policy: Option<String>,
    /// Resource requests of the nameserver pods, as `cpu=50m,memory=64Mi` (Kubernetes
    /// quantities, compared by value: `1024Mi` is `1Gi`). Empty for none.
    #[arg(long, default_value = "cpu=50m,memory=64Mi")]
    pub server_requests: String,
    /// Resource limits of the nameserver pods, as `memory=256Mi`. Empty for none.
    #[arg(long, default_value = "memory=256Mi")]
    pub server_limits: String,
    /// Keep pods of different nameservers of a zone on different nodes: `required` (losing a
    /// node never takes two nameservers; needs as many nodes as nameservers) or `preferred`.
    #[arg(long, value_enum, default_value_t = NodeSpread::Required)]
    pub node_spread: NodeSpread,
    /// Scheduling of every nameserver pod, as JSON: `imagePullSecrets`, `nodeSelector`,
    /// `tolerations`, `affinity` (its podAntiAffinity terms join the operator's),
    /// `priorityClassName`, `topologySpreadConstraints` (without labelSelector: the nameserver's
    /// own pods), as in a pod spec.
    #[arg(long, default_value = "")]
    pub server_placement: String,
    /// Placement profiles a DNSZone may pick with `spec.nameservers.placement`, as JSON
    /// `{"NAME": PLACEMENT, ...}`; a profile's fields replace the default's.
    #[arg(long, default_value = "")]
    pub server_placement_profiles: String,
    /// YAML file mapping namespace globs to the domain suffixes their DNSZones may claim (see
    /// docs/operator.md). Without it, any namespace may claim any domain.
    #[arg(long, env = "ZONEGATE_DOMAIN_POLICY")]
    pub domain_policy: Option<PathBuf>,
    /// Recursive resolver used to find a zone's parent nameservers, as IP[:PORT]. Default: the
    /// first nameserver of /etc/resolv.conf.
    #[arg(long, conflicts_with = "delegation_parent")]
    pub delegation_resolver: Option<String>,
    /// Ask this server directly, as the parent zone's nameserver, instead of finding the parent
    /// through a resolver (IP[:PORT]).
    #[arg(long)]
    pub delegation_parent: Option<String>,
    /// Seconds between delegation checks of a zone; 0 turns them off (Delegated stays Unknown).
    #[arg(long, default_value_t = 300)]
    pub delegation_check_interval: u64,
    /// Seconds to wait for each DNS answer of a delegation check.
    #[arg(long, default_value_t = 2)]
    pub delegation_timeout: u64,
    /// Port the parent's nameservers are asked on when found through the resolver.
    #[arg(long, default_value_t = 53)]
    pub delegation_port: u16,
    /// TTL of the records in status.delegation.
    #[arg(long, default_value_t = 3600)]
    pub delegation_ttl: u32,
    /// Seconds the parent must show only the new key's DS before a DNSSEC rollover's `finish`
    /// removes the old key (resolvers may cache the old DS that long).
    #[arg(long, default_value_t = 86400)]
    pub dnssec_rollover_hold: u64,
    /// Seconds between asking a zone's secondaries (spec.transfer.notify) for its SOA; 0 turns
    /// it off (SecondariesInSync stays Unknown). A serial change asks them again at once.
    #[arg(long, default_value_t = 60)]
    pub secondary_check_interval: u64,
    /// Seconds to wait for each secondary's answer (one retransmission).
    #[arg(long, default_value_t = 2)]
    pub secondary_timeout: u64,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub http: SocketAddr,
    /// Elect a leader through a Lease (several replicas may run; one reconciles).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Namespace of the Lease. Default: $POD_NAMESPACE, the service account's namespace, or
    /// `default`.
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Name of the Lease. Default: `zonegate-operator`, or with --watch-namespace
    /// `zonegate-operator-` and a hash of the namespaces (operators of different scopes never
    /// compete for one Lease).
    #[arg(long)]
    pub lease_name: Option<String>,
    /// Seconds the Lease stays valid after a renewal (how long a crashed leader's standby waits).
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
    /// Seconds before expiry at which the leader renews.
    #[arg(long, default_value_t = 5)]
    pub lease_grace: u64,
    /// This replica's identity in the Lease and in Events. Default: $POD_NAME, else the host name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Watch and act in this namespace only (repeat the flag, or give a comma list, for several).
    /// DNSZones, DNSZoneGrants and owned objects elsewhere are neither seen nor written nor
    /// swept. Default: every namespace.
    #[arg(long = "watch-namespace", value_name = "NS")]
    pub watch_namespace: Vec<String>,
    /// DNSZones reconciled at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u16,
    /// Kubeconfig file (default: in-cluster configuration or $KUBECONFIG).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The global `--log-format`, set by `main`: the nameserver pods get the same.
    #[arg(skip)]
    pub log_format: crate::process::LogFormat,
}

/// `NAME=QUANTITY,...` into a map; every value must be a Kubernetes quantity.
pub fn parse_resources(s: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected NAME=QUANTITY"))?;
        if k.trim().is_empty() || v.trim().is_empty() {
            return Err(format!("{part:?}: expected NAME=QUANTITY"));
        }
        if super::quantity::parse(v.trim()).is_none() {
            return Err(format!(
                "{part:?}: {:?} is not a Kubernetes quantity (like 50m, 64Mi, 0.5, 1e3)",
                v.trim()
            ));
        }
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`; port 53 when missing.
pub fn parse_dns_addr(s: &str) -> std::result::Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?}: expected IP or IP:PORT"))
}

fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .map(|h| format!("{h}-{}", std::process::id()))
        .unwrap_or_else(|| format!("zonegate-operator-{}", std::process::id()))
}

impl OperatorArgs {
    /// The configuration these flags describe.
    pub fn config(&self) -> Result<OperatorConfig> {
        let server = ServerSettings {
            image: self.server_image.clone(),
            image_pull_policy: self.server_image_pull_policy.clone(),
            requests: parse_resources(&self.server_requests)
                .map_err(|e| Error::flag("--server-requests", e))?,
            limits: parse_resources(&self.server_limits)
                .map_err(|e| Error::flag("--server-limits", e))?,
            node_spread: self.node_spread,
            log_format: self.log_format,
            placements: Placements {
                default: Placement::parse(&self.server_placement)
                    .map_err(|e| Error::flag("--server-placement", e))?,
                profiles: Placements::parse_profiles(&self.server_placement_profiles)
                    .map_err(|e| Error::flag("--server-placement-profiles", e))?,
            },
        };
        let policy = self
            .domain_policy
            .as_deref()
            .map(DomainPolicy::load)
            .transpose()
            .map_err(|e| Error::flag("--domain-policy", e))?;
        let checker = if self.delegation_check_interval == 0 {
            None
        } else {
            let mode = match (&self.delegation_parent, &self.delegation_resolver) {
                (Some(p), _) => CheckMode::Parent(
                    parse_dns_addr(p).map_err(|e| Error::flag("--delegation-parent", e))?,
                ),
                (None, Some(r)) => CheckMode::Resolver(
                    parse_dns_addr(r).map_err(|e| Error::flag("--delegation-resolver", e))?,
                ),
                (None, None) => {
                    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                    CheckMode::Resolver(resolv_conf_nameserver(&text).ok_or_else(|| Error::flag(
                        "--delegation-resolver",
                        "not given and no nameserver in /etc/resolv.conf: give --delegation-resolver or --delegation-parent, or --delegation-check-interval 0",
                    ))?)
                }
            };
            Some(Checker {
                mode,
                timeout: Duration::from_secs(self.delegation_timeout.max(1)),
                port: self.delegation_port,
            })
        };
        let scope =
            Scope::parse(&self.watch_namespace).map_err(|e| Error::flag("--watch-namespace", e))?;
        let identity = self.identity.clone().unwrap_or_else(default_identity);
        if self.leader_elect && (self.lease_grace == 0 || self.lease_grace >= self.lease_duration) {
            return Err(Error::flag(
                "--lease-grace",
                format!(
                    "{}: must be more than 0 and less than --lease-duration ({})",
                    self.lease_grace, self.lease_duration
                ),
            ));
        }
        let lease = self.leader_elect.then(|| LeaseSettings {
            namespace: self.lease_namespace.clone().unwrap_or_else(|| {
                std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "default".into())
            }),
            name: self
                .lease_name
                .clone()
                .unwrap_or_else(|| scope.lease_name(DEFAULT_LEASE_NAME)),
            identity: identity.clone(),
            duration: self.lease_duration,
            grace: self.lease_grace,
        });
        Ok(OperatorConfig {
            server,
            policy,
            checker,
            check_interval: Duration::from_secs(self.delegation_check_interval.max(1)),
            secondary_checker: (self.secondary_check_interval > 0).then(|| {
                super::secondaries::SecondaryChecker {
                    timeout: Duration::from_secs(self.secondary_timeout.max(1)),
                    settle: Duration::from_secs(2),
                }
            }),
            secondary_interval: Duration::from_secs(self.secondary_check_interval.max(1)),
            delegation_ttl: self.delegation_ttl,
            rollover_hold: Duration::from_secs(self.dnssec_rollover_hold),
            concurrency: self.concurrency.max(1),
            lease,
            http: Some(self.http),
            identity,
            scope,
            ..OperatorConfig::default()
        })
    }
}

/// `zonegate operator`: runs until SIGTERM/SIGINT; returns the exit code.
pub fn main(args: OperatorArgs) -> u8 {
    process::run(async move {
        let config = args.config()?;
        process::install_signal_handlers();
        let client = process::kube_client(args.kubeconfig.as_deref()).await?;
        Ok(super::run::run(client, config, process::shutdown()).await?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: OperatorArgs,
    }

    #[test]
    fn flags_make_a_config() {
        let cli = Cli::try_parse_from([
            "x",
            "--server-image",
            "zonegate:1",
            "--server-requests",
            "cpu=10m, memory=32Mi",
            "--server-limits",
            "",
            "--delegation-parent",
            "127.0.0.1:5300",
            "--leader-elect",
            "false",
            "--node-spread",
            "preferred",
            "--server-placement",
            r#"{"nodeSelector": {"role": "dns"}}"#,
            "--server-placement-profiles",
            r#"{"edge": {"priorityClassName": "edge"}}"#,
        ])
        .unwrap();
        let c = cli.args.config().unwrap();
        assert_eq!(c.server.image, "zonegate:1");
        assert_eq!(c.server.requests["cpu"], "10m");
        assert_eq!(c.server.requests["memory"], "32Mi");
        assert!(c.server.limits.is_empty());
        assert_eq!(c.server.node_spread, NodeSpread::Preferred);
        let edge = c.server.placements.for_zone(Some("edge")).unwrap();
        assert_eq!(edge.node_selector.unwrap()["role"], "dns");
        assert_eq!(edge.priority_class_name.as_deref(), Some("edge"));
        assert_eq!(
            c.checker.unwrap().mode,
            CheckMode::Parent("127.0.0.1:5300".parse().unwrap())
        );
        assert!(c.lease.is_none());
        let cli = Cli::try_parse_from([
            "x",
            "--server-image",
            "i",
            "--delegation-check-interval",
            "0",
            "--lease-namespace",
            "ops",
            "--identity",
            "me",
        ])
        .unwrap();
        let c = cli.args.config().unwrap();
        assert!(c.checker.is_none());
        assert_eq!(c.scope, Scope::All);
        let l = c.lease.unwrap();
        assert_eq!(
            (
                l.namespace.as_str(),
                l.name.as_str(),
                l.identity.as_str(),
                l.duration
            ),
            ("ops", "zonegate-operator", "me", 15)
        );
        // a scope: its own Lease unless one is named
        let scoped = |extra: &[&str]| {
            let mut args = vec![
                "x",
                "--server-image",
                "i",
                "--delegation-check-interval",
                "0",
            ];
            args.extend(extra);
            Cli::try_parse_from(args).unwrap().args.config()
        };
        let c = scoped(&["--watch-namespace", "b,a", "--watch-namespace", "c"]).unwrap();
        assert_eq!(c.scope, Scope::parse(&["a,b,c"]).unwrap());
        assert_eq!(
            c.lease.unwrap().name,
            c.scope.lease_name("zonegate-operator")
        );
        let c = scoped(&["--watch-namespace", "a", "--lease-name", "mine"]).unwrap();
        assert_eq!(c.lease.unwrap().name, "mine");
        let e = scoped(&["--watch-namespace", "A"]).unwrap_err();
        assert!(e.to_string().starts_with("--watch-namespace \"A\""), "{e}");
        assert_eq!(e.exit_code(), 2);
        let e = scoped(&["--lease-grace", "15"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--lease-grace 15: must be more than 0 and less than --lease-duration (15)"
        );
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn addresses_and_resources() {
        assert_eq!(
            parse_dns_addr("10.0.0.1").unwrap(),
            "10.0.0.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_dns_addr("[::1]:5300").unwrap(),
            "[::1]:5300".parse().unwrap()
        );
        assert_eq!(parse_dns_addr("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert!(parse_dns_addr("dns.example").is_err());
        assert!(parse_resources("cpu").is_err());
        assert!(
            parse_resources("memory=64MB")
                .unwrap_err()
                .contains("not a Kubernetes quantity")
        );
        assert_eq!(
            parse_resources("memory=1024Mi").unwrap()["memory"],
            "1024Mi"
        );
        let bad = Cli::try_parse_from([
            "x",
            "--server-image",
            "i",
            "--server-placement",
            "{\"nodeSelecter\": {}}",
        ])
        .unwrap();
        assert!(
            bad.args
                .config()
                .unwrap_err()
                .to_string()
                .contains("--server-placement")
        );
        assert!(parse_resources("").unwrap().is_empty());
    }
}
