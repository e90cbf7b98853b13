//! The file watch of `serve --manifests`: one inotify watch per directory of the tree, brought
//! in step with the tree before every load. A directory is treated like a file: one that
//! cannot be watched now (inotify needs read permission, so an unreadable directory cannot) is
//! left out and tried again at the next load instead of stopping the server, while the loader
//! reports it and serves around it. The change that makes it readable again (its mode, seen by
//! the watch of the directory above) causes that load. Only the root must be watchable.
//! `hosts --manifests DIR --watch` watches its tree the same way.

use notify::RecursiveMode;
use notify_debouncer_full::{Debouncer, RecommendedCache};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The debouncer of `serve --manifests`.
pub type Debounced = Debouncer<notify::RecommendedWatcher, RecommendedCache>;

/// What a [`TreeWatch`] needs of the watcher under it: the debouncer of `serve`, or the
/// plain watcher of `hosts --watch`.
pub trait DirWatcher {
    fn watch_dir(&mut self, dir: &Path) -> notify::Result<()>;
    fn unwatch_dir(&mut self, dir: &Path) -> notify::Result<()>;
}

impl DirWatcher for Debounced {
    fn watch_dir(&mut self, dir: &Path) -> notify::Result<()> {
        self.watch(dir, RecursiveMode::NonRecursive)
    }
    fn unwatch_dir(&mut self, dir: &Path) -> notify::Result<()> {
        self.unwatch(dir)
    }
}

impl DirWatcher for notify::RecommendedWatcher {
    fn watch_dir(&mut self, dir: &Path) -> notify::Result<()> {
        notify::Watcher::watch(self, dir, RecursiveMode::NonRecursive)
    }
    fn unwatch_dir(&mut self, dir: &Path) -> notify::Result<()> {
        notify::Watcher::unwatch(self, dir)
    }
}

/// A directory's identity: (device, inode). A directory replaced at the same path is watched
/// again, as the old watch went with the old directory.
type DirId = (u64, u64);

pub struct TreeWatch<W: DirWatcher> {
    watcher: W,
    root: PathBuf,
    watched: BTreeMap<PathBuf, DirId>,
    /// Readable directories whose watch failed (the inotify limit), warned about once.
    warned: BTreeSet<PathBuf>,
}

impl<W: DirWatcher> TreeWatch<W> {
    /// Watches every directory under `root`; fails only when the root cannot be watched.
    pub fn new(watcher: W, root: PathBuf) -> notify::Result<Self> {
        let mut w = Self {
            watcher,
            root,
            watched: BTreeMap::new(),
            warned: BTreeSet::new(),
        };
        match w.sync().into_iter().find(|(dir, _)| *dir == w.root) {
            Some((_, e)) => Err(e),
            None => Ok(w),
        }
    }

    /// Watches the directories not watched yet and forgets those gone or replaced. Returns the
    /// readable directories that could not be watched (the inotify limit, or the root gone),
    /// each once until it can be; an unreadable directory is not among them, as the load
    /// reports it.
    pub fn sync(&mut self) -> Vec<(PathBuf, notify::Error)> {
        let mut dirs = BTreeMap::new();
        directories(&self.root, &mut dirs, &mut BTreeSet::new());
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(dir, id)| dirs.get(*dir) != Some(*id))
            .map(|(dir, _)| dir.clone())
            .collect();
        for dir in stale {
            // (the watch of a deleted directory is already gone: nothing to undo)
            let _ = self.watcher.unwatch_dir(&dir);
            self.watched.remove(&dir);
        }
        self.warned
            .retain(|dir| dirs.contains_key(dir) || *dir == self.root);
        let mut failed = Vec::new();
        if !dirs.contains_key(&self.root) {
            // the root itself is gone: watching it says why
            if let Err(e) = self.watcher.watch_dir(&self.root)
                && self.warned.insert(self.root.clone())
            {
                failed.push((self.root.clone(), e));
            }
            return failed;
        }
        for (dir, id) in dirs {
            if self.watched.contains_key(&dir) {
                continue;
            }
            match self.watcher.watch_dir(&dir) {
                Ok(()) => {
                    self.watched.insert(dir.clone(), id);
                    self.warned.remove(&dir);
                }
                Err(_) if dir != self.root && std::fs::read_dir(&dir).is_err() => {}
                Err(e) => {
                    if self.warned.insert(dir.clone()) {
                        failed.push((dir, e));
                    }
                }
            }
        }
        failed
    }

    /// The directories watched now.
    #[cfg(test)]
    fn watched(&self) -> Vec<&Path> {
        self.watched.keys().map(PathBuf::as_path).collect()
    }
}

/// `dir` and every directory under it (symbolic links followed, each directory once), with
/// their identities. A directory whose listing cannot be read is included, without what is
/// under it. Every directory counts, hidden ones too: a visible file may link into one.
fn directories(dir: &Path, out: &mut BTreeMap<PathBuf, DirId>, seen: &mut BTreeSet<DirId>) {
    let Ok(meta) = std::fs::metadata(dir) else {
        return;
    };
    let id = (meta.dev(), meta.ino());
    if !meta.is_dir() || !seen.insert(id) {
        return;
    }
    out.insert(dir.to_path_buf(), id);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => entry.path().is_dir(),
            Ok(t) => t.is_dir(),
            Err(_) => false,
        };
        if is_dir {
            directories(&entry.path(), out, seen);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("zg-watch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn watch(root: &Path) -> (TreeWatch<Debounced>, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel();
        let debouncer = notify_debouncer_full::new_debouncer(
            Duration::from_millis(10),
            None,
            move |_: notify_debouncer_full::DebounceEventResult| {
                let _ = tx.send(());
            },
        )
        .unwrap();
        (TreeWatch::new(debouncer, root.to_path_buf()).unwrap(), rx)
    }

    #[test]
    fn every_directory_is_watched_and_new_ones_after_a_sync() {
        let root = tmpdir("dirs");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("a/loop")).unwrap();
        let (mut w, rx) = watch(&root);
        let mut want = vec![
            root.clone(),
            root.join(".hidden"),
            root.join("a"),
            root.join("a/b"),
        ];
        assert_eq!(
            w.watched(),
            want,
            "the link back to the root is not followed twice"
        );
        std::fs::create_dir_all(root.join("c/d")).unwrap();
        assert!(w.sync().is_empty());
        want.extend([root.join("c"), root.join("c/d")]);
        want.sort();
        assert_eq!(w.watched(), want);
        while rx.try_recv().is_ok() {}
        std::fs::write(root.join("c/d/x.yaml"), "a: 1\n").unwrap();
        rx.recv_timeout(Duration::from_secs(5))
            .expect("a change in a directory made after the start is seen");
        std::fs::remove_dir_all(root.join("c")).unwrap();
        assert!(w.sync().is_empty());
        want.retain(|d| !d.starts_with(root.join("c")));
        assert_eq!(w.watched(), want, "gone directories are forgotten");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_missing_root_is_an_error() {
        let root = tmpdir("missing").join("nothing-here");
        let debouncer = notify_debouncer_full::new_debouncer(
            Duration::from_millis(10),
            None,
            |_: notify_debouncer_full::DebounceEventResult| {},
        )
        .unwrap();
        assert!(TreeWatch::new(debouncer, root).is_err());
    }
}
