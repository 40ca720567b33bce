//! Which requests may be sent again after their connection broke mid-exchange, when the first
//! attempt may or may not have reached the server (see `connection::settle`).

use crate::resp::pack::Packed;

/// Commands that read, or write the same thing again with the same reply (sorted, for search).
const REPEATABLE: &[&[u8]] = &[
    b"ASKING",
    b"DBSIZE",
    b"ECHO",
    b"EXEC",
    b"EXISTS",
    b"FLUSHALL",
    b"FLUSHDB",
    b"GET",
    b"GETRANGE",
    b"HEXISTS",
    b"HGET",
    b"HGETALL",
    b"HKEYS",
    b"HLEN",
    b"HMGET",
    b"HSCAN",
    b"HVALS",
    b"INFO",
    b"KEYS",
    b"LINDEX",
    b"LLEN",
    b"LPOS",
    b"LRANGE",
    b"MGET",
    b"MSET",
    b"MULTI",
    b"PING",
    b"PSETEX",
    b"PTTL",
    b"READONLY",
    b"SCAN",
    b"SCARD",
    b"SDIFF",
    b"SELECT",
    b"SETEX",
    b"SINTER",
    b"SISMEMBER",
    b"SMEMBERS",
    b"SMISMEMBER",
    b"SSCAN",
    b"STRLEN",
    b"SUNION",
    b"TTL",
    b"TYPE",
    b"ZCARD",
    b"ZCOUNT",
    b"ZMSCORE",
    b"ZRANGE",
    b"ZRANGEBYSCORE",
    b"ZRANK",
    b"ZREVRANGE",
    b"ZREVRANGEBYSCORE",
    b"ZREVRANK",
    b"ZSCAN",
    b"ZSCORE",
];

/// Whether running these commands twice leaves Redis as running them once did and gets the
/// same replies: only such requests are resent after a connection broke mid-exchange, when
/// the first attempt may or may not have reached the server.
pub fn repeatable(packed: &Packed) -> bool {
    (0..packed.commands()).all(|i| {
        let args = packed.command_args(i);
        let name = |n: usize| args.get(n).map(|arg| arg.to_ascii_uppercase());
        let Some(command) = name(0) else { return true };
        match command.as_slice() {
            // SET with NX/XX/GET answers differently the second time; plain SET does not.
            b"SET" => (3..args.len())
                .filter_map(name)
                .all(|flag| !matches!(flag.as_slice(), b"NX" | b"XX" | b"GET")),
            // Without NX/XX/GT/LT flags the reply depends only on the key existing.
            b"EXPIRE" | b"PEXPIRE" | b"EXPIREAT" | b"PEXPIREAT" => args.len() == 3,
            other => REPEATABLE.binary_search(&other).is_ok(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repeatable_list_is_sorted() {
        assert!(REPEATABLE.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn knows_which_requests_are_safe_to_resend() {
        let safe = |args: &[&[u8]]| repeatable(&Packed::command(args));
        assert!(safe(&[b"get", b"k"]));
        assert!(safe(&[b"SET", b"k", b"v", b"PX", b"100"]));
        assert!(!safe(&[b"SET", b"k", b"v", b"nx"]));
        assert!(!safe(&[b"SET", b"k", b"v", b"PX", b"100", b"XX"]));
        assert!(safe(&[b"PEXPIRE", b"k", b"100"]));
        assert!(!safe(&[b"PEXPIRE", b"k", b"100", b"NX"]));
        assert!(!safe(&[b"INCRBY", b"k", b"1"]));
        assert!(!safe(&[b"DEL", b"k"]));
        let mut mixed = Packed::command(&[b"MGET", b"a", b"b"]);
        assert!(repeatable(&mixed));
        mixed.extend(&Packed::command(&[b"LPUSH", b"l", b"x"]));
        assert!(!repeatable(&mixed));
    }
}
