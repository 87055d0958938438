//! Inode numbers for a served tree. A node's number is a hash of its path, so a path that
//! persists across refreshes keeps its inode, a vanished one is simply not found (ENOENT),
//! and nothing grows over the mount's life: no table of every path ever seen.
//!
//! Numbers only: it knows nothing of FUSE requests or of what the nodes hold.

use crate::render::tree::{NodeId, Tree};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// FUSE's root inode.
pub(super) const ROOT: u64 = 1;
/// The control file `.refresh` (not a node of any tree).
pub(super) const CONTROL: u64 = 2;
/// Hashed numbers start here, clear of the fixed ones.
const FIRST_HASHED: u64 = 3;

/// The inode of every node of one tree, both ways.
pub(super) struct Inodes {
    by_ino: HashMap<u64, NodeId>,
    by_node: HashMap<NodeId, u64>,
}

impl Inodes {
    pub(super) fn new(tree: &Tree) -> Inodes {
        let mut inodes = Inodes {
            by_ino: HashMap::with_capacity(tree.ids().size_hint().0),
            by_node: HashMap::with_capacity(tree.ids().size_hint().0),
        };
        inodes.insert(ROOT, tree.root());
        for (path, id) in tree.walk() {
            let mut ino = path_inode(&path);
            // A collision of two live paths (in 2^64) costs the later one, in listing
            // order, its stability, never its correctness.
            while inodes.by_ino.contains_key(&ino) {
                ino = ino.checked_add(1).unwrap_or(FIRST_HASHED);
            }
            inodes.insert(ino, id);
        }
        inodes
    }

    fn insert(&mut self, ino: u64, id: NodeId) {
        self.by_ino.insert(ino, id);
        self.by_node.insert(id, ino);
    }

    pub(super) fn node(&self, ino: u64) -> Option<NodeId> {
        self.by_ino.get(&ino).copied()
    }

    pub(super) fn ino(&self, id: NodeId) -> u64 {
        // Every node got a number in `new`.
        self.by_node[&id]
    }
}

/// The same path gives the same number for the life of the process (`DefaultHasher::new`
/// uses fixed keys), which is as long as a mount lives.
fn path_inode(path: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    path.hash(&mut hasher);
    hasher.finish().max(FIRST_HASHED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixture;
    use crate::render::tree::build;

    #[test]
    fn a_path_keeps_its_inode_across_captures() {
        let before = fixture::capture();
        let mut after = before.clone();
        // The waiter on foo is granted: waitings/4 vanishes, holders/4 appears.
        let waiter = after.state.lockers[0].waitings.remove(0);
        after.state.lockers[0].holders = vec![waiter];
        let (t1, t2) = (build(&before), build(&after));
        let (i1, i2) = (Inodes::new(&t1), Inodes::new(&t2));
        let ino =
            |tree: &Tree, inodes: &Inodes, path: &str| tree.find(path).map(|id| inodes.ino(id));
        for path in [
            "",
            "status",
            "status/lockers/3",
            "status/lockers/3/resource_name",
        ] {
            assert_eq!(ino(&t1, &i1, path), ino(&t2, &i2, path), "{path}");
        }
        assert_eq!(ino(&t1, &i1, ""), Some(ROOT));
        let gone = ino(&t1, &i1, "status/lockers/3/waitings/4").unwrap();
        assert_eq!(i2.node(gone), None);
        assert_eq!(ino(&t2, &i2, "status/lockers/3/waitings/4"), None);
        // Every node has its own number.
        let all: std::collections::HashSet<u64> = t1.ids().map(|id| i1.ino(id)).collect();
        assert_eq!(all.len(), t1.ids().count());
        assert!(!all.contains(&CONTROL));
    }
}
