//! Building RESP commands. Packing by hand keeps one buffer per command (or pipeline), written
//! straight from the Python objects' bytes, with no intermediate argument vectors.

use redis::Value;

/// A string reply (bulk or simple) as text; None for other kinds of reply.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// A command, or several pipelined commands, packed in the RESP wire format.
#[derive(Default)]
pub struct Packed {
    buf: Vec<u8>,
    commands: usize,
    /// Where each argument's bytes sit in `buf`, and at which argument each command starts:
    /// what the async transport needs to rebuild the commands as redis-rs values.
    args: Vec<(usize, usize)>,
    starts: Vec<usize>,
}

impl Packed {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start a command of `argc` arguments (name included); follow with exactly `argc` `arg` calls.
    pub fn start(&mut self, argc: usize) -> &mut Self {
        self.commands += 1;
        self.starts.push(self.args.len());
        self.header(b'*', argc);
        self
    }

    pub fn arg(&mut self, arg: &[u8]) -> &mut Self {
        self.header(b'$', arg.len());
        self.args.push((self.buf.len(), arg.len()));
        self.buf.extend_from_slice(arg);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    pub fn int_arg(&mut self, n: i64) -> &mut Self {
        let mut digits = itoa::Buffer::new();
        self.arg(digits.format(n).as_bytes())
    }

    /// One whole command from its arguments.
    pub fn command(args: &[&[u8]]) -> Self {
        let mut packed = Self::new();
        packed.start(args.len());
        for arg in args {
            packed.arg(arg);
        }
        packed
    }

    /// Append the commands of `other` after these.
    pub fn extend(&mut self, other: &Packed) {
        let (offset, first) = (self.buf.len(), self.args.len());
        self.buf.extend_from_slice(&other.buf);
        self.commands += other.commands;
        self.args
            .extend(other.args.iter().map(|(at, len)| (at + offset, *len)));
        self.starts
            .extend(other.starts.iter().map(|start| start + first));
    }

    /// The same commands as a redis-rs pipeline, for the async connection.
    pub fn to_pipeline(&self) -> redis::Pipeline {
        let mut pipeline = redis::Pipeline::with_capacity(self.commands);
        for (i, &start) in self.starts.iter().enumerate() {
            let end = self.starts.get(i + 1).copied().unwrap_or(self.args.len());
            let mut cmd = redis::Cmd::new();
            for &(at, len) in &self.args[start..end] {
                cmd.arg(&self.buf[at..at + len]);
            }
            pipeline.add_command(cmd);
        }
        pipeline
    }

    fn header(&mut self, kind: u8, n: usize) {
        let mut digits = itoa::Buffer::new();
        self.buf.push(kind);
        self.buf.extend_from_slice(digits.format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The arguments of command `i` (name first).
    pub fn command_args(&self, i: usize) -> Vec<&[u8]> {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.args.len());
        self.args[self.starts[i]..end]
            .iter()
            .map(|&(at, len)| &self.buf[at..at + len])
            .collect()
    }

    /// The request's name for metrics: its first command's (after an `ASKING` redirect).
    pub fn name(&self) -> &[u8] {
        let first = |i: usize| {
            let at = *self.starts.get(i)?;
            let &(start, len) = self.args.get(at)?;
            Some(&self.buf[start..start + len])
        };
        match first(0) {
            Some(b"ASKING") => first(1).unwrap_or(b"ASKING"),
            name => name.unwrap_or_default(),
        }
    }

    /// The same commands for a node importing their slot (an `ASK` redirect): `ASKING` before
    /// each, as its effect lasts one command. `asked_replies` drops ASKING's replies again.
    pub fn asking(&self) -> Packed {
        let mut asking = Packed::new();
        for i in 0..self.commands {
            let args = self.command_args(i);
            asking.start(1).arg(b"ASKING");
            asking.start(args.len());
            for arg in args {
                asking.arg(arg);
            }
        }
        asking
    }

    /// How many commands were packed (how many replies to read).
    pub fn commands(&self) -> usize {
        self.commands
    }
}

/// The replies to `Packed::asking`'s request without ASKING's (every other one, from the first).
pub fn asked_replies(replies: Vec<Value>) -> Vec<Value> {
    replies.into_iter().skip(1).step_by(2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_resp_arrays() {
        let p = Packed::command(&[b"SET", b"k", b""]);
        assert_eq!(p.bytes(), b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
        assert_eq!(p.commands(), 1);
        assert_eq!(p.name(), b"SET");
        let mut asking = Packed::command(&[b"ASKING"]);
        asking.extend(&p);
        let mut two = Packed::command(&[b"GET", b"a"]);
        two.extend(&Packed::command(&[b"PTTL", b"a"]));
        let asked = two.asking();
        assert_eq!(asked.commands(), 4);
        assert_eq!(asked.name(), b"GET");
        assert_eq!(
            asked.bytes(),
            b"*1\r\n$6\r\nASKING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$6\r\nASKING\r\n*2\r\n$4\r\nPTTL\r\n$1\r\na\r\n"
        );
        let replies = vec![Value::Okay, Value::Nil, Value::Okay, Value::Int(-2)];
        assert_eq!(asked_replies(replies), vec![Value::Nil, Value::Int(-2)]);
        assert_eq!(asking.name(), b"SET");
        assert_eq!(Packed::new().name(), b"");
    }

    #[test]
    fn rebuilds_as_a_pipeline() {
        let mut p = Packed::command(&[b"GET", b"a"]);
        p.extend(&Packed::command(&[b"SET", b"b", b"1"]));
        let pipeline = p.to_pipeline();
        assert_eq!(pipeline.cmd_iter().count(), 2);
        assert_eq!(pipeline.get_packed_pipeline(), p.bytes());
    }

    #[test]
    fn pipelines_concatenate() {
        let mut p = Packed::new();
        p.start(2).arg(b"GET").arg(b"a");
        p.start(3).arg(b"INCRBY").arg(b"b").int_arg(-12);
        assert_eq!(p.commands(), 2);
        assert_eq!(
            p.bytes(),
            b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$6\r\nINCRBY\r\n$1\r\nb\r\n$3\r\n-12\r\n"
        );
    }
}
