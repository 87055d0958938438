//! The rendered tree as data: directories with their children in listing order, files with
//! their exact bytes, and each node's modification time; one owner for the whole tree.
//!
//! It knows no layout and nothing of captures or daemons: the layout modules decide what goes
//! where, the writers and the FUSE server only walk what is here.

use std::collections::HashMap;

/// Every directory's mode, as FLoM's VFS shows them (`dr-xr-x---`).
pub const DIR_MODE: u16 = 0o550;
/// Every file's mode (`-r--r-----`).
pub const FILE_MODE: u16 = 0o440;

/// A node of one [`Tree`]; meaningless in another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(usize);

#[derive(Clone, Debug)]
pub struct Node {
    /// The name in its parent (empty for the root).
    pub name: String,
    /// `None` for the root.
    pub parent: Option<NodeId>,
    /// Wall-clock Unix nanoseconds.
    pub mtime_ns: u64,
    pub kind: Kind,
}

#[derive(Clone, Debug)]
pub enum Kind {
    /// The children in listing (readdir) order.
    Dir(Vec<NodeId>),
    File(Vec<u8>),
}

impl Node {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    /// [`DIR_MODE`] or [`FILE_MODE`]: the mode follows from the kind alone.
    pub fn mode(&self) -> u16 {
        if self.is_dir() {
            DIR_MODE
        } else {
            FILE_MODE
        }
    }

    /// The children of a directory; none for a file.
    pub fn children(&self) -> &[NodeId] {
        match &self.kind {
            Kind::Dir(children) => children,
            Kind::File(_) => &[],
        }
    }
}

/// A tree of directories and files, all owned by one user and group.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: Vec<Node>,
    // Lookups by name stay O(1) in directories of thousands of lockers (FLoM's are linear).
    by_name: HashMap<(NodeId, String), NodeId>,
    pub uid: u32,
    pub gid: u32,
}

impl Tree {
    /// A tree of just its root directory.
    pub fn new(uid: u32, gid: u32, root_mtime_ns: u64) -> Tree {
        let root = Node {
            name: String::new(),
            parent: None,
            mtime_ns: root_mtime_ns,
            kind: Kind::Dir(Vec::new()),
        };
        Tree {
            nodes: vec![root],
            by_name: HashMap::new(),
            uid,
            gid,
        }
    }

    pub fn root(&self) -> NodeId {
        NodeId(0)
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// Every node, the root first; a parent always comes before its children.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> {
        (0..self.nodes.len()).map(NodeId)
    }

    /// The child of `dir` called `name`.
    pub fn child(&self, dir: NodeId, name: &str) -> Option<NodeId> {
        self.by_name.get(&(dir, name.to_owned())).copied()
    }

    /// The node at a `/`-separated path relative to the root (`""` is the root).
    pub fn find(&self, path: &str) -> Option<NodeId> {
        path.split('/')
            .filter(|part| !part.is_empty())
            .try_fold(self.root(), |dir, part| self.child(dir, part))
    }

    /// The node's path relative to the root, `/`-separated (`""` for the root).
    pub fn path(&self, id: NodeId) -> String {
        let mut parts = Vec::new();
        let mut at = id;
        while let Some(parent) = self.node(at).parent {
            parts.push(self.node(at).name.as_str());
            at = parent;
        }
        parts.reverse();
        parts.join("/")
    }

    /// Every node below the root with its path, in `find`'s order: each directory's children
    /// in listing order, depth first.
    pub fn walk(&self) -> Vec<(String, NodeId)> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<(String, NodeId)> = self.children_with_paths("", self.root());
        while let Some((path, id)) = stack.pop() {
            stack.extend(self.children_with_paths(&path, id));
            out.push((path, id));
        }
        out
    }

    // Reversed, so that popping the stack visits them in listing order.
    fn children_with_paths(&self, prefix: &str, dir: NodeId) -> Vec<(String, NodeId)> {
        self.node(dir)
            .children()
            .iter()
            .rev()
            .map(|&child| {
                let name = &self.node(child).name;
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                (path, child)
            })
            .collect()
    }

    /// Appends a directory to `parent`'s listing. Names must be unique in a directory: the
    /// layout makes sure of it (a capture that lists an id twice shows it once).
    pub fn add_dir(&mut self, parent: NodeId, name: &str, mtime_ns: u64) -> NodeId {
        self.add(parent, name, mtime_ns, Kind::Dir(Vec::new()))
    }

    /// Appends a file with exactly `bytes` to `parent`'s listing.
    pub fn add_file(&mut self, parent: NodeId, name: &str, bytes: Vec<u8>, mtime_ns: u64) {
        self.add(parent, name, mtime_ns, Kind::File(bytes));
    }

    fn add(&mut self, parent: NodeId, name: &str, mtime_ns: u64, kind: Kind) -> NodeId {
        debug_assert!(
            self.child(parent, name).is_none(),
            "{name} added twice to {}",
            self.path(parent)
        );
        let id = NodeId(self.nodes.len());
        self.nodes.push(Node {
            name: name.to_owned(),
            parent: Some(parent),
            mtime_ns,
            kind,
        });
        if let Kind::Dir(children) = &mut self.nodes[parent.0].kind {
            children.push(id);
        }
        self.by_name.insert((parent, name.to_owned()), id);
        id
    }

    /// Sets a directory's mtime to its newest child's, or to `empty_ns` if it has none: a
    /// directory's mtime moves when a child is added (or removed, which one snapshot cannot
    /// see).
    pub fn set_mtime_from_children(&mut self, dir: NodeId, empty_ns: u64) {
        let newest = self
            .node(dir)
            .children()
            .iter()
            .map(|&child| self.node(child).mtime_ns)
            .max();
        self.nodes[dir.0].mtime_ns = newest.unwrap_or(empty_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_lists_depth_first_in_listing_order() {
        let mut tree = Tree::new(0, 0, 1);
        let a = tree.add_dir(tree.root(), "a", 2);
        tree.add_file(a, "z", b"z".to_vec(), 3);
        let b = tree.add_dir(a, "b", 4);
        tree.add_file(b, "y", Vec::new(), 5);
        tree.add_file(tree.root(), "c", Vec::new(), 6);
        let paths: Vec<String> = tree.walk().into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["a", "a/z", "a/b", "a/b/y", "c"]);
        assert_eq!(
            tree.find("a/b/y").map(|id| tree.path(id)),
            Some("a/b/y".into())
        );
        assert_eq!(tree.find(""), Some(tree.root()));
        assert_eq!(tree.find("a/x"), None);
        tree.set_mtime_from_children(a, 0);
        assert_eq!(tree.node(a).mtime_ns, 4);
        assert_eq!(tree.node(a).mode(), DIR_MODE);
        assert_eq!(tree.node(tree.find("c").unwrap()).mode(), FILE_MODE);
    }
}
