//! The `/debug/pprof/` index as a person sees it: Debian's headless
//! `chromium` renders the page of a live demo-service; the rendered DOM must
//! hold the title, a link for each profile it describes and the full-dump
//! link; every link in it must answer 200 over a real socket; and a
//! screenshot of the page must be a real picture. The screenshot is kept at
//! `target/index.png` for people to look at.
//!
//! `./scripts/test.sh` installs `chromium` when it is missing. Without it this
//! test fails, it does not skip.

mod common;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quick_xml::events::{BytesStart, Event};

use common::*;

/// One chromium run may take this long: a first start on a fresh 2-core CI
/// machine is slow, a run here takes under a second.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// A headless run as root in a container that fetches nothing but our page.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    // Root in a container: chromium's sandbox cannot start.
    "--no-sandbox",
    "--disable-gpu",
    // /dev/shm is small in many containers; chromium then crashes on big pages.
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-breakpad",
    // An `http_proxy` in the environment must not catch 127.0.0.1.
    "--no-proxy-server",
    // No keyring looked up over D-Bus.
    "--password-store=basic",
    "--mute-audio",
    "--hide-scrollbars",
];

/// Profiles that a pprof user expects on any index page. Others may come and
/// go: the test follows whatever the page lists.
const GO_PROFILES: &[&str] = &["cmdline", "goroutine", "profile", "symbol"];

/// Links that start a CPU profile: fetched with `seconds=1`, not Go's 30 s.
/// A CPU link added without being named here still ends within
/// `HOTPROF_HTTP_MAX_SECONDS` (set to 2 below).
const CPU_LINKS: &[&str] = &["profile", "flamegraph"];

const SCREEN: (u32, u32) = (1000, 900);

#[test]
fn chromium_renders_the_index_and_every_link_on_it_answers() {
    let started = Instant::now();
    let chromium = chromium_path();
    let env =
        [("HOTPROF_HTTP", "127.0.0.1:0"), ("HOTPROF_RATE_BURST", "50"), ("HOTPROF_HTTP_MAX_SECONDS", "2")];
    let svc = Service::start(&fresh_dir("browser"), &[], &env);
    let addr = announced_addr(&svc, "debug HTTP server on http://");
    let url = format!("http://{addr}/debug/pprof/");
    let work = tempfile::tempdir().unwrap();

    let dom = chromium_run(&chromium, work.path(), "dump-dom", &["--dump-dom"], &url);
    let dom = String::from_utf8(dom).unwrap();
    let page = Page::parse(&dom);
    let rendered = started.elapsed();

    assert_eq!(page.title, "/debug/pprof/", "{dom}");
    assert!(!page.described.is_empty(), "no profile descriptions in the rendered page:\n{dom}");
    for name in GO_PROFILES {
        assert!(page.described.iter().any(|d| d == name), "{name} is not described:\n{dom}");
    }
    for name in &page.described {
        let link = page.links.iter().find(|l| l.text == *name);
        let href = link.map(|l| l.href.split('?').next().unwrap_or_default());
        assert_eq!(href, Some(name.as_str()), "the page describes {name} but has no link to it:\n{dom}");
    }
    assert!(
        page.links.iter().any(|l| l.href == "goroutine?debug=2"),
        "no full goroutine stack dump link (goroutine?debug=2):\n{dom}"
    );
    for link in &page.links {
        assert!(
            page.described.contains(&link.text) || link.href == "goroutine?debug=2",
            "{link:?} is neither a described profile nor the full dump:\n{dom}"
        );
    }

    let mut followed = Vec::new();
    for link in &page.links {
        // The router can be mounted under a prefix: only relative links work there.
        assert!(
            !link.href.is_empty() && !link.href.starts_with(['/', '#']) && !link.href.contains("://"),
            "{link:?} is not a relative link"
        );
        let href = if CPU_LINKS.contains(&link.href.split('?').next().unwrap_or_default()) {
            with_short_window(&link.href)
        } else {
            link.href.clone()
        };
        if followed.contains(&href) {
            continue;
        }
        let fetch_started = Instant::now();
        let Answer { status, body, .. } = get(addr, &format!("/debug/pprof/{href}"));
        assert_eq!(status, 200, "{href} (linked as {:?}): {}", link.href, String::from_utf8_lossy(&body));
        assert!(!body.is_empty(), "{href} answered 200 with an empty body");
        eprintln!("followed {href}: 200, {} bytes in {:?}", body.len(), fetch_started.elapsed());
        followed.push(href);
    }
    let links_done = started.elapsed();

    let shot = work.path().join("index.png");
    let size = format!("--window-size={},{}", SCREEN.0, SCREEN.1);
    let flag = format!("--screenshot={}", shot.display());
    chromium_run(&chromium, work.path(), "screenshot", &[&size, &flag], &url);
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("chromium wrote no {}: {e}", shot.display()));
    // Kept before it is checked, so that a bad one can be looked at too.
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("index.png");
    std::fs::write(&kept, &png).unwrap();
    check_screenshot(&png, &kept);

    eprintln!(
        "index rendered in {rendered:?}, {} links followed by {links_done:?}, screenshot {} by {:?}",
        followed.len(),
        kept.display(),
        started.elapsed()
    );
}

/// `chromium` on `PATH`, or a failure that says how to get it.
fn chromium_path() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`chromium` is not installed, and this test renders the /debug/pprof/ page in it: \
                 run ./scripts/test.sh, which installs it (or `apt-get install chromium`)"
            )
        })
}

/// Runs chromium on `url` with `flags` and returns its stdout. Each run gets
/// its own profile folder under `work`; a run that takes longer than
/// [`CHROMIUM_TIMEOUT`] is killed with all its helper processes.
fn chromium_run(chromium: &Path, work: &Path, tag: &str, flags: &[&str], url: &str) -> Vec<u8> {
    let out = work.join(format!("{tag}.out"));
    let err = work.join(format!("{tag}.err"));
    let mut child = Command::new(chromium)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", work.join(format!("{tag}-profile")).display()))
        .args(flags)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        // chromium forks a dozen helpers; a group of their own lets us kill them all.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let started = Instant::now();
    let mut status = None;
    wait_until(CHROMIUM_TIMEOUT, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let stderr = || std::fs::read_to_string(&err).unwrap_or_default();
    let Some(status) = status else {
        // Not reaped yet, so the group id is still ours.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
        let _ = child.wait();
        panic!(
            "chromium {flags:?} {url} hung for {CHROMIUM_TIMEOUT:?} and was killed; its stderr:\n{}",
            stderr()
        );
    };
    assert!(status.success(), "chromium {flags:?} {url} failed ({status}); its stderr:\n{}", stderr());
    eprintln!("chromium {tag}: {:?}", started.elapsed());
    std::fs::read(&out).unwrap()
}

/// One `<a href>` of the rendered page.
#[derive(Debug)]
struct Link {
    href: String,
    text: String,
}

/// What the rendered page holds.
#[derive(Debug, Default)]
struct Page {
    title: String,
    links: Vec<Link>,
    /// Names in the "Profile Descriptions" list (`<div class="profile-name">`).
    described: Vec<String>,
}

impl Page {
    /// Reads chromium's serialised DOM. It is HTML, not XML (`<br>` is never
    /// closed), so end tags are not matched, only used to end the text of the
    /// element being read.
    fn parse(dom: &str) -> Page {
        enum In {
            Other,
            Title,
            Link(String),
            ProfileName,
        }
        let mut reader = quick_xml::Reader::from_str(dom);
        reader.check_end_names(false);
        let mut page = Page::default();
        let mut inside = In::Other;
        let mut text = String::new();
        loop {
            let event = reader.read_event();
            let at = reader.buffer_position();
            match event.unwrap_or_else(|e| panic!("the rendered DOM does not parse at byte {at}: {e}\n{dom}"))
            {
                Event::Start(e) => {
                    let next = match e.name().as_ref() {
                        b"title" => In::Title,
                        b"a" => attribute(&e, "href").map_or(In::Other, In::Link),
                        b"div" if attribute(&e, "class").as_deref() == Some("profile-name") => {
                            In::ProfileName
                        }
                        _ => continue,
                    };
                    inside = next;
                    text.clear();
                }
                Event::Text(t) if !matches!(inside, In::Other) => {
                    text.push_str(&t.unescape().unwrap_or_else(|_| String::from_utf8_lossy(&t)));
                }
                Event::End(_) => {
                    let text = text.trim().to_string();
                    match std::mem::replace(&mut inside, In::Other) {
                        In::Title => page.title = text,
                        In::Link(href) => page.links.push(Link { href, text }),
                        In::ProfileName => page.described.push(text.trim_end_matches(':').to_string()),
                        In::Other => {}
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        page
    }
}

/// The value of attribute `name`, unescaped.
fn attribute(e: &BytesStart, name: &str) -> Option<String> {
    let value = e.try_get_attribute(name).ok()??;
    value.unescape_value().ok().map(|v| v.into_owned())
}

/// `href` with `seconds=1` in place of any `seconds` it had.
fn with_short_window(href: &str) -> String {
    let (path, query) = href.split_once('?').unwrap_or((href, ""));
    let mut params: Vec<&str> =
        query.split('&').filter(|p| !p.is_empty() && !p.starts_with("seconds=")).collect();
    params.push("seconds=1");
    format!("{path}?{}", params.join("&"))
}

/// A PNG of [`SCREEN`]'s size that is not all one colour.
fn check_screenshot(png: &[u8], path: &Path) {
    let shown = path.display();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{shown} is not a PNG");
    assert_eq!(png.get(12..16), Some(&b"IHDR"[..]), "{shown} does not start with IHDR");
    let be32 = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((be32(16), be32(20)), SCREEN, "{shown}: width and height");

    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap_or_else(|e| panic!("{shown}: {e}"));
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap_or_else(|e| panic!("{shown}: {e}"));
    let pixels = &pixels[..frame.buffer_size()];
    let step = frame.color_type.samples();
    let first = &pixels[..step];
    let differ = pixels.chunks_exact(step).filter(|p| *p != first).count();
    assert!(differ > 0, "{shown} is a single colour {first:?}: the page did not render");
}
