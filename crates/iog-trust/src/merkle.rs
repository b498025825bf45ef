//! A small binary Merkle tree over blake3.
//!
//! Leaves and inner nodes are hashed with different one-byte prefixes, so a
//! node can never be passed off as a leaf or the other way round. A level
//! with an odd count promotes its last node unchanged to the level above
//! instead of duplicating it, so a proof holds exactly one sibling per level
//! where the node has one; both sides know the number of leaves, so the
//! length of a valid proof is fixed and anything longer or shorter is refused
//! before any hashing.
//!
//! The crate keeps its own tree rather than using `rs_merkle`: that crate
//! hashes leaves and nodes alike (no domain separation), its proofs are
//! multi-proofs whose layout the verifier must trust, and the whole of what
//! is needed here is about a hundred lines.

use thiserror::Error;

/// A blake3 digest: a leaf hash, a node hash or a root.
pub type Hash = [u8; 32];

/// Deepest tree a proof may climb. Leaf counts are `u64`, so no tree needs
/// more than 64 levels; the challenges' own limits keep trees far smaller.
pub const DEPTH_MAX: usize = 64;

const LEAF_PREFIX: u8 = 0;
const NODE_PREFIX: u8 = 1;

/// Why a tree cannot be built or a proof cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MerkleError {
    #[error("a merkle tree needs at least one leaf")]
    Empty,
    #[error("leaf {index} is out of range for a tree of {n_leaves} leaves")]
    IndexOutOfRange { index: u64, n_leaves: u64 },
    #[error("merkle proof for leaf {index} of {n_leaves} has {got} hashes, want {want}")]
    ProofLength { index: u64, n_leaves: u64, got: usize, want: usize },
}

/// The hash of a leaf's data.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[LEAF_PREFIX]);
    hasher.update(data);
    *hasher.finalize().as_bytes()
}

/// The hash of an inner node from its two children.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    *hasher.finalize().as_bytes()
}

/// A tree with every level kept, to hand out proofs.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    /// `levels[0]` are the leaves, the last level holds the root alone.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Builds the tree over leaf hashes (see [`leaf_hash`]; a leaf may also
    /// be the root of another tree, which is how the compute challenge nests
    /// chunks in rows in products).
    pub fn new(leaves: Vec<Hash>) -> Result<MerkleTree, MerkleError> {
        if leaves.is_empty() {
            return Err(MerkleError::Empty);
        }
        let mut levels = vec![leaves];
        while let Some(level) = levels.last().filter(|level| level.len() > 1) {
            levels.push(next_level(level));
        }
        Ok(MerkleTree { levels })
    }

    pub fn root(&self) -> Hash {
        self.levels.last().and_then(|level| level.first()).copied().expect("a tree has at least one leaf")
    }

    pub fn n_leaves(&self) -> usize {
        self.levels[0].len()
    }

    /// The sibling hashes from leaf `index` up to the root.
    pub fn proof(&self, index: usize) -> Result<Vec<Hash>, MerkleError> {
        let n_leaves = self.n_leaves();
        if index >= n_leaves {
            return Err(MerkleError::IndexOutOfRange { index: index as u64, n_leaves: n_leaves as u64 });
        }
        let mut proof = Vec::new();
        let mut idx = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = idx ^ 1;
            if sibling < level.len() {
                proof.push(level[sibling]);
            }
            idx /= 2;
        }
        Ok(proof)
    }
}

/// The root over leaf hashes, without keeping the levels.
pub fn root(leaves: &[Hash]) -> Result<Hash, MerkleError> {
    if leaves.is_empty() {
        return Err(MerkleError::Empty);
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = next_level(&level);
    }
    Ok(level[0])
}

fn next_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => node_hash(left, right),
            [single] => *single,
            _ => unreachable!("chunks(2) yields one or two items"),
        })
        .collect()
}

/// How many hashes a proof for leaf `index` of a tree of `n_leaves` holds.
pub fn proof_len(index: u64, n_leaves: u64) -> Result<usize, MerkleError> {
    if index >= n_leaves {
        return Err(MerkleError::IndexOutOfRange { index, n_leaves });
    }
    let (mut idx, mut count, mut len) = (index, n_leaves, 0);
    while count > 1 {
        if idx % 2 == 1 || idx + 1 < count {
            len += 1;
        }
        idx /= 2;
        count = count.div_ceil(2);
    }
    Ok(len)
}

/// The siblings in `proof` that lie left of leaf `index`, from the leaf
/// upward: the roots of the complete subtrees that together cover leaves
/// `0..index`. Whoever computed leaf `index` after every earlier leaf was
/// final could know them; nobody could before. A proof of the wrong length
/// is an error.
pub fn left_siblings(index: u64, n_leaves: u64, proof: &[Hash]) -> Result<Vec<Hash>, MerkleError> {
    let want = proof_len(index, n_leaves)?;
    if proof.len() != want {
        return Err(MerkleError::ProofLength { index, n_leaves, got: proof.len(), want });
    }
    let (mut idx, mut count) = (index, n_leaves);
    let mut siblings = proof.iter();
    let mut left = Vec::new();
    while count > 1 {
        if idx % 2 == 1 {
            left.push(*siblings.next().expect("length checked above"));
        } else if idx + 1 < count {
            siblings.next();
        }
        idx /= 2;
        count = count.div_ceil(2);
    }
    Ok(left)
}

/// Roots of the complete subtrees over the leaves pushed so far, kept as a
/// tree is built one leaf at a time (a binary counter of subtrees). Before
/// leaf i is pushed, [`Frontier::left_siblings`] are exactly what
/// [`left_siblings`] reads from leaf i's proof in the finished tree.
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    /// (root, height), largest subtree first.
    roots: Vec<(Hash, u32)>,
}

impl Frontier {
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (leaf, 0);
        while let Some(&(left, height)) = self.roots.last().filter(|(_, height)| *height == node.1) {
            self.roots.pop();
            node = (node_hash(&left, &node.0), height + 1);
        }
        self.roots.push(node);
    }

    /// The next leaf's left siblings, from the leaf upward.
    pub fn left_siblings(&self) -> impl Iterator<Item = &Hash> {
        self.roots.iter().rev().map(|(root, _)| root)
    }
}

/// The root that `proof` leads to from `leaf` at `index` in a tree of
/// `n_leaves`. The caller compares it with the root it trusts. A proof of
/// the wrong length is an error, whatever its content.
pub fn root_from_proof(leaf: &Hash, index: u64, n_leaves: u64, proof: &[Hash]) -> Result<Hash, MerkleError> {
    let want = proof_len(index, n_leaves)?;
    if proof.len() != want {
        return Err(MerkleError::ProofLength { index, n_leaves, got: proof.len(), want });
    }
    let (mut acc, mut idx, mut count) = (*leaf, index, n_leaves);
    let mut siblings = proof.iter();
    while count > 1 {
        if idx % 2 == 1 {
            acc = node_hash(siblings.next().expect("length checked above"), &acc);
        } else if idx + 1 < count {
            acc = node_hash(&acc, siblings.next().expect("length checked above"));
        }
        idx /= 2;
        count = count.div_ceil(2);
    }
    Ok(acc)
}
