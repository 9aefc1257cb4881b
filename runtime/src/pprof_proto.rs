//! Writes gzipped pprof protobuf (`profile.proto`, as read by `go tool pprof`,
//! Pyroscope, Parca and Speedscope) for profiles hotprof builds itself.
//! Only the fields we use are encoded; the wire format is plain protobuf.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;

/// A function frame of a sample's stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ProtoFrame {
    pub function: String,
    pub file: String,
    pub line: i64,
}

/// Location ids (innermost first), values, and labels as (key, value) string ids.
type Sample = (Vec<u64>, Vec<i64>, Vec<(i64, i64)>);

/// A profile under construction: sample types, then samples with stacks.
#[derive(Debug, Default)]
pub(crate) struct ProfileBuilder {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    sample_types: Vec<(i64, i64)>,
    functions: HashMap<ProtoFrame, u64>,
    samples: Vec<Sample>,
    comments: Vec<i64>,
    time_nanos: i64,
    duration_nanos: i64,
    period: Option<(i64, i64, i64)>,
}

impl ProfileBuilder {
    /// A profile whose samples carry one value per `(type, unit)`.
    pub(crate) fn new(sample_types: &[(&str, &str)]) -> Self {
        let mut b = ProfileBuilder::default();
        b.string(""); // string_table[0] must be ""
        b.sample_types = sample_types.iter().map(|(t, u)| (b.string(t), b.string(u))).collect();
        b
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(id) = self.string_ids.get(s) {
            return *id;
        }
        let id = self.strings.len() as i64;
        self.strings.push(s.to_string());
        self.string_ids.insert(s.to_string(), id);
        id
    }

    /// Start time and duration of the profile.
    pub(crate) fn time(&mut self, start: SystemTime, duration: Duration) {
        self.time_nanos = start.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as i64;
        self.duration_nanos = duration.as_nanos() as i64;
    }

    /// The sampling period (`type`, `unit`, value), if the profile is sampled.
    pub(crate) fn period(&mut self, kind: &str, unit: &str, value: i64) {
        let (k, u) = (self.string(kind), self.string(unit));
        self.period = Some((k, u, value));
    }

    /// A free-text comment (`go tool pprof -comments`).
    pub(crate) fn comment(&mut self, text: &str) {
        let id = self.string(text);
        self.comments.push(id);
    }

    /// Adds a sample; `stack` is innermost first.
    pub(crate) fn sample(&mut self, stack: &[ProtoFrame], values: &[i64]) {
        self.sample_labeled(stack, values, &[]);
    }

    /// Adds a sample with string labels (e.g. `thread`).
    pub(crate) fn sample_labeled(&mut self, stack: &[ProtoFrame], values: &[i64], labels: &[(&str, &str)]) {
        let labels = labels.iter().map(|(k, v)| (self.string(k), self.string(v))).collect();
        let ids = stack
            .iter()
            .map(|f| {
                let next = self.functions.len() as u64 + 1;
                *self.functions.entry(f.clone()).or_insert(next)
            })
            .collect();
        self.samples.push((ids, values.to_vec(), labels));
    }

    /// Encodes and gzips the profile.
    pub(crate) fn encode_gz(mut self) -> std::io::Result<Vec<u8>> {
        let mut functions: Vec<(ProtoFrame, u64)> = self.functions.drain().collect();
        functions.sort_by_key(|(_, id)| *id);
        let frames: Vec<(u64, i64, i64, i64)> = functions
            .iter()
            .map(|(f, id)| (*id, self.string(&f.function), self.string(&f.file), f.line))
            .collect();
        let mut out = Vec::new();
        for (t, u) in &self.sample_types {
            message(&mut out, 1, &value_type(*t, *u));
        }
        for (locations, values, labels) in &self.samples {
            let mut s = Vec::new();
            packed(&mut s, 1, locations.iter().copied());
            packed(&mut s, 2, values.iter().map(|v| *v as u64));
            for (key, value) in labels {
                let mut l = Vec::new();
                varint_field(&mut l, 1, *key as u64);
                varint_field(&mut l, 2, *value as u64);
                message(&mut s, 3, &l);
            }
            message(&mut out, 2, &s);
        }
        for &(id, name, file, line) in &frames {
            let mut l = Vec::new();
            varint_field(&mut l, 1, id);
            varint_field(&mut l, 2, line as u64);
            let mut loc = Vec::new();
            varint_field(&mut loc, 1, id);
            message(&mut loc, 4, &l);
            message(&mut out, 4, &loc);
            let mut f = Vec::new();
            varint_field(&mut f, 1, id);
            varint_field(&mut f, 2, name as u64);
            varint_field(&mut f, 3, name as u64);
            varint_field(&mut f, 4, file as u64);
            varint_field(&mut f, 5, line as u64);
            message(&mut out, 5, &f);
        }
        for s in &self.strings {
            bytes_field(&mut out, 6, s.as_bytes());
        }
        varint_field(&mut out, 9, self.time_nanos as u64);
        varint_field(&mut out, 10, self.duration_nanos as u64);
        if let Some((k, u, value)) = self.period {
            message(&mut out, 11, &value_type(k, u));
            varint_field(&mut out, 12, value as u64);
        }
        for c in &self.comments {
            varint_field(&mut out, 13, *c as u64);
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&out)?;
        gz.finish()
    }
}

fn value_type(kind: i64, unit: i64) -> Vec<u8> {
    let mut v = Vec::new();
    varint_field(&mut v, 1, kind as u64);
    varint_field(&mut v, 2, unit as u64);
    v
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    varint(out, u64::from(field) << 3);
    varint(out, v);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, (u64::from(field) << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn message(out: &mut Vec<u8>, field: u32, body: &[u8]) {
    bytes_field(out, field, body);
}

fn packed(out: &mut Vec<u8>, field: u32, values: impl Iterator<Item = u64>) {
    let mut body = Vec::new();
    for v in values {
        varint(&mut body, v);
    }
    bytes_field(out, field, &body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn encodes_a_gzipped_profile_with_shared_functions() {
        let mut b = ProfileBuilder::new(&[("calls", "count"), ("wall", "nanoseconds")]);
        let f = |n: &str| ProtoFrame { function: n.into(), file: "src/x.rs".into(), line: 3 };
        b.sample(&[f("inner"), f("outer")], &[2, 100]);
        b.sample(&[f("outer")], &[1, 50]);
        b.comment("app: test 1.0");
        let gz = b.encode_gz().unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        for s in ["calls", "count", "wall", "nanoseconds", "inner", "outer", "src/x.rs", "app: test 1.0"] {
            assert!(text.contains(s), "{s}");
        }
    }
}
