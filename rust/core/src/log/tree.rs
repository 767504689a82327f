//! The in-memory part of the Merkle tree: the current full roots, and how a new
//! leaf merges into them. Shared by the writer, the whole-log verifier and the
//! proof verifier so all three hash the tree the same way.

use crate::crypto::{self, Hash};
use crate::flat_tree;

/// One node of the flat tree: `size` is the number of data bytes below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub index: u64,
    pub size: u64,
    pub hash: Hash,
}

impl Node {
    pub fn leaf(entry: u64, data: &[u8]) -> Self {
        Self { index: 2 * entry, size: data.len() as u64, hash: crypto::leaf_hash(data) }
    }

    /// The parent of two sibling nodes, in either order.
    pub fn parent_of(a: &Node, b: &Node) -> Self {
        let (left, right) = if a.index < b.index { (a, b) } else { (b, a) };
        let size = left.size + right.size;
        Self { index: flat_tree::parent(left.index), size, hash: crypto::parent_hash(&left.hash, &right.hash, size) }
    }
}

/// The full roots of a tree of `length` entries, left to right.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roots {
    nodes: Vec<Node>,
    length: u64,
    byte_length: u64,
}

impl Roots {
    /// Rebuild from stored roots; `None` if they are not exactly the full roots
    /// of some length (so a damaged root index can never be mistaken for a tree).
    pub fn from_nodes(nodes: Vec<Node>) -> Option<Self> {
        let mut length = 0u64;
        let mut byte_length = 0u64;
        for node in &nodes {
            if flat_tree::depth(node.index) >= 60 {
                return None;
            }
            let leaves = (flat_tree::right_span(node.index) - flat_tree::left_span(node.index)) / 2 + 1;
            length = length.checked_add(leaves)?;
            byte_length = byte_length.checked_add(node.size)?;
        }
        if flat_tree::full_roots(length) != nodes.iter().map(|n| n.index).collect::<Vec<_>>() {
            return None;
        }
        Some(Self { nodes, length, byte_length })
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    pub fn byte_length(&self) -> u64 {
        self.byte_length
    }

    /// Add the next leaf; every node this creates (the leaf, then each parent it
    /// completes) is pushed to `created`, for the caller to store.
    pub fn push_leaf(&mut self, leaf: Node, created: &mut Vec<Node>) {
        debug_assert_eq!(leaf.index, 2 * self.length);
        self.length += 1;
        self.byte_length += leaf.size;
        created.push(leaf);
        let mut top = leaf;
        while let Some(last) = self.nodes.last() {
            if flat_tree::sibling(top.index) != last.index {
                break;
            }
            top = Node::parent_of(last, &top);
            self.nodes.pop();
            created.push(top);
        }
        self.nodes.push(top);
    }

    pub fn tree_hash(&self) -> Hash {
        crypto::tree_hash(self.nodes.iter().map(|n| (&n.hash, n.index, n.size)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_after_pushing_leaves_are_the_full_roots() {
        let mut roots = Roots::default();
        let mut created = Vec::new();
        for i in 0..37u64 {
            roots.push_leaf(Node::leaf(i, &i.to_le_bytes()), &mut created);
            let indexes: Vec<u64> = roots.nodes().iter().map(|n| n.index).collect();
            assert_eq!(indexes, flat_tree::full_roots(i + 1));
        }
        assert_eq!(roots.byte_length(), 37 * 8);
        // 37 leaves and 37 - popcount(37) parents.
        assert_eq!(created.len() as u64, 37 + 37 - 37u64.count_ones() as u64);
        assert_eq!(Roots::from_nodes(roots.nodes().to_vec()), Some(roots.clone()));
    }

    #[test]
    fn stored_roots_with_a_wrong_index_are_refused() {
        let mut roots = Roots::default();
        let mut created = Vec::new();
        for i in 0..3u64 {
            roots.push_leaf(Node::leaf(i, b"x"), &mut created);
        }
        let mut nodes = roots.nodes().to_vec();
        nodes[1].index = 6;
        assert_eq!(Roots::from_nodes(nodes), None);
    }
}
