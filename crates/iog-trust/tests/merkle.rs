//! Every leaf's proof leads to the root, and nothing else does.

use iog_trust::merkle::{self, Hash, MerkleError, MerkleTree};
use proptest::prelude::*;

fn leaves(n_leaves: usize) -> Vec<Hash> {
    (0..n_leaves).map(|idx| merkle::leaf_hash(&(idx as u64).to_le_bytes())).collect()
}

proptest! {
    #[test]
    fn a_frontier_knows_each_leafs_left_siblings_before_the_leaf(n_leaves in 1usize..300) {
        let leaves = leaves(n_leaves);
        let tree = MerkleTree::new(leaves.clone()).unwrap();
        let mut frontier = merkle::Frontier::default();
        for (index, leaf) in leaves.iter().enumerate() {
            let proof = tree.proof(index).unwrap();
            let from_proof = merkle::left_siblings(index as u64, n_leaves as u64, &proof).unwrap();
            let from_frontier: Vec<Hash> = frontier.left_siblings().copied().collect();
            prop_assert_eq!(&from_proof, &from_frontier, "leaf {}", index);
            // One left sibling per one bit of the index.
            prop_assert_eq!(from_proof.len(), index.count_ones() as usize);
            frontier.push(*leaf);
        }
        let long = vec![[0u8; 32]; merkle::proof_len(0, n_leaves as u64).unwrap() + 1];
        prop_assert!(merkle::left_siblings(0, n_leaves as u64, &long).is_err());
    }

    #[test]
    fn every_proof_leads_to_the_root(n_leaves in 1usize..300, pick in any::<prop::sample::Index>()) {
        let leaves = leaves(n_leaves);
        let tree = MerkleTree::new(leaves.clone()).unwrap();
        prop_assert_eq!(tree.root(), merkle::root(&leaves).unwrap());
        let index = pick.index(n_leaves);
        let proof = tree.proof(index).unwrap();
        prop_assert_eq!(proof.len(), merkle::proof_len(index as u64, n_leaves as u64).unwrap());
        prop_assert!(proof.len() <= merkle::DEPTH_MAX);
        let root = merkle::root_from_proof(&leaves[index], index as u64, n_leaves as u64, &proof).unwrap();
        prop_assert_eq!(root, tree.root());
    }

    #[test]
    fn a_changed_leaf_or_sibling_misses_the_root(n_leaves in 2usize..300, pick in any::<prop::sample::Index>(), bit in 0usize..256) {
        let leaves = leaves(n_leaves);
        let tree = MerkleTree::new(leaves.clone()).unwrap();
        let index = pick.index(n_leaves);
        let mut leaf = leaves[index];
        leaf[bit / 8] ^= 1 << (bit % 8);
        let proof = tree.proof(index).unwrap();
        let root = merkle::root_from_proof(&leaf, index as u64, n_leaves as u64, &proof).unwrap();
        prop_assert_ne!(root, tree.root());

        let mut proof = tree.proof(index).unwrap();
        proof[0][bit / 8] ^= 1 << (bit % 8);
        let root = merkle::root_from_proof(&leaves[index], index as u64, n_leaves as u64, &proof).unwrap();
        prop_assert_ne!(root, tree.root());
    }

    #[test]
    fn a_proof_of_the_wrong_length_is_refused(n_leaves in 1usize..300, pick in any::<prop::sample::Index>(), extra in 1usize..70) {
        let leaves = leaves(n_leaves);
        let tree = MerkleTree::new(leaves.clone()).unwrap();
        let index = pick.index(n_leaves);
        let mut proof = tree.proof(index).unwrap();
        proof.extend(std::iter::repeat_n([7u8; 32], extra));
        let refused = merkle::root_from_proof(&leaves[index], index as u64, n_leaves as u64, &proof);
        let is_proof_length = matches!(refused, Err(MerkleError::ProofLength { .. }));
        prop_assert!(is_proof_length);
    }
}

#[test]
fn a_single_leaf_is_its_own_root_and_needs_no_proof() {
    let leaf = merkle::leaf_hash(b"only");
    let tree = MerkleTree::new(vec![leaf]).unwrap();
    assert_eq!(tree.root(), leaf);
    assert!(tree.proof(0).unwrap().is_empty());
}

#[test]
fn empty_trees_and_out_of_range_leaves_are_errors() {
    assert_eq!(MerkleTree::new(Vec::new()).unwrap_err(), MerkleError::Empty);
    assert_eq!(merkle::root(&[]).unwrap_err(), MerkleError::Empty);
    let tree = MerkleTree::new(leaves(5)).unwrap();
    assert_eq!(tree.proof(5).unwrap_err(), MerkleError::IndexOutOfRange { index: 5, n_leaves: 5 });
    assert_eq!(
        merkle::root_from_proof(&[0; 32], 9, 5, &[]).unwrap_err(),
        MerkleError::IndexOutOfRange { index: 9, n_leaves: 5 }
    );
}

#[test]
fn leaves_and_nodes_hash_apart() {
    // A node's two children concatenated, offered as a leaf's data, must
    // not give the node's hash.
    let (left, right) = (merkle::leaf_hash(b"l"), merkle::leaf_hash(b"r"));
    let mut both = left.to_vec();
    both.extend_from_slice(&right);
    assert_ne!(merkle::leaf_hash(&both), merkle::node_hash(&left, &right));
}
