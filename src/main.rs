//! The `zonegate` binary: wiring only; behaviour lives in the library.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use zonegate::process::{self, LogFormat};

#[derive(Parser)]
#[command(name = "zonegate", version, about = "Per-tenant authoritative DNS zones for Kubernetes", long_about = None)]
struct Cli {
    /// Log format: `text` (colour only on a terminal, never with NO_COLOR set) or `json`. The
    /// level comes from RUST_LOG (default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "ZONEGATE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: reconcile DNSZones into nameserver Deployments and Services.
    Operator(Box<zonegate::operator::OperatorArgs>),
    /// Serve zones authoritatively over UDP and TCP (and DoT, DoH, DoQ with --tls-cert).
    ///
    /// With --manifests, from a directory of YAML manifests (DNSZones and source objects, status
    /// included), reloaded on change. With --zone, from a live cluster (in-cluster config or
    /// KUBECONFIG).
    Serve {
        /// Directory of manifests (`*.yaml`, `*.yml`, multi-document) to serve every DNSZone from.
        #[arg(long, conflicts_with = "zone", required_unless_present = "zone")]
        manifests: Option<PathBuf>,
        /// The DNSZone to serve from the cluster, as NAMESPACE/NAME.
        #[arg(long)]
        zone: Option<String>,
        /// Kubeconfig to use with --zone (default: in-cluster, then KUBECONFIG, then ~/.kube/config).
        #[arg(long, requires = "zone")]
        kubeconfig: Option<PathBuf>,
        /// Address to answer DNS on, UDP and TCP. Repeatable.
        #[arg(long, default_value = "0.0.0.0:5353")]
        listen: Vec<SocketAddr>,
        /// Address for /healthz, /readyz and /metrics.
        #[arg(long)]
        http: Option<SocketAddr>,
        /// Directory to persist SOA serials in, so they never go backwards across restarts.
        #[arg(long, env = "ZONEGATE_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// With --zone: the directory holding the zone's DNSSEC keys (`key.pem`, and
        /// `next.pem` during a rollover): the Secret `<zone>-dnssec` as mounted, which the
        /// operator's pods get. Needed when the zone has `spec.dnssec.enabled`; re-read every
        /// 10 seconds.
        #[arg(long, requires = "zone")]
        dnssec_keys: Option<PathBuf>,
        /// With --manifests: report ready (/readyz 200) even when no zone is served.
        #[arg(long, requires = "manifests")]
        allow_empty: bool,
        #[command(flatten)]
        encrypted: zonegate::dns::hickory::EncryptedArgs,
        #[command(flatten)]
        policy: Box<zonegate::dns::policy::PolicyArgs>,
    },
    /// Print zones as RFC 1035 master files (for named-checkzone, Knot, NSD or review).
    Render {
        /// Directory of manifests.
        #[arg(long)]
        manifests: PathBuf,
        /// Only this DNSZone, as NAMESPACE/NAME.
        #[arg(long)]
        zone: Option<String>,
        /// Print the zones with `spec.dnssec.enabled` signed: DNSKEY, CDS, CDNSKEY, NSEC3PARAM,
        /// the NSEC3 chain and every RRSIG (docs/dnssec.md). The key is the tree's Secret
        /// `<zone>-dnssec`, else the one `serve --state-dir` generated (or generates now).
        #[arg(long)]
        dnssec: bool,
        /// With --dnssec: the `serve --state-dir` directory holding generated keys.
        #[arg(long, requires = "dnssec", env = "ZONEGATE_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print the DS records of the zones with `spec.dnssec.enabled`: what to give the
    /// registrar (docs/registrar.md).
    Ds {
        /// Directory of manifests.
        #[arg(long)]
        manifests: PathBuf,
        /// Only this DNSZone, as NAMESPACE/NAME.
        #[arg(long)]
        zone: Option<String>,
        /// The `serve --state-dir` directory holding generated keys.
        #[arg(long, env = "ZONEGATE_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Validate a directory of manifests offline; exits non-zero with precise messages.
    Check {
        /// Directory of manifests.
        #[arg(long)]
        manifests: PathBuf,
        /// `text` (one line per problem), `json` (one object with every problem's file, line,
        /// object, field and message) or `github` (GitHub Actions `::error` annotations).
        #[arg(long, value_enum, default_value_t = zonegate::cmd::check_report::CheckFormat::Text)]
        format: zonegate::cmd::check_report::CheckFormat,
    },
    /// Print the CustomResourceDefinitions (DNSZone and DNSZoneGrant) as YAML.
    Crd,
    /// Run an ExternalDNS webhook provider (`--provider=webhook`) for one DNSZone.
    ///
    /// Records go to DNSEndpoint objects in the zone's namespace (cluster mode, as
    /// ExternalDNS's sidecar), or with --manifests to one manifest in that directory (files
    /// mode); a `zonegate serve` answers them either way.
    Webhook(zonegate::webhook::WebhookArgs),
    /// Keep a marked block in a hosts file with a zone's names and addresses.
    Hosts(zonegate::hosts::HostsArgs),
}

fn main() -> ExitCode {
    process::configure_allocator();
    let cli = Cli::parse();
    process::init_logging(cli.log_format);
    use zonegate::cmd::files_mode;
    let code = match cli.command {
        Command::Crd => {
            print!("{}", zonegate::crdgen::crd_yaml());
            0
        }
        Command::Ds {
            manifests,
            zone,
            state_dir,
        } => files_mode::ds(manifests, zone, state_dir),
        Command::Check { manifests, format } => files_mode::check(manifests, format),
        Command::Render {
            manifests,
            zone,
            dnssec,
            state_dir,
        } => files_mode::render(
            manifests,
            zone,
            dnssec.then_some(files_mode::RenderDnssec { state_dir }),
        ),
        Command::Serve {
            manifests,
            zone,
            kubeconfig,
            listen,
            http,
            state_dir,
            allow_empty,
            dnssec_keys,
            encrypted,
            policy,
        } => {
            i32::from(process::run(async move {
                let policy = std::sync::Arc::new(policy.build()?);
                match (manifests, zone) {
                    (Some(dir), _) => {
                        files_mode::serve(files_mode::ServeFiles {
                            dir,
                            listen,
                            http,
                            state_dir,
                            allow_empty,
                            encrypted,
                            policy,
                        })
                        .await
                    }
                    (None, Some(zone)) => {
                        zonegate::cmd::cluster_mode::serve(
                            zonegate::cmd::cluster_mode::ServeCluster {
                                zone,
                                kubeconfig,
                                listen,
                                http,
                                state_dir,
                                encrypted,
                                policy,
                                dnssec_keys,
                                on_publish: None,
                            },
                        )
                        .await
                    }
                    // clap requires one of them
                    (None, None) => Err(zonegate::error::Error::flag(
                        "serve",
                        "needs --manifests DIR or --zone NAMESPACE/NAME",
                    )),
                }
            }))
        }
        Command::Operator(mut args) => {
            // the nameserver pods log as the operator does
            args.log_format = cli.log_format;
            i32::from(zonegate::operator::main(*args))
        }
        Command::Webhook(args) => i32::from(process::run(zonegate::webhook::run(args))),
        Command::Hosts(args) => i32::from(process::run(zonegate::hosts::run(args))),
    };
    ExitCode::from(code as u8)
}
