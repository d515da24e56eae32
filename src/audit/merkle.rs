//! RFC 6962 / RFC 9162 Merkle tree hashing: leaf and node hashes, tree heads, inclusion and
//! consistency proofs and their verification. Pure; storage supplies hashes of *perfect*
//! subtrees (`level`, `index`: the subtree of 2^level leaves starting at leaf index·2^level),
//! so a proof costs O(log n) lookups however large the log is.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// SHA-256(0x00 || leaf): the leaf prefix keeps a leaf from ever passing for an inner node.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (n ≥ 2): RFC 6962's split point.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH of leaves [start, start+size): a stored perfect subtree when aligned, else split.
fn subtree<E>(
    get: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
    start: u64,
    size: u64,
) -> Result<Hash, E> {
    if size.is_power_of_two() && start.is_multiple_of(size) {
        let level = size.trailing_zeros();
        return get(level, start >> level);
    }
    let k = split(size);
    let left = subtree(get, start, k)?;
    let right = subtree(get, start + k, size - k)?;
    Ok(node_hash(&left, &right))
}

/// The tree head of the first `size` leaves.
pub fn root<E>(get: &mut impl FnMut(u32, u64) -> Result<Hash, E>, size: u64) -> Result<Hash, E> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree(get, 0, size)
}

/// RFC 6962 §2.1.1 PATH(m, D[n]), leaf-side first.
pub fn inclusion_proof<E>(
    get: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, E> {
    let mut out = Vec::new();
    path(get, index, 0, size, &mut out)?;
    Ok(out)
}

fn path<E>(
    get: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
    m: u64,
    start: u64,
    n: u64,
    out: &mut Vec<Hash>,
) -> Result<(), E> {
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(get, m, start, k, out)?;
        out.push(subtree(get, start + k, n - k)?);
    } else {
        path(get, m - k, start + k, n - k, out)?;
        out.push(subtree(get, start, k)?);
    }
    Ok(())
}

/// RFC 6962 §2.1.2 PROOF(m, D[n]) between the first `old` and the first `new` leaves.
pub fn consistency_proof<E>(
    get: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, E> {
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(get, old, 0, new, true, &mut out)?;
    }
    Ok(out)
}

fn subproof<E>(
    get: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
    m: u64,
    start: u64,
    n: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), E> {
    if m == n {
        if !whole {
            out.push(subtree(get, start, n)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(get, m, start, k, whole, out)?;
        out.push(subtree(get, start + k, n - k)?);
    } else {
        subproof(get, m - k, start + k, n - k, false, out)?;
        out.push(subtree(get, start, k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.3.2: does `proof` place `leaf` at `index` in the tree of `size` with `root`?
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: does `proof` show the tree (`new`, `new_root`) extends (`old`, `old_root`)?
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && fr == *old_root && sr == *new_root
}

/// The perfect subtrees that make up leaves [start, end), left to right, as (level, index):
/// the "compact range" of that span. For start = 0 it is the log's frontier.
pub fn decompose(start: u64, end: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        // The largest aligned block at `at` that fits before `end`.
        let mut level = if at == 0 { 63 } else { at.trailing_zeros() };
        while level > 0 && (1u64 << level) > end - at {
            level -= 1;
        }
        out.push((level, at >> level));
        at += 1 << level;
    }
    out
}

/// An append-only tree held as its frontier: the roots of the perfect subtrees covering the
/// leaves so far, largest first. O(log n) memory, so a verifier can stream any number of leaves.
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    size: u64,
    nodes: Vec<(u32, Hash)>,
}

impl Frontier {
    /// A frontier from the hashes of `decompose(0, size)`, in that order.
    pub fn from_parts(size: u64, hashes: &[Hash]) -> Option<Self> {
        let shape = decompose(0, size);
        (shape.len() == hashes.len()).then(|| Frontier {
            size,
            nodes: shape
                .iter()
                .map(|(l, _)| *l)
                .zip(hashes.iter().copied())
                .collect(),
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; returns the perfect subtrees it completed as (level, index, hash),
    /// the leaf itself first, so storage can keep every perfect node.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let mut done = Vec::new();
        self.append(0, leaf, &mut done);
        done
    }

    /// Appends without reporting what it completed (the verifier's fast path).
    pub fn push_leaf(&mut self, leaf: Hash) {
        let mut level = 0;
        let mut hash = leaf;
        while let Some(&(l, left)) = self.nodes.last() {
            if l != level {
                break;
            }
            self.nodes.pop();
            hash = node_hash(&left, &hash);
            level += 1;
        }
        self.nodes.push((level, hash));
        self.size += 1;
    }

    /// Appends a perfect subtree of 2^level leaves; the size must be a multiple of 2^level.
    pub fn push_subtree(&mut self, level: u32, hash: Hash) -> bool {
        if !self.size.is_multiple_of(1u64 << level) {
            return false;
        }
        let mut ignored = Vec::new();
        self.append(level, hash, &mut ignored);
        true
    }

    fn append(&mut self, level: u32, hash: Hash, done: &mut Vec<(u32, u64, Hash)>) {
        let start = self.size;
        self.size += 1 << level;
        let (mut level, mut hash) = (level, hash);
        done.push((level, start >> level, hash));
        while let Some(&(l, left)) = self.nodes.last() {
            if l != level {
                break;
            }
            self.nodes.pop();
            hash = node_hash(&left, &hash);
            level += 1;
            done.push((level, (self.size >> level) - 1, hash));
        }
        self.nodes.push((level, hash));
    }

    /// The tree head: fold the frontier from the right.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }

    pub fn hashes(&self) -> Vec<Hash> {
        self.nodes.iter().map(|(_, h)| *h).collect()
    }
}

pub fn to_hex(h: &[u8]) -> String {
    let mut buf = Vec::with_capacity(h.len() * 2);
    write_hex(&mut buf, h);
    String::from_utf8(buf).expect("hex digits are ASCII")
}

/// Appends `h` in lowercase hex to `buf`.
pub fn write_hex(buf: &mut Vec<u8>, h: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    buf.reserve(h.len() * 2);
    for b in h {
        buf.push(DIGITS[(b >> 4) as usize]);
        buf.push(DIGITS[(b & 15) as usize]);
    }
}

pub fn from_hex(s: &str) -> Option<Hash> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An in-memory log: perfect subtrees computed from the leaves.
    struct Mem(Vec<Hash>);

    impl Mem {
        fn get(&self) -> impl FnMut(u32, u64) -> Result<Hash, ()> + '_ {
            move |level, index| {
                let start = (index << level) as usize;
                let size = 1usize << level;
                if start + size > self.0.len() {
                    return Err(());
                }
                Ok(naive(&self.0[start..start + size]))
            }
        }
    }

    fn naive(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&naive(&leaves[..k]), &naive(&leaves[k..]))
            }
        }
    }

    fn h(s: &str) -> Hash {
        from_hex(s).unwrap()
    }

    fn rfc_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| {
            let bytes: Vec<u8> = (0..s.len() / 2)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            leaf_hash(&bytes)
        })
        .collect()
    }

    // The Certificate Transparency reference vectors for RFC 6962.
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn roots_match_the_rfc_6962_reference_vectors() {
        let mem = Mem(rfc_leaves());
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), h(ROOTS[0]));
        for n in 1..=8u64 {
            frontier.push_leaf(mem.0[n as usize - 1]);
            assert_eq!(
                root(&mut mem.get(), n).unwrap(),
                h(ROOTS[n as usize]),
                "size {n}"
            );
            assert_eq!(frontier.root(), h(ROOTS[n as usize]), "frontier size {n}");
        }
    }

    #[test]
    fn inclusion_proofs_match_the_reference_vectors() {
        let mem = Mem(rfc_leaves());
        let cases: [(u64, u64, &[&str]); 3] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
        ];
        for (index, size, expected) in cases {
            let proof = inclusion_proof(&mut mem.get(), index, size).unwrap();
            let expected: Vec<Hash> = expected.iter().map(|s| h(s)).collect();
            assert_eq!(proof, expected, "leaf {index} of {size}");
            assert!(verify_inclusion(
                &mem.0[index as usize],
                index,
                size,
                &proof,
                &h(ROOTS[size as usize])
            ));
        }
    }

    #[test]
    fn decomposition_covers_the_range_with_aligned_blocks() {
        assert_eq!(decompose(0, 13), vec![(3, 0), (2, 2), (0, 12)]);
        assert_eq!(decompose(5, 13), vec![(0, 5), (1, 3), (2, 2), (0, 12)]);
        assert!(decompose(4, 4).is_empty());
    }

    fn seeded(n: u64, seed: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i ^ seed).to_be_bytes()))
            .collect()
    }

    proptest! {
        #[test]
        fn every_inclusion_proof_verifies_and_a_wrong_one_does_not(
            n in 1u64..300,
            seed in any::<u64>(),
        ) {
            let mem = Mem(seeded(n, seed));
            let r = root(&mut mem.get(), n).unwrap();
            prop_assert_eq!(r, naive(&mem.0));
            let m = seed % n;
            let proof = inclusion_proof(&mut mem.get(), m, n).unwrap();
            prop_assert!(verify_inclusion(&mem.0[m as usize], m, n, &proof, &r));
            prop_assert!(!verify_inclusion(&leaf_hash(b"other"), m, n, &proof, &r));
            if n > 1 {
                let next = (m + 1) % n;
                prop_assert!(!verify_inclusion(&mem.0[m as usize], next, n, &proof, &r));
            }
        }

        #[test]
        fn every_consistency_proof_verifies_and_a_forged_one_does_not(
            n in 1u64..300,
            seed in any::<u64>(),
        ) {
            let mem = Mem(seeded(n, seed));
            let m = 1 + seed % n;
            let (old, new) = (root(&mut mem.get(), m).unwrap(), root(&mut mem.get(), n).unwrap());
            let proof = consistency_proof(&mut mem.get(), m, n).unwrap();
            prop_assert!(verify_consistency(m, n, &old, &new, &proof));
            prop_assert!(!verify_consistency(m, n, &leaf_hash(b"forged"), &new, &proof));
            if m < n {
                prop_assert!(!verify_consistency(m, n, &old, &leaf_hash(b"forged"), &proof));
            }
        }

        #[test]
        fn a_frontier_rebuilt_from_stored_nodes_continues_the_same_tree(
            n in 0u64..200,
            more in 1u64..100,
        ) {
            let leaves: Vec<Hash> = (0..n + more).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let mem = Mem(leaves.clone());
            let parts: Vec<Hash> = decompose(0, n)
                .iter()
                .map(|&(l, i)| mem.get()(l, i).unwrap())
                .collect();
            let mut f = Frontier::from_parts(n, &parts).unwrap();
            let mut stored = 0;
            for leaf in &leaves[n as usize..] {
                for (level, index, hash) in f.push(*leaf) {
                    prop_assert_eq!(hash, mem.get()(level, index).unwrap());
                    stored += 1;
                }
            }
            prop_assert!(stored >= more as usize);
            prop_assert_eq!(f.root(), naive(&leaves));
            // The right-hand side of a range proof: the blocks from n to the end, appended.
            let mut g = Frontier::from_parts(n, &parts).unwrap();
            for (level, index) in decompose(n, n + more) {
                prop_assert!(g.push_subtree(level, mem.get()(level, index).unwrap()));
            }
            prop_assert_eq!(g.root(), naive(&leaves));
        }
    }
}
