//! The host's view of a workspace directory, through `cap-std`: every operation starts
//! from the workspace's own directory handle and walks one component at a time with
//! `O_NOFOLLOW`, so a symbolic link a guest made (pointing anywhere) is never followed
//! when the host reads, writes, lists or hashes files. A link is reported as a link.

use std::io::{self, Read as _, Write as _};
use std::path::Path;

use cap_fs_ext::{DirExt as _, FollowSymlinks, MetadataExt as _, OpenOptionsFollowExt as _};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};
use sha2::{Digest, Sha256};

use super::path::WorkspacePath;

/// What a directory entry is (links are never resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (never followed).
    Symlink,
    /// Anything else (never read).
    Other,
}

/// Why a file operation failed, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// Nothing at that path.
    #[error("no file {0} in the workspace")]
    NotFound(String),
    /// The path (or one of its parents) is a symbolic link.
    #[error(
        "{0} is a symbolic link (or passes through one); sandgraph never follows links in a workspace"
    )]
    Link(String),
    /// The path is not a regular file (a directory, say).
    #[error("{path} is a {kind}, not a file")]
    NotAFile {
        /// The path.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// A parent of the path exists and is not a directory.
    #[error("a parent of {0} is a file, not a directory")]
    ParentNotDirectory(String),
    /// The file is larger than the caller may read this way.
    #[error("{path} is {size} bytes; at most {limit} bytes are returned this way")]
    TooLarge {
        /// The path.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Any other I/O failure.
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Directory => "directory",
        EntryKind::Symlink => "symbolic link",
        EntryKind::Other => "special file",
    }
}

fn kind_of(metadata: &cap_std::fs::Metadata) -> EntryKind {
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        EntryKind::Symlink
    } else if file_type.is_dir() {
        EntryKind::Directory
    } else if file_type.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    }
}

/// Open a workspace's root directory (a path sandgraph made, under the data dir).
pub fn open_root(path: &Path) -> io::Result<Dir> {
    Dir::open_ambient_dir(path, ambient_authority())
}

/// Map "a component was a link" errors (`ELOOP`, or `ENOTDIR` from `O_DIRECTORY |
/// O_NOFOLLOW` on a link) to [`FsError::Link`] after checking what is really there.
fn classify_open_error(dir: &Dir, name: &str, path: &WorkspacePath, err: io::Error) -> FsError {
    match dir.symlink_metadata(name) {
        Ok(metadata) if metadata.file_type().is_symlink() => FsError::Link(path.to_string()),
        Ok(metadata) if !metadata.is_dir() && err.kind() == io::ErrorKind::NotADirectory => {
            FsError::ParentNotDirectory(path.to_string())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => FsError::NotFound(path.to_string()),
        _ => FsError::Io(err),
    }
}

/// The directory holding `path`'s last component; with `create`, missing parents are
/// made (and counted in `created`).
fn parent_dir(
    root: &Dir,
    path: &WorkspacePath,
    create: bool,
    created: &mut u64,
) -> Result<Dir, FsError> {
    let mut dir = root.try_clone()?;
    for component in path.parents() {
        if create {
            match dir.create_dir(component) {
                Ok(()) => *created += 1,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(FsError::Io(e)),
            }
        }
        dir = match dir.open_dir_nofollow(component) {
            Ok(next) => next,
            Err(err) => return Err(classify_open_error(&dir, component, path, err)),
        };
    }
    Ok(dir)
}

/// What is at `path` (never following a link): its kind and size, or `None`.
pub fn stat(root: &Dir, path: &WorkspacePath) -> Result<Option<(EntryKind, u64)>, FsError> {
    let dir = match parent_dir(root, path, false, &mut 0) {
        Ok(dir) => dir,
        Err(FsError::NotFound(_)) => return Ok(None),
        Err(err) => return Err(err),
    };
    match dir.symlink_metadata(path.file_name()) {
        Ok(metadata) => Ok(Some((kind_of(&metadata), metadata.len()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FsError::Io(e)),
    }
}

/// Read a regular file, at most `limit` bytes of it (larger is [`FsError::TooLarge`]).
pub fn read(root: &Dir, path: &WorkspacePath, limit: u64) -> Result<Vec<u8>, FsError> {
    let mut file = open_file(root, path)?;
    let size = file.metadata()?.len();
    if size > limit {
        return Err(FsError::TooLarge {
            path: path.to_string(),
            size,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    (&mut file).take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(FsError::TooLarge {
            path: path.to_string(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Open a regular file for reading without following a link anywhere on its path.
pub fn open_file(root: &Dir, path: &WorkspacePath) -> Result<cap_std::fs::File, FsError> {
    let dir = parent_dir(root, path, false, &mut 0)?;
    let name = path.file_name();
    // Look before opening: only a regular file is opened (a FIFO would block the open;
    // WASI cannot make one, but the host does not rely on that). Nothing else changes
    // the workspace meanwhile: callers hold its lock.
    let metadata = dir
        .symlink_metadata(name)
        .map_err(|err| classify_open_error(&dir, name, path, err))?;
    match kind_of(&metadata) {
        EntryKind::File => {}
        EntryKind::Symlink => return Err(FsError::Link(path.to_string())),
        kind => {
            return Err(FsError::NotAFile {
                path: path.to_string(),
                kind: kind_name(kind),
            });
        }
    }
    let file = dir
        .open_with(
            name,
            OpenOptions::new().read(true).follow(FollowSymlinks::No),
        )
        .map_err(|err| classify_open_error(&dir, name, path, err))?;
    if !file.metadata()?.is_file() {
        return Err(FsError::NotAFile {
            path: path.to_string(),
            kind: "special file",
        });
    }
    Ok(file)
}

/// The outcome of a host write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Entries the write added (the file if new, and any parent directories made).
    pub new_entries: u64,
    /// Size of the file it replaced, if any.
    pub replaced_bytes: u64,
}

/// Write `bytes` to `path` atomically (a temporary file in the same directory, then a
/// rename over the old name, so a reader never sees half a file and a failed write
/// leaves the old one). A link at `path` is replaced, never written through; a
/// directory there is refused.
pub fn write(root: &Dir, path: &WorkspacePath, bytes: &[u8]) -> Result<Written, FsError> {
    let mut new_entries = 0;
    let dir = parent_dir(root, path, true, &mut new_entries)?;
    let name = path.file_name();
    let replaced_bytes = match dir.symlink_metadata(name) {
        Ok(metadata) => match kind_of(&metadata) {
            EntryKind::Directory => {
                return Err(FsError::NotAFile {
                    path: path.to_string(),
                    kind: "directory",
                });
            }
            EntryKind::File => metadata.len(),
            _ => 0,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            new_entries += 1;
            0
        }
        Err(e) => return Err(FsError::Io(e)),
    };
    let temp = format!(
        ".sandgraph-write-{}",
        hex::encode(rand::random::<[u8; 8]>())
    );
    let result = (|| -> io::Result<()> {
        let mut file = dir.open_with(
            &temp,
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .follow(FollowSymlinks::No),
        )?;
        file.write_all(bytes)?;
        file.flush()?;
        dir.rename(&temp, &dir, name)
    })();
    if let Err(err) = result {
        let _ = dir.remove_file(&temp);
        return Err(FsError::Io(err));
    }
    Ok(Written {
        new_entries,
        replaced_bytes,
    })
}

/// Remove the file, link or directory (with everything in it) at `path`; the entries
/// and bytes removed.
pub fn remove(root: &Dir, path: &WorkspacePath) -> Result<(u64, u64), FsError> {
    let dir = parent_dir(root, path, false, &mut 0)?;
    let name = path.file_name();
    let metadata = dir.symlink_metadata(name).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            FsError::NotFound(path.to_string())
        } else {
            FsError::Io(e)
        }
    })?;
    match kind_of(&metadata) {
        EntryKind::Directory => {
            let sub = dir.open_dir_nofollow(name)?;
            let inside = walk(&sub, u64::MAX)?;
            let bytes = inside.entries.iter().map(Entry::counted_bytes).sum();
            let count = inside.entries.len() as u64 + 1;
            drop(sub);
            // cap-std removes the tree relative to `dir`, never following a link inside.
            dir.remove_dir_all(name)?;
            Ok((count, bytes))
        }
        _ => {
            dir.remove_file_or_symlink(name)?;
            Ok((
                1,
                if metadata.is_file() {
                    metadata.len()
                } else {
                    0
                },
            ))
        }
    }
}

/// One entry found by [`walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its path from the workspace root.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its size (of the link itself, for a link).
    pub size: u64,
    /// Change detection: (inode, modification time in ns).
    pub stamp: (u64, i128),
}

impl Entry {
    /// Bytes it counts against the quota (regular files only).
    pub fn counted_bytes(&self) -> u64 {
        if self.kind == EntryKind::File {
            self.size
        } else {
            0
        }
    }
}

/// Everything in a directory tree.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Entries, sorted by path.
    pub entries: Vec<Entry>,
    /// Whether the walk stopped at its limit.
    pub truncated: bool,
}

impl Tree {
    /// Bytes held by regular files and the entry count.
    pub fn usage(&self) -> (u64, u64) {
        let bytes = self.entries.iter().map(Entry::counted_bytes).sum();
        (bytes, self.entries.len() as u64)
    }
}

/// Every entry under `root` (links listed, never followed), at most `limit`.
pub fn walk(root: &Dir, limit: u64) -> Result<Tree, FsError> {
    let mut tree = Tree::default();
    walk_into(root, "", 0, limit, &mut tree)?;
    tree.entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(tree)
}

fn walk_into(
    dir: &Dir,
    prefix: &str,
    depth: usize,
    limit: u64,
    tree: &mut Tree,
) -> Result<(), FsError> {
    for entry in dir.entries()? {
        if tree.entries.len() as u64 >= limit {
            tree.truncated = true;
            return Ok(());
        }
        let entry = entry?;
        // WASI names are UTF-8; anything else was not made by a guest.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let metadata = match dir.symlink_metadata(&name) {
            Ok(metadata) => metadata,
            // Removed while we looked (cannot happen under the workspace lock).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(FsError::Io(e)),
        };
        let kind = kind_of(&metadata);
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let modified = metadata
            .modified()
            .ok()
            .and_then(|t| t.into_std().duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(-1);
        tree.entries.push(Entry {
            path: path.clone(),
            kind,
            size: metadata.len(),
            stamp: (metadata.ino(), modified),
        });
        if kind == EntryKind::Directory && depth < 64 {
            let sub = dir.open_dir_nofollow(&name)?;
            walk_into(&sub, &path, depth + 1, limit, tree)?;
        }
    }
    Ok(())
}

/// SHA-256 (hex) of a regular file, read without following links.
pub fn sha256(root: &Dir, path: &WorkspacePath) -> Result<String, FsError> {
    let mut file = open_file(root, path)?;
    let mut hasher = Sha256::new();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> WorkspacePath {
        WorkspacePath::parse(p).unwrap()
    }

    #[test]
    fn writes_reads_lists_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let root = open_root(dir.path()).unwrap();
        let written = write(&root, &path("a/b/c.txt"), b"hello").unwrap();
        assert_eq!(written.new_entries, 3);
        let again = write(&root, &path("a/b/c.txt"), b"hi").unwrap();
        assert_eq!((again.new_entries, again.replaced_bytes), (0, 5));
        assert_eq!(read(&root, &path("a/b/c.txt"), 100).unwrap(), b"hi");
        let tree = walk(&root, 100).unwrap();
        let paths: Vec<_> = tree.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["a", "a/b", "a/b/c.txt"]);
        assert_eq!(tree.usage(), (2, 3));
        assert!(matches!(
            read(&root, &path("a/b/c.txt"), 1),
            Err(FsError::TooLarge { size: 2, .. })
        ));
        assert!(matches!(
            read(&root, &path("a/b"), 100),
            Err(FsError::NotAFile { .. })
        ));
        assert_eq!(remove(&root, &path("a")).unwrap(), (3, 2));
        assert!(walk(&root, 100).unwrap().entries.is_empty());
        assert!(matches!(
            read(&root, &path("a/b/c.txt"), 100),
            Err(FsError::NotFound(_))
        ));
    }

    #[test]
    fn never_follows_a_link_out_of_the_workspace() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"host secret").unwrap();
        std::fs::create_dir(outside.path().join("d")).unwrap();
        std::fs::write(outside.path().join("d/x"), b"host file").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("d"), dir.path().join("dirlink")).unwrap();
        let root = open_root(dir.path()).unwrap();

        assert!(matches!(
            read(&root, &path("link"), 100),
            Err(FsError::Link(_))
        ));
        assert!(matches!(
            sha256(&root, &path("link")),
            Err(FsError::Link(_))
        ));
        assert!(matches!(
            read(&root, &path("dirlink/x"), 100),
            Err(FsError::Link(_))
        ));
        // Writing through a link to a directory is refused; writing at a link's own
        // name replaces the link, leaving its target alone.
        assert!(matches!(
            write(&root, &path("dirlink/y"), b"x"),
            Err(FsError::Link(_))
        ));
        write(&root, &path("link"), b"mine").unwrap();
        assert_eq!(
            std::fs::read(outside.path().join("secret")).unwrap(),
            b"host secret"
        );
        let tree = walk(&root, 100).unwrap();
        let kinds: Vec<_> = tree
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![("dirlink", EntryKind::Symlink), ("link", EntryKind::File)]
        );
        remove(&root, &path("dirlink")).unwrap();
        assert!(
            outside.path().join("d/x").exists(),
            "the link's target survives"
        );
    }
}
