//! Signed values (OPTIONS `SIGNED_VALUES`): each stored cache value carries an HMAC-SHA256 of
//! the full Redis key and the exact stored bytes (after compression), keyed from a secret that
//! only the Django workers know. A value written by anyone else — or copied from another key,
//! say another user's session — fails the check and is read as a miss, before it is
//! decompressed or decoded, so a forged pickle never reaches `pickle.loads`.
//!
//! Stored form: `MAGIC ‖ tag (32 bytes) ‖ payload`, tag = HMAC(k, len(key) as u64 BE ‖ key ‖
//! payload); the length makes the key/payload boundary unambiguous. k = SHA-256(SALT ‖ secret)
//! (as Django's `salted_hmac` derives its keys), one per secret: the first signs, every one
//! verifies, so `SECRET_KEY_FALLBACKS` rotates without a flush.

use ring::hmac;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

/// Marks a signed value. A NUL first byte starts no pickle, JSON text, compressed stream or
/// MessagePack value that has more bytes after it, so an unsigned value is never taken for one.
pub const MAGIC: &[u8] = b"\x00SV1";
const TAG_LEN: usize = 32;
const SALT: &[u8] = b"django_redis_rs.signed_values";

pub struct Signing {
    /// The current secret's key first, then the fallbacks'.
    keys: Vec<hmac::Key>,
    /// Transition mode: unsigned values are still read (and protect nothing).
    accept_unsigned: bool,
    failures: AtomicU64,
}

/// The payload of a signed value, unchecked, or `stored` as it is: how a cache with
/// SIGNED_VALUES off reads, so that turning it off, or a rolling deploy in which some workers
/// still run without it, reads what the others signed (off, nothing is protected anyway).
pub fn unchecked(stored: &[u8]) -> &[u8] {
    match stored.strip_prefix(MAGIC) {
        Some(signed) if signed.len() >= TAG_LEN => &signed[TAG_LEN..],
        _ => stored,
    }
}

/// What a stored value turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened<'a> {
    /// The payload to decompress and decode: signed by one of the secrets, or (in transition
    /// mode) written unsigned.
    Payload(&'a [u8]),
    /// Not to be decoded: why (never the value itself).
    Refused(&'static str),
}

impl Signing {
    /// `secrets` (the current one first) must not be empty; the caller checks they are set.
    pub fn new(secrets: &[Vec<u8>], accept_unsigned: bool) -> Self {
        let keys = secrets
            .iter()
            .map(|secret| {
                let derived = Sha256::new()
                    .chain_update(SALT)
                    .chain_update(secret)
                    .finalize();
                hmac::Key::new(hmac::HMAC_SHA256, &derived)
            })
            .collect();
        Signing {
            keys,
            accept_unsigned,
            failures: AtomicU64::new(0),
        }
    }

    fn tag(key: &hmac::Key, redis_key: &[u8], payload: &[u8]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(key);
        context.update(&(redis_key.len() as u64).to_be_bytes());
        context.update(redis_key);
        context.update(payload);
        context.sign()
    }

    /// `payload` as stored at `redis_key`.
    pub fn sign(&self, redis_key: &[u8], payload: &[u8]) -> Vec<u8> {
        let tag = Self::tag(&self.keys[0], redis_key, payload);
        let mut out = Vec::with_capacity(MAGIC.len() + TAG_LEN + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(tag.as_ref());
        out.extend_from_slice(payload);
        out
    }

    /// Check `stored` as read from `redis_key`; a refusal is counted.
    pub fn open<'a>(&self, redis_key: &[u8], stored: &'a [u8]) -> Opened<'a> {
        let opened = self.check(redis_key, stored);
        if matches!(opened, Opened::Refused(_)) {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        opened
    }

    fn check<'a>(&self, redis_key: &[u8], stored: &'a [u8]) -> Opened<'a> {
        let Some(signed) = stored.strip_prefix(MAGIC) else {
            return match self.accept_unsigned {
                true => Opened::Payload(stored),
                false => Opened::Refused("it is not signed"),
            };
        };
        let Some((tag, payload)) = signed.split_at_checked(TAG_LEN) else {
            return Opened::Refused("its signature is cut short");
        };
        let matches = |key: &hmac::Key| {
            let expected = Self::tag(key, redis_key, payload);
            // In constant time: how much of a forged tag was right must not show in timing.
            expected
                .as_ref()
                .iter()
                .zip(tag)
                .fold(0, |diff, (a, b)| diff | (a ^ b))
                == 0
        };
        match self.keys.iter().any(matches) {
            true => Opened::Payload(payload),
            false => {
                Opened::Refused("its signature does not match (forged, or copied from another key)")
            }
        }
    }

    /// Values refused since start or `reset` (`metrics()["signature_failures"]`).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signing(secrets: &[&str], accept_unsigned: bool) -> Signing {
        let secrets: Vec<Vec<u8>> = secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
        Signing::new(&secrets, accept_unsigned)
    }

    #[test]
    fn a_signed_value_opens_at_its_own_key_only() {
        let s = signing(&["s3cret"], false);
        let stored = s.sign(b":1:session-a", b"\x80\x04K\x01.");
        assert_eq!(
            s.open(b":1:session-a", &stored),
            Opened::Payload(b"\x80\x04K\x01.")
        );
        assert!(matches!(
            s.open(b":1:session-b", &stored),
            Opened::Refused(_)
        ));
        assert_eq!(s.failures(), 1);
    }

    #[test]
    fn the_key_and_payload_boundary_is_part_of_the_tag() {
        let s = signing(&["s3cret"], false);
        let stored = s.sign(b"ab", b"c");
        let mut moved = MAGIC.to_vec();
        moved.extend_from_slice(&stored[MAGIC.len()..MAGIC.len() + TAG_LEN]);
        moved.extend_from_slice(b"bc");
        assert!(matches!(s.open(b"a", &moved), Opened::Refused(_)));
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let s = signing(&["s3cret"], false);
        let stored = s.sign(b"k", b"payload");
        for at in 0..stored.len() {
            let mut bad = stored.clone();
            bad[at] ^= 1;
            assert!(
                matches!(s.open(b"k", &bad), Opened::Refused(_)),
                "byte {at}"
            );
        }
        assert!(matches!(
            s.open(b"k", &stored[..MAGIC.len() + 5]),
            Opened::Refused(_)
        ));
    }

    #[test]
    fn fallbacks_verify_and_the_current_secret_signs() {
        let old = signing(&["old"], false);
        let rotated = signing(&["new", "old"], false);
        let written_before = old.sign(b"k", b"v");
        assert_eq!(rotated.open(b"k", &written_before), Opened::Payload(b"v"));
        let written_after = rotated.sign(b"k", b"v");
        assert!(matches!(old.open(b"k", &written_after), Opened::Refused(_)));
        assert!(matches!(
            signing(&["other"], false).open(b"k", &written_before),
            Opened::Refused(_)
        ));
    }

    #[test]
    fn off_reads_the_payload_unchecked() {
        let stored = signing(&["s"], false).sign(b"k", b"\x80\x04N.");
        assert_eq!(unchecked(&stored), b"\x80\x04N.");
        assert_eq!(unchecked(b"\x80\x04N."), b"\x80\x04N.");
        assert_eq!(unchecked(b"\x00SV1short"), b"\x00SV1short"); // no whole tag: as stored
    }

    #[test]
    fn unsigned_values_only_in_transition() {
        assert!(matches!(
            signing(&["s"], false).open(b"k", b"\x80\x04N."),
            Opened::Refused(_)
        ));
        let transition = signing(&["s"], true);
        assert_eq!(
            transition.open(b"k", b"\x80\x04N."),
            Opened::Payload(b"\x80\x04N.")
        );
        // A signed value is still checked in transition mode.
        let forged = [MAGIC, &[0u8; TAG_LEN], b"\x80\x04N."].concat();
        assert!(matches!(transition.open(b"k", &forged), Opened::Refused(_)));
    }
}
