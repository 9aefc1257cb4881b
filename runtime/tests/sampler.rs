//! hotprof's own sampler, in-process: CPU samples add up to the CPU time
//! the kernel counts (threads started mid-session included), wall-clock
//! samples show where a thread sleeps, and samples inside a marked scope
//! carry its name.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pprof::protos::{Message, Profile};

/// One session at a time in this process.
static SERIAL: Mutex<()> = Mutex::new(());

fn decode(gz: &[u8]) -> Profile {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut raw).unwrap();
    Profile::decode(&raw[..]).unwrap()
}

/// Sum of the first value of the samples whose label `key` is `value`, and
/// of those among them whose stack names `function`.
fn samples(p: &Profile, key: &str, value: &str, function: &str) -> (i64, i64) {
    let s = |i: i64| p.string_table[i as usize].as_str();
    let has_label =
        |sample: &pprof::protos::Sample| sample.label.iter().any(|l| s(l.key) == key && s(l.str) == value);
    let names = |sample: &pprof::protos::Sample| {
        sample.location_id.iter().any(|id| {
            let loc = &p.location[(*id - 1) as usize];
            loc.line.iter().any(|line| s(p.function[(line.function_id - 1) as usize].name).contains(function))
        })
    };
    p.sample
        .iter()
        .filter(|x| has_label(x))
        .fold((0, 0), |(all, named), x| (all + x.value[0], named + if names(x) { x.value[0] } else { 0 }))
}

/// CPU time of this whole process so far, per the kernel (utime + stime).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis((fields[0] + fields[1]) * 1000 / hz)
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[inline(never)]
fn burn_for(cpu: Duration) {
    let start = thread_cpu();
    let mut x: u64 = 1;
    while thread_cpu() - start < cpu {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

#[test]
fn cpu_samples_add_up_to_the_kernels_cpu_time() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let session = std::thread::spawn(|| hotprof::cpu_profile(Duration::from_secs(4)).unwrap());
    std::thread::sleep(Duration::from_millis(300)); // the session is sampling now
    // Threads created mid-session, each burning exactly 1 s of CPU.
    let before = process_cpu();
    let burners: Vec<_> = (0..2)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("burner-{i}"))
                .spawn(|| burn_for(Duration::from_secs(1)))
                .unwrap()
        })
        .collect();
    burners.into_iter().for_each(|b| b.join().unwrap());
    let used = process_cpu() - before;
    let profile = session.join().unwrap();
    let p = decode(&profile.pprof_gz);
    let period = Duration::from_nanos(p.period as u64);
    let sampled: i64 = (0..2).map(|i| samples(&p, "thread", &format!("burner-{i}"), "burn_for").1).sum();
    let sampled = period * sampled as u32;
    let ratio = sampled.as_secs_f64() / used.as_secs_f64();
    assert!((0.9..=1.1).contains(&ratio), "sampled {sampled:?} of {used:?} the kernel counted ({ratio:.3})");
}

#[inline(never)]
fn nap() {
    std::thread::sleep(Duration::from_millis(20));
}

#[inline(never)]
fn work_for(wall: Duration) {
    let until = Instant::now() + wall;
    let mut x: u64 = 1;
    while Instant::now() < until {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

#[test]
fn wall_samples_show_where_a_thread_sleeps() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    std::thread::Builder::new()
        .name("half-asleep".into())
        .spawn(|| {
            loop {
                work_for(Duration::from_millis(20));
                nap();
            }
        })
        .unwrap();
    std::thread::Builder::new()
        .name("asleep".into())
        .spawn(|| {
            loop {
                nap();
            }
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let profile = hotprof::wall_profile(Duration::from_secs(3)).unwrap();
    let p = decode(&profile.pprof_gz);
    let s = |i: i64| p.string_table[i as usize].as_str();
    assert_eq!(s(p.sample_type[1].ty), "wall");
    let (all, napping) = samples(&p, "thread", "half-asleep", "nap");
    let share = napping as f64 / all as f64;
    assert!(all > 100, "a wall sample every period, asleep or not: {all}");
    assert!((0.3..=0.7).contains(&share), "about half in nap: {napping} of {all}");
    let (all, napping) = samples(&p, "thread", "asleep", "nap");
    assert!(all > 100 && napping as f64 >= all as f64 * 0.9, "{napping} of {all}");
    assert!(samples(&p, "state", "sleeping", "nap").0 > 0, "idle threads are labelled sleeping");
}

#[hotprof::profile(name = "checkout")]
fn checkout() {
    burn_for(Duration::from_millis(600));
}

#[test]
fn samples_inside_a_scope_carry_its_name() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let session = std::thread::spawn(|| hotprof::cpu_profile(Duration::from_secs(2)).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    std::thread::Builder::new().name("shopper".into()).spawn(checkout).unwrap().join().unwrap();
    let p = decode(&session.join().unwrap().pprof_gz);
    let (scoped, in_burn) = samples(&p, "scope", "checkout", "burn_for");
    assert!(scoped > 30, "samples in the scope carry it: {scoped}");
    assert_eq!(scoped, in_burn, "and only those");
    // The thread lives a few microseconds outside the scope (its start and
    // exit): one sample may land there in a loaded run, not more.
    let (all, _) = samples(&p, "thread", "shopper", "burn_for");
    assert!(
        (scoped..=scoped + 1).contains(&all),
        "the scope's thread was inside it: {all} samples, {scoped} in the scope"
    );
}
