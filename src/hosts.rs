//! `zonegate hosts`: keeps one marked block in a hosts file (`/etc/hosts`,
//! `C:\Windows\System32\drivers\etc\hosts`) with a zone's names and addresses, for machines
//! that should resolve a cluster's names without any DNS set-up (see docs/desktop.md for split
//! DNS, which is better). Every line outside the block is left as it is, the file's line
//! endings (CRLF or LF) are kept, and the file is replaced atomically.
//!
//! What the block holds, per zone: every name with A/AAAA records; a CNAME whose chain ends at
//! addresses inside the zone, with those addresses (flattened); a CNAME leaving the zone, and
//! wildcard names, as comments (a hosts file cannot say either).

use crate::cmd::tree_watch::TreeWatch;
use crate::error::{Error, Result};
use crate::feed::files::ManifestLoader;
use crate::publish::Publisher;
use crate::zone::ZoneData;
use hickory_proto::rr::{Name, RData, RecordType};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first and last line of the block.
pub const BEGIN: &str =
    "# BEGIN zonegate (written by `zonegate hosts`; edits between these lines are lost)";
pub const END: &str = "# END zonegate";
/// CNAME hops followed inside the zone before giving up (a loop, or a very long chain).
const MAX_CHAIN: usize = 8;

fn show(name: &Name) -> String {
    let s = name.to_ascii();
    s.strip_suffix('.').unwrap_or(&s).to_string()
}

fn addresses(zone: &ZoneData, name: &Name) -> Vec<String> {
    let mut out = Vec::new();
    for t in [RecordType::A, RecordType::AAAA] {
        if let Some(set) = zone.rrset(name, t) {
            for r in &set.rdata {
                match r {
                    RData::A(a) => out.push(a.0.to_string()),
                    RData::AAAA(a) => out.push(a.0.to_string()),
                    _ => {}
                }
            }
        }
    }
    out
}

/// The block's lines for one zone (no line endings), in canonical name order.
pub fn entries(zone: &ZoneData) -> Vec<String> {
    let mut lines = Vec::new();
    for name in zone.names_sorted() {
        let shown = show(name);
        let own = addresses(zone, name);
        if name.is_wildcard() {
            if !own.is_empty() || zone.rrset(name, RecordType::CNAME).is_some() {
                lines.push(format!(
                    "# {shown}: a wildcard; a hosts file cannot hold it (use split DNS)"
                ));
            }
            continue;
        }
        for ip in &own {
            lines.push(format!("{ip} {shown}"));
        }
        if zone.rrset(name, RecordType::CNAME).is_none() {
            continue;
        }
        // follow the chain inside the zone
        let mut cur = name.clone();
        let mut outcome = None;
        for _ in 0..MAX_CHAIN {
            let Some(RData::CNAME(t)) = zone
                .rrset(&cur, RecordType::CNAME)
                .and_then(|s| s.rdata.first())
            else {
                break;
            };
            let target = t.0.clone();
            if !zone.origin.zone_of(&target) {
                outcome = Some(Err(format!(
                    "# {shown}: an alias of {}, outside the zone (resolve it by DNS)",
                    show(&target)
                )));
                break;
            }
            let addrs = addresses(zone, &target);
            if !addrs.is_empty() {
                outcome = Some(Ok(addrs));
                break;
            }
            cur = target;
        }
        match outcome {
            Some(Ok(addrs)) => {
                for ip in addrs {
                    lines.push(format!("{ip} {shown}"));
                }
            }
            Some(Err(comment)) => lines.push(comment),
            None => lines.push(format!(
                "# {shown}: an alias with no address in the zone (a loop or a dangling target)"
            )),
        }
    }
    lines
}

/// `existing` with its zonegate block replaced by one holding `lines` (appended when there is
/// none; a second block, should one exist, is removed). Line endings follow the file: CRLF if
/// it has any, else LF. Fails, changing nothing, when a BEGIN line has no END line after it.
pub fn rewrite(existing: &str, lines: &[String]) -> std::result::Result<String, String> {
    let eol = if existing.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut block = String::new();
    for l in std::iter::once(BEGIN)
        .chain(lines.iter().map(String::as_str))
        .chain(std::iter::once(END))
    {
        block.push_str(l);
        block.push_str(eol);
    }
    let mut out = String::with_capacity(existing.len() + block.len());
    let mut inside = false;
    let mut placed = false;
    for raw in existing.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        if !inside && line == BEGIN {
            inside = true;
            if !placed {
                out.push_str(&block);
                placed = true;
            }
            continue;
        }
        if inside {
            if line == END {
                inside = false;
            }
            continue;
        }
        out.push_str(raw);
    }
    if inside {
        return Err(format!(
            "the line {BEGIN:?} has no {END:?} after it; fix the file by hand"
        ));
    }
    if !placed {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(eol);
        }
        out.push_str(&block);
    }
    Ok(out)
}

/// Rewrites the hosts file if its block changed; returns whether it did. A missing file is
/// created. Where the file cannot be replaced by a rename (a bind mount, as `/etc/hosts` is in
/// a container), it is rewritten in place.
pub fn update(path: &Path, lines: &[String]) -> Result<bool> {
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("--hosts-file {}: {e}", path.display()).into()),
    };
    let new =
        rewrite(&existing, lines).map_err(|e| format!("--hosts-file {}: {e}", path.display()))?;
    if new == existing {
        return Ok(false);
    }
    match crate::atomic_file::write(path, new.as_bytes()) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EXDEV)) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot replace the file by a rename; rewriting it in place");
            std::fs::write(path, new.as_bytes())
                .map_err(|e| format!("--hosts-file {}: {e}", path.display()))?;
            Ok(true)
        }
        Err(e) => Err(format!("--hosts-file {}: {e}", path.display()).into()),
    }
}

/// Options of `zonegate hosts`.
#[derive(clap::Args, Debug, Clone)]
pub struct HostsArgs {
    /// Directory of manifests (as `serve --manifests` reads it). Without it, the zone is read
    /// from a live cluster (--zone required), as `serve --zone` reads it.
    #[arg(long, required_unless_present = "zone")]
    pub manifests: Option<PathBuf>,
    /// The DNSZone, as NAMESPACE/NAME: with --manifests, only this zone (default: every zone in
    /// the directory); without, the zone to read from the cluster.
    #[arg(long)]
    pub zone: Option<String>,
    /// Kubeconfig for the live cluster (default: in-cluster, then KUBECONFIG, then
    /// ~/.kube/config).
    #[arg(long, conflicts_with = "manifests")]
    pub kubeconfig: Option<PathBuf>,
    /// The hosts file to keep the block in.
    #[arg(long)]
    pub hosts_file: PathBuf,
    /// Keep running, rewriting the block whenever the zone changes.
    #[arg(long)]
    pub watch: bool,
}

/// The block for the zones of `dir` (all, or `zone`). Errors when `zone` is not served.
pub fn block_from_manifests(
    loader: &mut ManifestLoader,
    publisher: &mut Publisher,
    zone: Option<&str>,
) -> Result<Vec<String>> {
    let loaded = loader.load();
    for p in &loaded.problems {
        tracing::warn!(problem = %p, "manifest problem");
    }
    let reports = publisher.compile_all(&loaded.store);
    let mut lines = Vec::new();
    let mut found = false;
    for r in &reports {
        if zone.is_some_and(|z| z != r.zone) {
            continue;
        }
        if let Some(why) = &r.rejected {
            tracing::warn!(zone = %r.zone, "{why}");
            continue;
        }
        if let Some(data) = publisher.data(&r.zone).filter(|_| r.apex.is_some()) {
            found = true;
            lines.push(format!("# DNSZone {} ({})", r.zone, r.domain));
            lines.extend(entries(data));
        }
    }
    if let Some(z) = zone.filter(|_| !found) {
        return Err(format!(
            "--zone {z}: no such servable DNSZone in {}",
            loader.root().display()
        )
        .into());
    }
    Ok(lines)
}

/// `zonegate hosts` on a live cluster: the `serve --zone` engine, answering no DNS, writes the
/// block each time it publishes the zone.
async fn run_cluster(args: HostsArgs) -> Result<()> {
    use crate::cmd::cluster_mode::{self, PublishHook, ServeCluster};
    let zone = args
        .zone
        .clone()
        .ok_or("--zone NAMESPACE/NAME is required without --manifests")?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let path = args.hosts_file.clone();
    let label = zone.clone();
    let hook: PublishHook = Box::new(move |data: &ZoneData| {
        let mut lines = vec![format!("# DNSZone {label} ({})", show(&data.origin))];
        lines.extend(entries(data));
        let names = lines.iter().filter(|l| !l.starts_with('#')).count();
        let _ = tx.send(
            update(&path, &lines)
                .map(|c| (c, names))
                .map_err(|e| e.to_string()),
        );
    });
    let serve = cluster_mode::serve(ServeCluster {
        zone,
        kubeconfig: args.kubeconfig.clone(),
        listen: Vec::new(),
        http: None,
        state_dir: None,
        encrypted: Default::default(),
        policy: Default::default(),
        dnssec_keys: None,
        on_publish: Some(hook),
    });
    tokio::pin!(serve);
    loop {
        tokio::select! {
            r = &mut serve => return r,
            Some(res) = rx.recv() => match res {
                Ok((changed, entries)) => {
                    if changed {
                        tracing::info!(file = %args.hosts_file.display(), entries, "hosts file updated");
                    }
                    if !args.watch {
                        return Ok(());
                    }
                }
                Err(e) if !args.watch => return Err(e.into()),
                Err(e) => tracing::warn!(error = %e, "hosts file not updated"),
            }
        }
    }
}

/// `zonegate hosts`.
pub async fn run(args: HostsArgs) -> Result<()> {
    crate::process::install_signal_handlers();
    let Some(dir) = args.manifests.clone() else {
        return run_cluster(args).await;
    };
    if !dir.is_dir() {
        return Err(format!("--manifests {}: no such directory", dir.display()).into());
    }
    let mut loader = ManifestLoader::new(&dir);
    let mut publisher = Publisher::default();
    let write = |loader: &mut ManifestLoader, publisher: &mut Publisher| -> Result<()> {
        let lines = block_from_manifests(loader, publisher, args.zone.as_deref())?;
        let names = lines.iter().filter(|l| !l.starts_with('#')).count();
        if update(&args.hosts_file, &lines)? {
            tracing::info!(file = %args.hosts_file.display(), entries = names, "hosts file updated");
        }
        Ok(())
    };
    write(&mut loader, &mut publisher)?;
    if !args.watch {
        return Ok(());
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watch_error = |source| Error::WatchDir {
        path: dir.clone(),
        source,
    };
    let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev
            && matches!(
                ev.kind,
                notify::EventKind::Create(_)
                    | notify::EventKind::Modify(_)
                    | notify::EventKind::Remove(_)
            )
        {
            let _ = tx.send(());
        }
    })
    .map_err(watch_error)?;
    // one watch per directory: a subdirectory unreadable now is read and watched once it is
    // readable, as in `serve --manifests`
    let mut watch = TreeWatch::new(watcher, dir.clone()).map_err(watch_error)?;
    let shutdown = crate::process::shutdown();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            ev = rx.recv() => {
                if ev.is_none() {
                    return Err(Error::Stopped("the file watcher"));
                }
                while let Ok(Some(())) = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {}
                for (d, e) in watch.sync() {
                    tracing::warn!(dir = %d.display(), error = %e, "cannot watch a directory of the tree; its changes are read when another change reloads the tree");
                }
                // a bad moment (a zone briefly missing, a hosts file being edited) is logged, and
                // the next change tries again
                if let Err(e) = write(&mut loader, &mut publisher) {
                    tracing::warn!(error = %e, "hosts file not updated");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn zone() -> ZoneData {
        use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
        let mut z = ZoneData::acme_example();
        let a = |s: &str| RData::A(A(s.parse::<Ipv4Addr>().unwrap()));
        let c = |s: &str| RData::CNAME(CNAME(n(s)));
        z.add(n("www.acme.example.com."), 60, a("192.0.2.1"));
        z.add(
            n("www.acme.example.com."),
            60,
            RData::AAAA(AAAA("2001:db8::1".parse::<Ipv6Addr>().unwrap())),
        );
        z.add(n("alias.acme.example.com."), 60, c("www.acme.example.com."));
        z.add(
            n("alias2.acme.example.com."),
            60,
            c("alias.acme.example.com."),
        );
        z.add(n("ext.acme.example.com."), 60, c("lb.example.net."));
        z.add(
            n("loop1.acme.example.com."),
            60,
            c("loop2.acme.example.com."),
        );
        z.add(
            n("loop2.acme.example.com."),
            60,
            c("loop1.acme.example.com."),
        );
        z.add(n("*.apps.acme.example.com."), 60, a("192.0.2.9"));
        z.add(
            n("txt.acme.example.com."),
            60,
            RData::TXT(TXT::new(vec!["x".into()])),
        );
        z
    }

    #[test]
    fn entries_flatten_in_zone_cnames_and_comment_the_rest() {
        assert_eq!(
            entries(&zone()),
            vec![
                // canonical order compares labels from the right: alias < apps
                "192.0.2.1 alias.acme.example.com",
                "2001:db8::1 alias.acme.example.com",
                "192.0.2.1 alias2.acme.example.com",
                "2001:db8::1 alias2.acme.example.com",
                "# *.apps.acme.example.com: a wildcard; a hosts file cannot hold it (use split DNS)",
                "# ext.acme.example.com: an alias of lb.example.net, outside the zone (resolve it by DNS)",
                "# loop1.acme.example.com: an alias with no address in the zone (a loop or a dangling target)",
                "# loop2.acme.example.com: an alias with no address in the zone (a loop or a dangling target)",
                "192.0.2.1 www.acme.example.com",
                "2001:db8::1 www.acme.example.com",
            ]
        );
    }

    fn block(lines: &[&str], eol: &str) -> String {
        let mut s = String::new();
        for l in std::iter::once(BEGIN)
            .chain(lines.iter().copied())
            .chain([END])
        {
            s.push_str(l);
            s.push_str(eol);
        }
        s
    }

    #[test]
    fn rewrite_appends_then_replaces_leaving_other_lines_untouched() {
        let original =
            "127.0.0.1\tlocalhost\n# a comment  with  spaces \n::1 localhost ip6-localhost";
        let lines = vec!["192.0.2.1 www.acme.example.com".to_string()];
        let once = rewrite(original, &lines).unwrap();
        assert_eq!(
            once,
            format!(
                "{original}\n{}",
                block(&["192.0.2.1 www.acme.example.com"], "\n")
            )
        );
        // idempotent
        assert_eq!(rewrite(&once, &lines).unwrap(), once);
        // user lines after the block stay after it; the block keeps its place
        let edited = format!("{once}10.0.0.1 mine\n");
        let two = rewrite(&edited, &["192.0.2.2 b.acme.example.com".to_string()]).unwrap();
        assert_eq!(
            two,
            format!(
                "{original}\n{}10.0.0.1 mine\n",
                block(&["192.0.2.2 b.acme.example.com"], "\n")
            )
        );
        // emptied: the block stays, empty
        assert_eq!(
            rewrite(&two, &[]).unwrap(),
            format!("{original}\n{}10.0.0.1 mine\n", block(&[], "\n"))
        );
    }

    #[test]
    fn rewrite_keeps_crlf() {
        let original = "127.0.0.1 localhost\r\n# Windows\r\n";
        let out = rewrite(original, &["192.0.2.1 a.acme.example.com".to_string()]).unwrap();
        assert_eq!(
            out,
            format!(
                "{original}{}",
                block(&["192.0.2.1 a.acme.example.com"], "\r\n")
            )
        );
        assert!(!out.replace("\r\n", "").contains('\n'));
        let again = rewrite(&out, &[]).unwrap();
        assert_eq!(again, format!("{original}{}", block(&[], "\r\n")));
    }

    #[test]
    fn rewrite_removes_a_duplicate_block_and_refuses_an_unterminated_one() {
        let dup = format!(
            "a\n{}b\n{}c\n",
            block(&["1.1.1.1 x"], "\n"),
            block(&["2.2.2.2 y"], "\n")
        );
        assert_eq!(
            rewrite(&dup, &["3.3.3.3 z".to_string()]).unwrap(),
            format!("a\n{}b\nc\n", block(&["3.3.3.3 z"], "\n"))
        );
        let broken = format!("a\n{BEGIN}\n1.1.1.1 x\nb\n");
        assert!(rewrite(&broken, &[]).unwrap_err().contains("has no"));
        assert_eq!(rewrite("", &[]).unwrap(), block(&[], "\n"));
    }

    #[test]
    fn update_writes_only_on_change_and_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("zg-hosts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        std::fs::write(&path, "127.0.0.1 localhost\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let lines = vec!["192.0.2.1 a.acme.example.com".to_string()];
        assert!(update(&path, &lines).unwrap());
        assert!(!update(&path, &lines).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("127.0.0.1 localhost\n# BEGIN zonegate"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // no temporary file left behind
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
