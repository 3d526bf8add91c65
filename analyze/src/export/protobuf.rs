//! The few protobuf wire rules pprof's `profile.proto` needs: varints, length-delimited fields
//! (strings, nested messages, packed repeated integers). Writing only; zero-valued scalars are
//! left out, as proto3 does, since a reader takes a missing field as 0.
//!
//! A hand-written encoder rather than prost: prost's derive needs a build step with protoc for
//! the .proto, or hand-kept structs that are no shorter than this.

/// Wire types used here.
const VARINT: u64 = 0;
const LEN: u64 = 2;

/// A message being written: fields in the order they are added.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Message {
    bytes: Vec<u8>,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Message {
    pub fn new() -> Message {
        Message::default()
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn key(&mut self, field: u32, wire: u64) {
        varint(&mut self.bytes, (u64::from(field) << 3) | wire);
    }

    /// A uint64 field (omitted when 0).
    pub fn uint(&mut self, field: u32, v: u64) -> &mut Self {
        if v != 0 {
            self.key(field, VARINT);
            varint(&mut self.bytes, v);
        }
        self
    }

    /// An int64 field: negative values take ten bytes (two's complement), as protobuf's int64.
    pub fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.uint(field, v as u64)
    }

    /// A bool field (omitted when false).
    pub fn boolean(&mut self, field: u32, v: bool) -> &mut Self {
        self.uint(field, u64::from(v))
    }

    /// A string or bytes field, written even when empty (a repeated string's "" must be there).
    pub fn bytes_field(&mut self, field: u32, data: &[u8]) -> &mut Self {
        self.key(field, LEN);
        varint(&mut self.bytes, data.len() as u64);
        self.bytes.extend_from_slice(data);
        self
    }

    /// A nested message.
    pub fn message(&mut self, field: u32, m: &Message) -> &mut Self {
        self.bytes_field(field, &m.bytes)
    }

    /// A packed repeated uint64/int64 field (omitted when empty).
    pub fn packed(&mut self, field: u32, values: impl IntoIterator<Item = u64>) -> &mut Self {
        let mut body = Vec::new();
        for v in values {
            varint(&mut body, v);
        }
        if !body.is_empty() {
            self.bytes_field(field, &body);
        }
        self
    }
}

/// A test reader of the wire format: each field as (number, value), where a length-delimited
/// value is its bytes. Enough to check what [`Message`] wrote, field by field.
#[cfg(test)]
pub(crate) mod read {
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Varint(u64),
        Bytes(Vec<u8>),
    }

    pub fn varint(data: &[u8], at: &mut usize) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = data[*at];
            *at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return v;
            }
            shift += 7;
        }
    }

    pub fn fields(data: &[u8]) -> Vec<(u32, Value)> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < data.len() {
            let key = varint(data, &mut at);
            let value = match key & 7 {
                0 => Value::Varint(varint(data, &mut at)),
                2 => {
                    let len = varint(data, &mut at) as usize;
                    at += len;
                    Value::Bytes(data[at - len..at].to_vec())
                }
                w => panic!("wire type {w} is not written here"),
            };
            out.push(((key >> 3) as u32, value));
        }
        out
    }

    pub fn packed(data: &[u8]) -> Vec<u64> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < data.len() {
            out.push(varint(data, &mut at));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::read::{self, Value};
    use super::*;

    #[test]
    fn varints_match_the_protobuf_documentation() {
        // The documentation's examples: 1 is 0x01, 150 is 0x96 0x01, 300 is 0xac 0x02.
        for (v, bytes) in [
            (1u64, vec![1u8]),
            (150, vec![0x96, 0x01]),
            (300, vec![0xac, 0x02]),
        ] {
            let mut out = Vec::new();
            varint(&mut out, v);
            assert_eq!(out, bytes, "{v}");
        }
        // Field 1 = 150 is the documented `08 96 01`.
        assert_eq!(Message::new().uint(1, 150).bytes(), [0x08, 0x96, 0x01]);
        // A negative int64 is ten bytes.
        let m = Message::new().int(3, -1).clone();
        assert_eq!(m.bytes().len(), 1 + 10);
        assert_eq!(read::fields(m.bytes()), [(3, Value::Varint(u64::MAX))]);
    }

    #[test]
    fn fields_read_back_in_order() {
        let mut inner = Message::new();
        inner.uint(1, 7).bytes_field(2, b"");
        let mut m = Message::new();
        m.uint(1, 0)
            .boolean(2, true)
            .bytes_field(6, b"cpu")
            .message(4, &inner)
            .packed(5, [1, 300, u64::MAX])
            .packed(9, []);
        let fields = read::fields(m.bytes());
        assert_eq!(
            fields.len(),
            4,
            "zero and empty packed fields are left out: {fields:?}"
        );
        assert_eq!(fields[0], (2, Value::Varint(1)));
        assert_eq!(fields[1], (6, Value::Bytes(b"cpu".to_vec())));
        let Value::Bytes(nested) = &fields[2].1 else {
            panic!("{fields:?}")
        };
        assert_eq!(
            read::fields(nested),
            [(1, Value::Varint(7)), (2, Value::Bytes(vec![]))]
        );
        let Value::Bytes(packed) = &fields[3].1 else {
            panic!("{fields:?}")
        };
        assert_eq!(read::packed(packed), [1, 300, u64::MAX]);
    }
}
