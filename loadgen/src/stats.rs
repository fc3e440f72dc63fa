//! Percentiles, the server's /proc figures, results files and charts.

use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;
use serde::Serialize;
use serde_json::Value;

/// p50/p90/p99/max of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(samples: &mut [u64]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at =
            |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        Latency {
            count: samples.len(),
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Resident memory and CPU time of a process, read from /proc.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct ProcSample {
    pub rss_kib: u64,
    pub cpu_seconds: f64,
}

pub fn proc_sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): utime is 14th, stime 15th overall.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(ProcSample {
        rss_kib,
        cpu_seconds: (utime + stime) / ticks.max(1.0),
    })
}

/// Lifts this process's open-file limit as far as allowed (each connection is a descriptor).
pub fn raise_fd_limit() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on a struct we own.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        let want = lim.rlim_max.max(200_000);
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: want,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
}

/// Writes `results/<name>.json`.
pub fn write_json(dir: &Path, name: &str, value: &Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(value)?)?;
    println!("wrote {}", path.display());
    Ok(())
}

pub fn read_json(dir: &Path, name: &str) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).ok()?).ok()
}

/// One line of a chart.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Draws line series into `results/<name>.png` (text needs a TrueType font from the system).
pub fn chart(
    dir: &Path,
    name: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
) -> anyhow::Result<()> {
    let Some(path) = png(dir, name)? else {
        return Ok(());
    };
    let root = BitMapBackend::new(&path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    // Headroom above the highest point for the legend, a line of it per series: the legend
    // sits in the upper right, above the data, never over a line.
    let y1 = ys.fold(0.0f64, f64::max) * (1.12 + 0.08 * series.len() as f64) + 1e-9;
    let x1 = if x1 <= x0 { x0 + 1.0 } else { x1 };
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    // The two axis kinds have different types, so the shared drawing is a macro.
    macro_rules! draw {
        ($x_axis:expr, $markers:expr) => {{
            let mut c = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 26))
                .margin(16)
                .margin_right(48)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d($x_axis, 0.0..y1)?;
            c.configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&|x| number(*x))
                .y_label_formatter(&|y| number(*y))
                .draw()?;
            for (i, s) in series.iter().enumerate() {
                let color = colors[i % colors.len()];
                c.draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))?
                    .label(s.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                if $markers {
                    c.draw_series(s.points.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
                }
            }
            c.configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()?;
        }};
    }
    // Few points on a log axis get markers; a per-second timeline does not.
    if log_x {
        draw!((x0.max(1.0)..x1).log_scale(), true);
    } else {
        draw!(x0..x1, false);
    }
    root.present()?;
    println!("wrote {}", path.display());
    Ok(())
}

/// An axis or bar value as people write it: `12,000`, `2.5`, `0.25`, never `12000.0`.
pub fn number(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        let n = v.round() as i64;
        let digits = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if n < 0 {
            out.insert(0, '-');
        }
        out
    } else {
        let text = format!("{v:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// One group of bars in [`bars`]: a target and its values, one per measure.
pub struct Group {
    pub label: String,
    pub values: Vec<f64>,
}

/// A bar chart comparing `groups` side by side, one bar per measure (`measures`) in each,
/// the value written above each bar and the group's name under it.
pub fn bars(
    dir: &Path,
    name: &str,
    title: &str,
    y_label: &str,
    measures: &[&str],
    groups: &[Group],
) -> anyhow::Result<()> {
    let Some(path) = png(dir, name)? else {
        return Ok(());
    };
    let root = BitMapBackend::new(&path, (1100, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = groups
        .iter()
        .flat_map(|g| g.values.iter().copied())
        .fold(0.0f64, f64::max)
        * (1.15 + 0.08 * measures.len() as f64)
        + 1e-9;
    let n = groups.len() as f64;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..n, 0.0..top)?;
    let names: Vec<String> = groups.iter().map(|g| g.label.clone()).collect();
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                names[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .y_label_formatter(&|y| number(*y))
        .draw()?;
    let colors = [BLUE, RED, GREEN, MAGENTA];
    let width = 0.8 / measures.len() as f64;
    for (m, measure) in measures.iter().enumerate() {
        let color = colors[m % colors.len()];
        let bars = groups.iter().enumerate().filter_map(|(i, g)| {
            let v = *g.values.get(m)?;
            let x0 = i as f64 + 0.1 + width * m as f64;
            Some(Rectangle::new(
                [(x0, 0.0), (x0 + width * 0.9, v)],
                color.mix(0.75).filled(),
            ))
        });
        c.draw_series(bars)?
            .label(*measure)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        let labels = groups.iter().enumerate().filter_map(|(i, g)| {
            let v = *g.values.get(m)?;
            let x0 = i as f64 + 0.1 + width * m as f64;
            Some(Text::new(
                number(v),
                (x0, v + top * 0.01),
                ("sans-serif", 14),
            ))
        });
        c.draw_series(labels)?;
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Where chart `name` goes in `dir` (made if need be), or `None` without a font to draw text.
fn png(dir: &Path, name: &str) -> anyhow::Result<Option<std::path::PathBuf>> {
    if !load_font() {
        println!("no TrueType font found (install fonts-dejavu-core): chart {name}.png skipped");
        return Ok(None);
    }
    std::fs::create_dir_all(dir)?;
    Ok(Some(dir.join(format!("{name}.png"))))
}

fn load_font() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        let candidates = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
        ];
        for path in candidates {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
