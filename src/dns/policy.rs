//! The server's protections and identity, from `serve`'s flags: the query ACL, DNS cookies,
//! NSID and CHAOS identity (all applied by the responder, so every transport has them), and
//! UDP response rate limiting (applied by the UDP server after the responder).

use super::acl::{Cidr, QueryAcl};
use super::cookies::CookieSecrets;
use super::identity::Identity;
use super::rrl::RrlConfig;
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::sync::LazyLock;

/// Everything beyond the zones that decides an answer.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub acl: QueryAcl,
    /// None: COOKIE options are ignored (as a server without cookie support does).
    pub cookies: Option<CookieSecrets>,
    pub identity: Identity,
    /// None: no rate limiting.
    pub rrl: Option<RrlConfig>,
}

/// No ACL, no cookies, no identity, no RRL.
pub static PLAIN: LazyLock<Policy> = LazyLock::new(Policy::default);

/// `serve`'s flags for abuse resistance and identity.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PolicyArgs {
    /// Answer only clients in this prefix (CIDR, or one address); others get REFUSED on
    /// every transport. Repeatable; none = everyone.
    #[arg(long = "allow-query", value_name = "CIDR")]
    pub allow_query: Vec<Cidr>,
    /// NSID (RFC 5001) returned to queries that carry the NSID option, and the CHAOS TXT
    /// answer to `id.server` and `hostname.bind` (REFUSED without it).
    #[arg(long, value_name = "TEXT", env = "ZONEGATE_NSID")]
    pub nsid: Option<String>,
    /// The CHAOS TXT answer to `version.bind` and `version.server` (REFUSED without it).
    #[arg(long = "version", value_name = "TEXT")]
    pub server_version: Option<String>,
    /// DNS cookie secrets (RFC 7873/9018): one per line, 32 hex digits; the first makes new
    /// cookies, later lines are still accepted (rotation). Servers sharing it accept each
    /// other's cookies. Default: a random secret at start.
    #[arg(long, value_name = "FILE")]
    pub cookie_secret_file: Option<PathBuf>,
    /// UDP response rate limit per client prefix and response (BIND's
    /// `responses-per-second`); 0 = off.
    #[arg(
        long = "rrl-responses-per-second",
        value_name = "N",
        default_value_t = 0
    )]
    pub rrl_rate: u32,
    /// Every Nth rate-limited response is sent truncated (TC=1) so real clients retry over
    /// TCP, the others are dropped; 0 = drop all, 1 = truncate all (0..=10).
    #[arg(long = "rrl-slip", value_name = "N", default_value_t = 2)]
    pub rrl_slip: u8,
    /// Seconds over which a client's responses are averaged (its most debt); 1..=3600.
    #[arg(long = "rrl-window", value_name = "S", default_value_t = 15)]
    pub rrl_window: u32,
    /// IPv4 prefix length that makes one RRL client.
    #[arg(long = "rrl-ipv4-prefix", value_name = "BITS", default_value_t = 24)]
    pub rrl_ipv4_prefix: u8,
    /// IPv6 prefix length that makes one RRL client.
    #[arg(long = "rrl-ipv6-prefix", value_name = "BITS", default_value_t = 56)]
    pub rrl_ipv6_prefix: u8,
}

impl PolicyArgs {
    /// The policy, reading the cookie secret file; fails with the flag at fault.
    pub fn build(&self) -> Result<Policy> {
        let identity = Identity::new(self.nsid.clone(), self.server_version.clone())
            .map_err(|m| Error::flag("--nsid/--version", m))?;
        let cookies = match &self.cookie_secret_file {
            None => CookieSecrets::random(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::flag("--cookie-secret-file", format!("{}: {e}", path.display()))
                })?;
                CookieSecrets::parse(&text).map_err(|m| {
                    Error::flag("--cookie-secret-file", format!("{}: {m}", path.display()))
                })?
            }
        };
        let rrl = if self.rrl_rate == 0 {
            None
        } else {
            let cfg = RrlConfig {
                rate: self.rrl_rate,
                slip: self.rrl_slip,
                window: self.rrl_window,
                ipv4_prefix: self.rrl_ipv4_prefix,
                ipv6_prefix: self.rrl_ipv6_prefix,
            };
            cfg.validate()
                .map_err(|m| Error::flag("--rrl-responses-per-second", m))?;
            Some(cfg)
        };
        Ok(Policy {
            acl: QueryAcl::new(self.allow_query.clone()),
            cookies: Some(cookies),
            identity,
            rrl,
        })
    }
}
