//! Gzipped pprof protobuf for every profile hotprof writes, built from the
//! generated `profile.proto` types (the `pprof` crate's prost codec), as
//! `go tool pprof`, Pyroscope, Parca and Speedscope read it.
//!
//! Go-grade where the stack allows: one Location per address with its
//! mapping (the module's memory range, file offset, file and GNU build ID),
//! inlined functions as several Lines of that Location (callee first), and
//! each Function's `name` (demangled path) apart from its `system_name`
//! (the mangled symbol). A Mapping's `has_*` flags say what its Locations
//! really carry, so a profile of a stripped binary asks `go tool pprof` to
//! symbolize it (with `PPROF_BINARY_PATH`). Logical frames (scopes, thread
//! groups) are Locations without address or mapping.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;
use pprof::protos::{self, Message as _};

use crate::stacks::{Lookup, ModuleOffset, SourceFrame, StackFrame, Symbolizer, ThreadInfo, ThreadStatus};

/// One function of a location.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ProtoLine {
    /// Demangled path without the hash.
    pub function: String,
    /// The mangled symbol, where known; else the same as `function`.
    pub system_name: String,
    pub file: String,
    pub line: i64,
}

/// The module an address lies in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ProtoMapping {
    /// The executable segment in memory, and its offset in the file.
    pub start: u64,
    pub limit: u64,
    pub offset: u64,
    pub file: String,
    /// Hex GNU build ID, or empty.
    pub build_id: String,
}

/// One frame of a sample's stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ProtoFrame {
    /// The address looked up: an interrupted pc, or a return address minus
    /// one. 0 for a logical frame.
    pub address: u64,
    /// Innermost inlined function first; empty when nothing names the address.
    pub lines: Vec<ProtoLine>,
    pub mapping: Option<ProtoMapping>,
}

impl ProtoFrame {
    /// A frame with a name and place but no address (scopes, thread groups).
    pub(crate) fn logical(function: &str, file: &str, line: i64) -> ProtoFrame {
        let line =
            ProtoLine { function: function.into(), system_name: function.into(), file: file.into(), line };
        ProtoFrame { address: 0, lines: vec![line], mapping: None }
    }
}

/// The frames of one thread of a dump: each machine frame at the address
/// it was looked up at (its interrupted pc, or return address minus one),
/// its inlined functions as lines, its module as mapping.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn machine_frames(t: &ThreadInfo) -> Vec<ProtoFrame> {
    let exact_first = matches!(t.status, ThreadStatus::Captured { .. });
    let frame = |(i, f): (usize, &StackFrame)| {
        machine_frame(f.pc, exact_first && i == 0, &f.source, f.module.as_ref())
    };
    t.frames.iter().enumerate().map(frame).collect()
}

/// One machine frame at the address it was looked up at: `pc` itself when
/// `exact` (an interrupted pc), else the return address minus one.
pub(crate) fn machine_frame(
    pc: usize,
    exact: bool,
    source: &[SourceFrame],
    module: Option<&ModuleOffset>,
) -> ProtoFrame {
    let lines = match source {
        [only] if only.function == "??" => Vec::new(),
        source => source.iter().map(line).collect(),
    };
    let mapping = module.map(|m| ProtoMapping {
        start: m.segment.0,
        limit: m.segment.1,
        offset: m.segment_offset,
        file: m.path.to_string(),
        build_id: m.build_id.as_deref().unwrap_or_default().to_string(),
    });
    ProtoFrame { address: (pc - usize::from(!exact && pc > 0)) as u64, lines, mapping }
}

/// Symbolizes stacks of machine addresses (each innermost first, its first
/// an interrupted pc, the rest return addresses) in one batch, dropping what
/// the symbolizer parsed for them, and returns their frames in order.
pub(crate) fn machine_stacks(stacks: &[&[usize]], symbolizer: &mut Symbolizer) -> Vec<Vec<ProtoFrame>> {
    let lookup = |(i, &pc): (usize, &usize)| Lookup { pc, exact: i == 0 };
    let mut lookups: Vec<Lookup> = stacks.iter().flat_map(|s| s.iter().enumerate().map(lookup)).collect();
    lookups.sort_unstable_by_key(|l| (l.pc, l.exact));
    lookups.dedup();
    let resolved: HashMap<Lookup, _> =
        lookups.iter().copied().zip(symbolizer.resolve_once(lookups.clone())).collect();
    stacks
        .iter()
        .map(|s| {
            s.iter()
                .enumerate()
                .filter_map(|(i, &pc)| {
                    let r = resolved.get(&lookup((i, &pc)))?;
                    Some(machine_frame(pc, i == 0, &r.source, r.module.as_ref()))
                })
                .collect()
        })
        .collect()
}

fn line(s: &SourceFrame) -> ProtoLine {
    ProtoLine {
        function: s.function.clone(),
        system_name: s.mangled.clone().unwrap_or_else(|| s.function.clone()),
        file: s.file.clone().unwrap_or_default(),
        line: i64::from(s.line.unwrap_or(0)),
    }
}

/// A sample: location ids (innermost first), values, labels as string ids
/// (`key`, `str`), numeric labels (`key`, `num`).
type Sample = (Vec<u64>, Vec<i64>, Vec<(i64, i64)>, Vec<(i64, i64)>);

/// A profile under construction: sample types, then samples with stacks.
#[derive(Debug, Default)]
pub(crate) struct ProfileBuilder {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    sample_types: Vec<(i64, i64)>,
    locations: HashMap<ProtoFrame, u64>,
    samples: Vec<Sample>,
    comments: Vec<i64>,
    time_nanos: i64,
    duration_nanos: i64,
    period: Option<(i64, i64, i64)>,
    default_sample_type: i64,
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

    /// The sample type viewers show first (by its type name); else the last.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn default_sample_type(&mut self, kind: &str) {
        self.default_sample_type = self.string(kind);
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
        self.sample_full(stack, values, labels, &[]);
    }

    /// Adds a sample with string labels and numeric ones (e.g. `bytes`).
    pub(crate) fn sample_full(
        &mut self,
        stack: &[ProtoFrame],
        values: &[i64],
        labels: &[(&str, &str)],
        numbers: &[(&str, i64)],
    ) {
        let labels = labels.iter().map(|(k, v)| (self.string(k), self.string(v))).collect();
        let numbers = numbers.iter().map(|(k, n)| (self.string(k), *n)).collect();
        let ids = stack
            .iter()
            .map(|f| {
                let next = self.locations.len() as u64 + 1;
                *self.locations.entry(f.clone()).or_insert(next)
            })
            .collect();
        self.samples.push((ids, values.to_vec(), labels, numbers));
    }

    /// Encodes and gzips the profile.
    pub(crate) fn encode_gz(mut self) -> std::io::Result<Vec<u8>> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&self.build().encode_to_vec())?;
        gz.finish()
    }

    /// The profile message, every table filled.
    fn build(&mut self) -> protos::Profile {
        let mut frames: Vec<(ProtoFrame, u64)> = self.locations.drain().collect();
        frames.sort_by_key(|(_, id)| *id);
        let mut tables = Tables::default();
        let location = frames.iter().map(|(frame, id)| tables.location(self, frame, *id)).collect();
        let value_type = |(ty, unit): (i64, i64)| protos::ValueType { ty, unit };
        let (period_type, period) = match self.period {
            Some((k, u, v)) => (Some(value_type((k, u))), v),
            None => (None, 0),
        };
        protos::Profile {
            sample_type: self.sample_types.iter().copied().map(value_type).collect(),
            sample: std::mem::take(&mut self.samples)
                .into_iter()
                .map(|(location_id, value, labels, numbers)| protos::Sample {
                    location_id,
                    value,
                    label: labels
                        .into_iter()
                        .map(|(key, str)| protos::Label { key, str, ..Default::default() })
                        .chain(numbers.into_iter().map(|(key, num)| protos::Label {
                            key,
                            num,
                            ..Default::default()
                        }))
                        .collect(),
                })
                .collect(),
            mapping: tables.mappings(self),
            location,
            function: tables.functions(),
            string_table: std::mem::take(&mut self.strings),
            time_nanos: self.time_nanos,
            duration_nanos: self.duration_nanos,
            period_type,
            period,
            comment: std::mem::take(&mut self.comments),
            default_sample_type: self.default_sample_type,
            ..Default::default()
        }
    }
}

/// The function and mapping tables, filled while locations are made.
#[derive(Default)]
struct Tables {
    functions: HashMap<(i64, i64, i64), u64>,
    mappings: HashMap<ProtoMapping, MappingFacts>,
}

/// What the locations of one mapping carry, for its `has_*` flags.
struct MappingFacts {
    id: u64,
    functions: bool,
    filenames: bool,
    line_numbers: bool,
    inline_frames: bool,
}

impl Tables {
    fn location(&mut self, b: &mut ProfileBuilder, frame: &ProtoFrame, id: u64) -> protos::Location {
        let line = frame
            .lines
            .iter()
            .map(|l| {
                let key = (b.string(&l.function), b.string(&l.system_name), b.string(&l.file));
                let next = self.functions.len() as u64 + 1;
                protos::Line { function_id: *self.functions.entry(key).or_insert(next), line: l.line }
            })
            .collect();
        let mapping_id = frame.mapping.as_ref().map_or(0, |m| {
            let next = self.mappings.len() as u64 + 1;
            let facts = self.mappings.entry(m.clone()).or_insert(MappingFacts {
                id: next,
                functions: true,
                filenames: true,
                line_numbers: true,
                inline_frames: true,
            });
            let named = !frame.lines.is_empty();
            facts.functions &= named;
            facts.inline_frames &= named;
            facts.filenames &= named && frame.lines.iter().all(|l| !l.file.is_empty());
            facts.line_numbers &= named && frame.lines.iter().all(|l| l.line > 0);
            facts.id
        });
        protos::Location { id, mapping_id, address: frame.address, line, ..Default::default() }
    }

    fn functions(&self) -> Vec<protos::Function> {
        let mut out: Vec<protos::Function> = self
            .functions
            .iter()
            .map(|(&(name, system_name, filename), &id)| protos::Function {
                id,
                name,
                system_name,
                filename,
                ..Default::default()
            })
            .collect();
        out.sort_by_key(|f| f.id);
        out
    }

    fn mappings(&self, b: &mut ProfileBuilder) -> Vec<protos::Mapping> {
        let mut out: Vec<protos::Mapping> = self
            .mappings
            .iter()
            .map(|(m, facts)| protos::Mapping {
                id: facts.id,
                memory_start: m.start,
                memory_limit: m.limit,
                file_offset: m.offset,
                filename: b.string(&m.file),
                build_id: b.string(&m.build_id),
                has_functions: facts.functions,
                has_filenames: facts.filenames,
                has_line_numbers: facts.line_numbers,
                has_inline_frames: facts.inline_frames,
            })
            .collect();
        out.sort_by_key(|m| m.id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn decode(gz: &[u8]) -> protos::Profile {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz).read_to_end(&mut raw).unwrap();
        protos::Profile::decode(&raw[..]).unwrap()
    }

    #[test]
    fn logical_frames_share_functions() {
        let mut b = ProfileBuilder::new(&[("calls", "count"), ("wall", "nanoseconds")]);
        let f = |n: &str| ProtoFrame::logical(n, "src/x.rs", 3);
        b.sample(&[f("inner"), f("outer")], &[2, 100]);
        b.sample(&[f("outer")], &[1, 50]);
        b.comment("app: test 1.0");
        let p = decode(&b.encode_gz().unwrap());
        assert_eq!((p.sample.len(), p.location.len(), p.function.len(), p.mapping.len()), (2, 2, 2, 0));
        let s = |i: i64| p.string_table[i as usize].as_str();
        assert_eq!(s(p.comment[0]), "app: test 1.0");
        assert_eq!(s(p.sample_type[1].ty), "wall");
        assert!(p.location.iter().all(|l| l.address == 0 && l.mapping_id == 0 && l.line.len() == 1));
    }

    #[test]
    fn machine_frames_carry_addresses_inline_lines_and_mappings() {
        let mapping = ProtoMapping {
            start: 0x1000,
            limit: 0x9000,
            offset: 0,
            file: "/bin/app".into(),
            build_id: "abcd".into(),
        };
        let line = |f: &str, sys: &str, n| ProtoLine {
            function: f.into(),
            system_name: sys.into(),
            file: "a.rs".into(),
            line: n,
        };
        let named = ProtoFrame {
            address: 0x1234,
            lines: vec![
                line("core::hint::spin", "_ZN4core4hint4spinE", 7),
                line("app::hot", "_ZN3app3hotE", 20),
            ],
            mapping: Some(mapping.clone()),
        };
        let stripped = ProtoFrame {
            address: 0x2000,
            lines: vec![],
            mapping: Some(ProtoMapping { file: "/lib/x.so".into(), ..mapping }),
        };
        let mut b = ProfileBuilder::new(&[("samples", "count")]);
        b.sample(&[named, stripped], &[1]);
        let p = decode(&b.encode_gz().unwrap());
        let s = |i: i64| p.string_table[i as usize].as_str();
        assert_eq!(p.location[0].address, 0x1234);
        assert_eq!(p.location[0].line.len(), 2, "inlined functions are lines of one location");
        let f = &p.function[(p.location[0].line[0].function_id - 1) as usize];
        assert_eq!((s(f.name), s(f.system_name)), ("core::hint::spin", "_ZN4core4hint4spinE"));
        let m = &p.mapping[0];
        assert_eq!(
            (s(m.filename), s(m.build_id), m.memory_start, m.memory_limit),
            ("/bin/app", "abcd", 0x1000, 0x9000)
        );
        assert!(m.has_functions && m.has_filenames && m.has_line_numbers && m.has_inline_frames);
        assert!(!p.mapping[1].has_functions, "nothing named in the stripped module");
        assert_eq!(p.location[1].mapping_id, 2);
    }
}
