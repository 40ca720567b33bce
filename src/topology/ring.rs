//! django-redis's consistent hash ring, reproduced exactly so that keys stay on the shard where
//! django-redis put them: 128 virtual nodes per server, named `"{node}:{i}"`, placed by the hex
//! SHA-256 digest; a key goes to the last point at or before its own digest (wrapping to the
//! last point), after the `{hash tag}` rule of django-redis's `_findhash` regex.
//!
//! Pure Rust, no Python types.

use sha2::{Digest, Sha256};

const VIRTUAL_NODES: usize = 128;

pub struct HashRing {
    /// (hex digest, node index), sorted by digest.
    points: Vec<(String, usize)>,
}

fn hex_sha256(data: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(data)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

impl HashRing {
    /// `names` as django-redis names its nodes: the LOCATION entries, unmodified.
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        let mut points: Vec<(String, usize)> = names
            .iter()
            .enumerate()
            .flat_map(|(node, name)| {
                (0..VIRTUAL_NODES).map(move |i| {
                    (
                        hex_sha256(format!("{}:{i}", name.as_ref()).as_bytes()),
                        node,
                    )
                })
            })
            .collect();
        points.sort();
        Self { points }
    }

    /// The node a (made) cache key lives on.
    pub fn node_for(&self, key: &[u8]) -> usize {
        let digest = hex_sha256(hash_tag(key));
        // bisect_right, then one step back; -1 wraps to the last point, as Python indexing does.
        let after = self
            .points
            .partition_point(|(point, _)| point.as_str() <= digest.as_str());
        let index = after.checked_sub(1).unwrap_or(self.points.len() - 1);
        self.points[index].1
    }
}

/// What django-redis hashes: `re.match(r".*\{(.*)\}.*", key)` group 1 when it matches, else the
/// key. `.` stops at a newline, so only the first line can hold the tag; both `.*` are greedy,
/// so the tag runs from the last `{` before the line's last `}` to that `}`.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let line = key.split(|b| *b == b'\n').next().unwrap_or(key);
    let Some(close) = line.iter().rposition(|b| *b == b'}') else {
        return key;
    };
    match line[..close].iter().rposition(|b| *b == b'{') {
        Some(open) => &line[open + 1..close],
        None => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_vectors_from_django_redis() {
        // Computed with django_redis.hash_ring.HashRing and ShardClient._findhash (7.0).
        let names = [
            "redis://127.0.0.1:6379/1",
            "redis://127.0.0.1:6380/1",
            "redis://127.0.0.1:6381/1",
        ];
        let ring = HashRing::new(&names);
        let expected: [(&str, usize); 13] = [
            (":1:foo", 0),
            (":1:bar", 0),
            (":1:baz", 2),
            ("app:2:user:42", 0),
            (":1:{tag}a", 1),
            (":1:{tag}b", 1),
            (":1:x{a}y{b}z", 2),
            ("k\n{x}", 2),
            (":1:ééééé", 0),
            ("", 0),
            (":1:session:abc123", 0),
            (":1:q{}", 0),
            (":1:{only", 1),
        ];
        for (key, node) in expected {
            assert_eq!(ring.node_for(key.as_bytes()), node, "{key:?}");
        }
    }

    #[test]
    fn hash_tags() {
        assert_eq!(hash_tag(b":1:{user1}:profile"), b"user1");
        assert_eq!(hash_tag(b"a{b}c{d}e"), b"d");
        assert_eq!(hash_tag(b"a{b{c}d"), b"c");
        assert_eq!(hash_tag(b"a}b{c"), b"a}b{c");
        assert_eq!(hash_tag(b"no tag"), b"no tag");
        assert_eq!(hash_tag(b"x\n{y}"), b"x\n{y}");
        assert_eq!(hash_tag(b"{}"), b"");
    }

    #[test]
    fn tagged_keys_share_a_node() {
        let ring = HashRing::new(&["a", "b", "c", "d"]);
        let node = ring.node_for(b":1:{cart:7}:items");
        assert_eq!(ring.node_for(b":2:{cart:7}:total"), node);
    }
}
