//! A [`Recording`] as pprof's `profile.proto`, gzipped (what `pprof` and `go tool pprof` read).
//!
//! Sample types `samples/count` and `cpu/nanoseconds` (the default, as in Go's CPU profiles);
//! every sample is labelled `box`, `allocator`, `lane` and `thread`, so `-tagfocus box=NAME`
//! keeps one box. Folded stacks have no addresses: each distinct frame name is one function and
//! one location (address 0) in a single mapping that says its functions are known (so pprof does
//! not try to symbolize), and the thread, the folded root, is a label rather than a frame.
use super::protobuf::Message;
use super::Recording;
use anyhow::Result;
use std::collections::HashMap;
use std::io::Write;

/// Field numbers of profile.proto (github.com/google/pprof, proto/profile.proto).
mod field {
    pub const SAMPLE_TYPE: u32 = 1;
    pub const SAMPLE: u32 = 2;
    pub const MAPPING: u32 = 3;
    pub const LOCATION: u32 = 4;
    pub const FUNCTION: u32 = 5;
    pub const STRING_TABLE: u32 = 6;
    pub const DURATION_NANOS: u32 = 10;
    pub const PERIOD_TYPE: u32 = 11;
    pub const PERIOD: u32 = 12;
    pub const COMMENT: u32 = 13;
    pub const DEFAULT_SAMPLE_TYPE: u32 = 14;
    // ValueType
    pub const VT_TYPE: u32 = 1;
    pub const VT_UNIT: u32 = 2;
    // Sample
    pub const S_LOCATION_ID: u32 = 1;
    pub const S_VALUE: u32 = 2;
    pub const S_LABEL: u32 = 3;
    // Label
    pub const L_KEY: u32 = 1;
    pub const L_STR: u32 = 2;
    // Mapping
    pub const M_ID: u32 = 1;
    pub const M_FILENAME: u32 = 5;
    pub const M_HAS_FUNCTIONS: u32 = 7;
    // Location
    pub const LOC_ID: u32 = 1;
    pub const LOC_MAPPING_ID: u32 = 2;
    pub const LOC_LINE: u32 = 4;
    // Line
    pub const LINE_FUNCTION_ID: u32 = 1;
    // Function
    pub const F_ID: u32 = 1;
    pub const F_NAME: u32 = 2;
    pub const F_SYSTEM_NAME: u32 = 3;
}

/// profile.proto's string table: index 0 is "", every other string once.
#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings::default();
        s.id("");
        s
    }

    fn id(&mut self, text: &str) -> i64 {
        if let Some(&i) = self.index.get(text) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(text.to_owned());
        self.index.insert(text.to_owned(), i);
        i
    }
}

fn value_type(strings: &mut Strings, kind: &str, unit: &str) -> Message {
    let mut m = Message::new();
    m.int(field::VT_TYPE, strings.id(kind))
        .int(field::VT_UNIT, strings.id(unit));
    m
}

/// The uncompressed profile.proto bytes.
pub fn encode(rec: &Recording) -> Vec<u8> {
    let mut strings = Strings::new();
    let mut profile = Message::new();
    let types = [
        value_type(&mut strings, "samples", "count"),
        value_type(&mut strings, "cpu", "nanoseconds"),
    ];
    for t in &types {
        profile.message(field::SAMPLE_TYPE, t);
    }

    // Function and location ids are the same: one location per distinct frame name.
    let mut function_of: HashMap<&str, u64> = HashMap::new();
    let mut functions: Vec<&str> = Vec::new();
    for stack in &rec.stacks {
        let mut locations = Vec::with_capacity(stack.frames.len());
        // pprof lists a sample's locations leaf first.
        for frame in stack.frames.iter().rev() {
            let id = *function_of.entry(frame).or_insert_with(|| {
                functions.push(frame);
                functions.len() as u64
            });
            locations.push(id);
        }
        let mut sample = Message::new();
        sample.packed(field::S_LOCATION_ID, locations).packed(
            field::S_VALUE,
            [
                stack.samples as i64 as u64,
                stack.cpu_ns.round() as i64 as u64,
            ],
        );
        for (key, value) in [
            ("box", stack.box_name.as_str()),
            ("allocator", rec.allocator.as_str()),
            ("lane", rec.lane.as_str()),
            ("thread", stack.thread.as_str()),
        ] {
            let mut label = Message::new();
            label
                .int(field::L_KEY, strings.id(key))
                .int(field::L_STR, strings.id(value));
            sample.message(field::S_LABEL, &label);
        }
        profile.message(field::SAMPLE, &sample);
    }
    let mut mapping = Message::new();
    mapping
        .uint(field::M_ID, 1)
        .int(field::M_FILENAME, strings.id(&rec.allocator))
        .boolean(field::M_HAS_FUNCTIONS, true);
    profile.message(field::MAPPING, &mapping);
    for (i, name) in functions.iter().enumerate() {
        let id = i as u64 + 1;
        let mut line = Message::new();
        line.uint(field::LINE_FUNCTION_ID, id);
        let mut location = Message::new();
        location
            .uint(field::LOC_ID, id)
            .uint(field::LOC_MAPPING_ID, 1)
            .message(field::LOC_LINE, &line);
        profile.message(field::LOCATION, &location);
        let name = strings.id(name);
        let mut function = Message::new();
        function
            .uint(field::F_ID, id)
            .int(field::F_NAME, name)
            .int(field::F_SYSTEM_NAME, name);
        profile.message(field::FUNCTION, &function);
    }
    let comment = strings.id(&format!(
        "hz3-analyze export of {}: {} (lane {}), {} ops, {} sampling",
        rec.run, rec.allocator, rec.lane, rec.ops, rec.sample_event
    ));
    let period_type = value_type(&mut strings, "cpu", "nanoseconds");
    let default_type = strings.id("cpu");
    profile
        .int(field::DURATION_NANOS, rec.duration_ns.round() as i64)
        .message(field::PERIOD_TYPE, &period_type)
        .int(field::PERIOD, rec.period_ns.round() as i64)
        .packed(field::COMMENT, [comment as u64])
        .int(field::DEFAULT_SAMPLE_TYPE, default_type);
    for s in &strings.table {
        profile.bytes_field(field::STRING_TABLE, s.as_bytes());
    }
    profile.bytes().to_vec()
}

/// [`encode`], gzipped as pprof writes its files.
pub fn gzipped(rec: &Recording) -> Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&encode(rec))?;
    Ok(gz.finish()?)
}

#[cfg(test)]
mod tests {
    use super::super::protobuf::read::{self, Value};
    use super::*;

    fn bytes(v: &Value) -> &[u8] {
        match v {
            Value::Bytes(b) => b,
            Value::Varint(_) => panic!("not length-delimited: {v:?}"),
        }
    }

    fn varint_field(fields: &[(u32, Value)], n: u32) -> u64 {
        fields
            .iter()
            .find_map(|(f, v)| match (f, v) {
                (f, Value::Varint(x)) if *f == n => Some(*x),
                _ => None,
            })
            .unwrap_or(0)
    }

    #[test]
    fn samples_locations_and_labels_read_back() {
        let rec = super::super::tests::sample();
        let fields = read::fields(&encode(&rec));
        let of = |n: u32| fields.iter().filter(move |(f, _)| *f == n).map(|(_, v)| v);
        let strings: Vec<String> = of(field::STRING_TABLE)
            .map(|v| String::from_utf8(bytes(v).to_vec()).unwrap())
            .collect();
        assert_eq!(strings[0], "", "string 0 is the empty string");
        let text = |i: u64| strings[i as usize].as_str();
        let types: Vec<(String, String)> = of(field::SAMPLE_TYPE)
            .map(|v| {
                let f = read::fields(bytes(v));
                (
                    text(varint_field(&f, field::VT_TYPE)).into(),
                    text(varint_field(&f, field::VT_UNIT)).into(),
                )
            })
            .collect();
        assert_eq!(
            types,
            [
                ("samples".into(), "count".into()),
                ("cpu".into(), "nanoseconds".into())
            ]
        );
        assert_eq!(
            text(varint_field(&fields, field::DEFAULT_SAMPLE_TYPE)),
            "cpu"
        );
        assert_eq!(varint_field(&fields, field::PERIOD), 1000);

        // Function id -> name; locations point at the function of the same id.
        let functions: HashMap<u64, String> = of(field::FUNCTION)
            .map(|v| {
                let f = read::fields(bytes(v));
                (
                    varint_field(&f, field::F_ID),
                    text(varint_field(&f, field::F_NAME)).into(),
                )
            })
            .collect();
        assert_eq!(
            functions.len(),
            5,
            "main malloc central_pop free central_push"
        );
        for loc in of(field::LOCATION) {
            let f = read::fields(bytes(loc));
            let line = read::fields(bytes(
                &f.iter().find(|(n, _)| *n == field::LOC_LINE).unwrap().1,
            ));
            assert_eq!(
                varint_field(&f, field::LOC_ID),
                varint_field(&line, field::LINE_FUNCTION_ID)
            );
        }

        let samples: Vec<_> = of(field::SAMPLE).map(|v| read::fields(bytes(v))).collect();
        assert_eq!(samples.len(), 3);
        let mut cpu_by_box: HashMap<String, u64> = HashMap::new();
        for s in &samples {
            let get = |n: u32| bytes(&s.iter().find(|(f, _)| *f == n).unwrap().1).to_vec();
            let values = read::packed(&get(field::S_VALUE));
            let leaf_first: Vec<&str> = read::packed(&get(field::S_LOCATION_ID))
                .iter()
                .map(|id| functions[id].as_str())
                .collect();
            assert_eq!(
                leaf_first.last(),
                Some(&"main"),
                "the root is last: {leaf_first:?}"
            );
            let labels: HashMap<&str, &str> = s
                .iter()
                .filter(|(f, _)| *f == field::S_LABEL)
                .map(|(_, v)| {
                    let l = read::fields(bytes(v));
                    (
                        text(varint_field(&l, field::L_KEY)),
                        text(varint_field(&l, field::L_STR)),
                    )
                })
                .collect();
            assert_eq!(labels["allocator"], "hz3_scale");
            assert_eq!(labels["lane"], "scale");
            assert!(labels["thread"].starts_with('w'), "{labels:?}");
            assert_eq!(values[0], values[1] / 1000, "samples = cpu ns / period");
            *cpu_by_box.entry(labels["box"].into()).or_default() += values[1];
            if leaf_first[0] == "central_pop" {
                assert_eq!((labels["box"], labels["thread"]), ("hz3.central", "w1"));
            }
        }
        assert_eq!(cpu_by_box["hz3.central"], 5000);
        assert_eq!(cpu_by_box["hz3.fast"], 5000);
    }

    #[test]
    fn the_file_is_gzip() {
        let gz = gzipped(&super::super::tests::sample()).unwrap();
        assert_eq!(&gz[..2], [0x1f, 0x8b]);
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
        assert_eq!(plain, encode(&super::super::tests::sample()));
    }
}
