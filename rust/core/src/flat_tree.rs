//! Flat-tree arithmetic (mafintosh/flat-tree): a binary tree laid out in a flat
//! list. Leaves sit at even indexes (entry `i` is node `2i`), parents at odd ones,
//! and a node's depth is the number of trailing one bits of its index:
//!
//! ```text
//!        3
//!    1       5
//!  0   2   4   6  ...
//! ```

#[inline]
pub fn depth(index: u64) -> u32 {
    (!index).trailing_zeros()
}

#[inline]
pub fn offset(index: u64) -> u64 {
    index >> (depth(index) + 1)
}

#[inline]
pub fn index(depth: u32, offset: u64) -> u64 {
    (offset << (depth + 1)) | ((1u64 << depth) - 1)
}

#[inline]
pub fn parent(index_: u64) -> u64 {
    let d = depth(index_);
    index(d + 1, offset(index_) >> 1)
}

#[inline]
pub fn sibling(index_: u64) -> u64 {
    let d = depth(index_);
    index(d, offset(index_) ^ 1)
}

/// The leftmost leaf under `index`.
#[inline]
pub fn left_span(index_: u64) -> u64 {
    let d = depth(index_);
    if d == 0 {
        index_
    } else {
        offset(index_) * (2u64 << d)
    }
}

/// The rightmost leaf under `index`.
#[inline]
pub fn right_span(index_: u64) -> u64 {
    let d = depth(index_);
    if d == 0 {
        index_
    } else {
        (offset(index_) + 1) * (2u64 << d) - 2
    }
}

/// The two children of a parent node, `None` for a leaf.
#[inline]
pub fn children(index_: u64) -> Option<(u64, u64)> {
    let d = depth(index_);
    if d == 0 {
        return None;
    }
    let off = offset(index_) * 2;
    Some((index(d - 1, off), index(d - 1, off + 1)))
}

/// The roots of the complete subtrees that together cover the first
/// `length` leaves, left to right (`flat-tree` `fullRoots(2 * length)`).
pub fn full_roots(length: u64) -> Vec<u64> {
    let mut roots = Vec::with_capacity(64);
    let mut remaining = length;
    let mut start = 0u64; // first leaf (in flat-tree index units) not yet covered
    while remaining > 0 {
        // The largest power of two that still fits.
        let factor = 1u64 << (63 - remaining.leading_zeros());
        roots.push(start + factor - 1);
        start += 2 * factor;
        remaining -= factor;
    }
    roots
}

/// Does the subtree rooted at `root` contain `index`?
#[inline]
pub fn contains(root: u64, index_: u64) -> bool {
    left_span(root) <= index_ && index_ <= right_span(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_even_and_parents_odd() {
        assert_eq!(depth(0), 0);
        assert_eq!(depth(1), 1);
        assert_eq!(depth(3), 2);
        assert_eq!(depth(7), 3);
        assert_eq!(parent(0), 1);
        assert_eq!(parent(2), 1);
        assert_eq!(parent(1), 3);
        assert_eq!(parent(5), 3);
        assert_eq!(sibling(0), 2);
        assert_eq!(sibling(5), 1);
        assert_eq!(children(3), Some((1, 5)));
        assert_eq!(children(4), None);
    }

    #[test]
    fn spans_cover_the_leaves_below() {
        assert_eq!((left_span(3), right_span(3)), (0, 6));
        assert_eq!((left_span(11), right_span(11)), (8, 14));
        assert_eq!((left_span(6), right_span(6)), (6, 6));
    }

    #[test]
    fn full_roots_match_flat_tree() {
        assert_eq!(full_roots(0), Vec::<u64>::new());
        assert_eq!(full_roots(1), vec![0]);
        assert_eq!(full_roots(2), vec![1]);
        assert_eq!(full_roots(3), vec![1, 4]);
        assert_eq!(full_roots(5), vec![3, 8]);
        assert_eq!(full_roots(7), vec![3, 9, 12]);
        assert_eq!(full_roots(8), vec![7]);
    }

    #[test]
    fn every_leaf_is_under_exactly_one_full_root() {
        for length in 1..200u64 {
            let roots = full_roots(length);
            for leaf in 0..length {
                let n = roots.iter().filter(|r| contains(**r, 2 * leaf)).count();
                assert_eq!(n, 1, "length {length} leaf {leaf}");
            }
        }
    }
}
