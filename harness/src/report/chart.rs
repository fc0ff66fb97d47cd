//! SVG charts of boot phases, built with the `svg` crate (it escapes text
//! and attributes, so a scenario or phase name can never break the
//! markup): the timeline bar of one run (`report.html`), the small bar of
//! each row of `index.html`, and the `bench` chart of stacked phase bars per
//! chain flavour. It only turns numbers into SVG text; it must not read or
//! write files.
//!
//! Phases come in as *marker times* (seconds since QEMU started, in console
//! order), as the runner and `bench` measure them. A bar's segment for a
//! phase runs from the previous marker to this one and carries the phase's
//! name and both times (`<title>` tooltip, `data-phase`, `data-at`).

use svg::node::element::{Group, Rectangle, Text, Title};
use svg::Document;

/// One stacked segment: the span that ends at a phase marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The phase whose marker ends the segment.
    pub phase: String,
    /// Start, seconds since QEMU started (the previous marker, or 0).
    pub start_s: f64,
    /// End: the phase marker's time.
    pub end_s: f64,
}

/// Turns marker times into consecutive segments. A marker earlier than the
/// one before it (possible for medians of different runs) gets an empty
/// segment instead of a negative one.
pub fn segments(phases: &[(String, f64)]) -> Vec<Segment> {
    let mut prev = 0.0_f64;
    phases
        .iter()
        .map(|(name, at)| {
            let start = prev;
            let end = at.max(start);
            prev = end;
            Segment {
                phase: name.clone(),
                start_s: start,
                end_s: end,
            }
        })
        .collect()
}

/// A fixed colour per phase name: the runner's phases in their order, then
/// unknown names by a stable hash.
pub fn phase_colour(phase: &str) -> &'static str {
    const PALETTE: &[&str] = &[
        "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
        "#9c755f", "#bab0ac",
    ];
    let index = crate::markers::PHASES
        .iter()
        .position(|(name, _, _)| *name == phase)
        .unwrap_or_else(|| {
            phase
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
        });
    PALETTE[index % PALETTE.len()]
}

fn segment_rect(seg: &Segment, x0: f64, y: f64, height: f64, px_per_s: f64) -> Rectangle {
    Rectangle::new()
        .set("x", round(x0 + seg.start_s * px_per_s))
        .set("y", y)
        .set("width", round((seg.end_s - seg.start_s) * px_per_s))
        .set("height", height)
        .set("fill", phase_colour(&seg.phase))
        .set("class", "phase")
        .set("data-phase", seg.phase.as_str())
        .set("data-at", format!("{:.3}", seg.end_s))
        .add(Title::new(format!(
            "{}: {:.3} s (+{:.3} s)",
            seg.phase,
            seg.end_s,
            seg.end_s - seg.start_s
        )))
}

fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The timeline of one run: one bar of phase segments over `total_s`
/// seconds (at least the last marker), each labelled when wide enough, with
/// a scale under it.
pub fn timeline(phases: &[(String, f64)], total_s: f64) -> String {
    const WIDTH: f64 = 960.0;
    const BAR_Y: f64 = 8.0;
    const BAR_H: f64 = 28.0;
    let segs = segments(phases);
    let span = segs
        .last()
        .map(|s| s.end_s)
        .unwrap_or(0.0)
        .max(total_s)
        .max(0.001);
    let px = WIDTH / span;
    let mut doc = Document::new()
        .set("viewBox", (0, 0, WIDTH + 20.0, 80))
        .set("width", WIDTH + 20.0)
        .set("height", 80)
        .set("class", "timeline")
        .set("role", "img")
        .set("aria-label", "boot phase timeline");
    doc = doc.add(
        Rectangle::new()
            .set("x", 10)
            .set("y", BAR_Y)
            .set("width", WIDTH)
            .set("height", BAR_H)
            .set("fill", "#eeeeee"),
    );
    for seg in &segs {
        let mut g = Group::new().add(segment_rect(seg, 10.0, BAR_Y, BAR_H, px));
        let w = (seg.end_s - seg.start_s) * px;
        if w > 60.0 {
            g = g.add(
                Text::new(short_name(&seg.phase))
                    .set("x", round(10.0 + seg.start_s * px + 4.0))
                    .set("y", BAR_Y + BAR_H / 2.0 + 4.0)
                    .set("font-size", 11)
                    .set("font-family", "sans-serif")
                    .set("fill", "#ffffff"),
            );
        }
        doc = doc.add(g);
    }
    // Scale: a tick every `step` seconds.
    let step = tick_step(span);
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let x = round(10.0 + t * px);
        doc = doc
            .add(
                Rectangle::new()
                    .set("x", x)
                    .set("y", BAR_Y + BAR_H)
                    .set("width", 1)
                    .set("height", 5)
                    .set("fill", "#555555"),
            )
            .add(
                Text::new(format!("{t:.0} s"))
                    .set("x", x)
                    .set("y", BAR_Y + BAR_H + 18.0)
                    .set("font-size", 10)
                    .set("font-family", "sans-serif")
                    .set("text-anchor", "middle")
                    .set("fill", "#333333"),
            );
        t += step;
    }
    doc.to_string()
}

/// Seconds between scale ticks so that there are at most ~12.
fn tick_step(span: f64) -> f64 {
    [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]
        .into_iter()
        .find(|s| span / s <= 12.0)
        .unwrap_or(600.0)
}

/// The label shown inside a segment: the phase name without its verb
/// (`first kernel at /init` → `first kernel`).
fn short_name(phase: &str) -> String {
    phase
        .trim_end_matches(" loaded")
        .trim_end_matches(" at /init")
        .trim_end_matches(" found")
        .trim_end_matches(" fetched")
        .to_string()
}

/// The small bar of an index row: the phases over `scale_s` seconds (the
/// longest run of the index, so rows compare), 240×14 px, no text.
pub fn mini_bar(phases: &[(String, f64)], total_s: f64, scale_s: f64) -> String {
    const WIDTH: f64 = 240.0;
    const HEIGHT: f64 = 14.0;
    let px = WIDTH / scale_s.max(total_s).max(0.001);
    let mut doc = Document::new()
        .set("viewBox", (0, 0, WIDTH, HEIGHT))
        .set("width", WIDTH)
        .set("height", HEIGHT)
        .set("class", "minibar")
        .add(
            Rectangle::new()
                .set("x", 0)
                .set("y", 0)
                .set("width", round(total_s * px))
                .set("height", HEIGHT)
                .set("fill", "#dddddd"),
        );
    for seg in segments(phases) {
        doc = doc.add(segment_rect(&seg, 0.0, 0.0, HEIGHT, px));
    }
    doc.to_string()
}

/// One flavour of the `bench` chart: a name (`chain`, `firmware-direct`,
/// a chain flavour) and its phase medians as marker times, in boot order.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchFlavour {
    /// Shown at the left of its bar.
    pub name: String,
    /// (phase name, median seconds since QEMU started), in boot order.
    pub phases: Vec<(String, f64)>,
}

/// The `bench` chart: one stacked bar per flavour on a common scale, the
/// total at the bar's end, and a legend of the phases. Flavours are drawn
/// in the order given (put the firmware-direct reference first or last).
pub fn bench_chart(flavours: &[BenchFlavour]) -> String {
    const LABEL_W: f64 = 170.0;
    const BAR_W: f64 = 640.0;
    const ROW_H: f64 = 34.0;
    const BAR_H: f64 = 22.0;
    const TOP: f64 = 30.0;
    let span = flavours
        .iter()
        .filter_map(|f| segments(&f.phases).last().map(|s| s.end_s))
        .fold(0.0_f64, f64::max)
        .max(0.001);
    let px = BAR_W / span;
    // Legend: every phase name once, in boot order (the runner's phases,
    // then unknown names as first seen).
    let mut legend: Vec<String> = Vec::new();
    for f in flavours {
        for (p, _) in &f.phases {
            if !legend.contains(p) {
                legend.push(p.clone());
            }
        }
    }
    legend.sort_by_key(|p| {
        crate::markers::PHASES
            .iter()
            .position(|(name, _, _)| name == p)
            .unwrap_or(usize::MAX)
    });
    let legend_rows = legend.len().div_ceil(3);
    let height = TOP + ROW_H * flavours.len() as f64 + 30.0 + 18.0 * legend_rows as f64;
    let width = LABEL_W + BAR_W + 90.0;
    let mut doc = Document::new()
        .set("viewBox", (0.0, 0.0, width, height))
        .set("width", width)
        .set("height", height)
        .set("class", "bench-chart")
        .add(
            Rectangle::new()
                .set("width", width)
                .set("height", height)
                .set("fill", "#ffffff"),
        )
        .add(
            Text::new("boot phases, median seconds since QEMU start")
                .set("x", 10)
                .set("y", 18)
                .set("font-size", 13)
                .set("font-family", "sans-serif")
                .set("font-weight", "bold"),
        );
    for (i, f) in flavours.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let segs = segments(&f.phases);
        let total = segs.last().map(|s| s.end_s).unwrap_or(0.0);
        let mut g = Group::new()
            .set("class", "flavour")
            .set("data-flavour", f.name.as_str())
            .set("data-total", format!("{total:.3}"))
            .add(
                Text::new(f.name.as_str())
                    .set("x", LABEL_W - 8.0)
                    .set("y", y + BAR_H / 2.0 + 4.0)
                    .set("font-size", 12)
                    .set("font-family", "sans-serif")
                    .set("text-anchor", "end"),
            );
        for seg in &segs {
            g = g.add(segment_rect(seg, LABEL_W, y, BAR_H, px));
        }
        g = g.add(
            Text::new(format!("{total:.2} s"))
                .set("x", round(LABEL_W + total * px + 6.0))
                .set("y", y + BAR_H / 2.0 + 4.0)
                .set("font-size", 12)
                .set("font-family", "sans-serif"),
        );
        doc = doc.add(g);
    }
    let legend_y = TOP + ROW_H * flavours.len() as f64 + 14.0;
    for (i, p) in legend.iter().enumerate() {
        let x = 10.0 + 260.0 * (i % 3) as f64;
        let y = legend_y + 18.0 * (i / 3) as f64;
        doc = doc
            .add(
                Rectangle::new()
                    .set("x", x)
                    .set("y", y)
                    .set("width", 12)
                    .set("height", 12)
                    .set("fill", phase_colour(p)),
            )
            .add(
                Text::new(p.as_str())
                    .set("x", x + 18.0)
                    .set("y", y + 10.0)
                    .set("font-size", 11)
                    .set("font-family", "sans-serif"),
            );
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phases(v: &[(&str, f64)]) -> Vec<(String, f64)> {
        v.iter().map(|(n, t)| (n.to_string(), *t)).collect()
    }

    #[test]
    fn segments_run_from_marker_to_marker_and_never_backwards() {
        let s = segments(&phases(&[("a", 1.0), ("b", 3.5), ("c", 3.0)]));
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].start_s, s[0].end_s), (0.0, 1.0));
        assert_eq!((s[1].start_s, s[1].end_s), (1.0, 3.5));
        assert_eq!((s[2].start_s, s[2].end_s), (3.5, 3.5));
    }

    /// Parses the chart with a real XML parser and reads back each
    /// flavour's total and per-phase marker times.
    #[test]
    fn bench_chart_holds_every_flavours_numbers() {
        let flavours = vec![
            BenchFlavour {
                name: "firmware-direct".into(),
                phases: phases(&[("firmware loaded", 0.2), ("target up", 2.15)]),
            },
            BenchFlavour {
                name: "chain <debian>".into(),
                phases: phases(&[
                    ("firmware loaded", 0.21),
                    ("first kernel at /init", 2.19),
                    ("lease", 2.64),
                    ("target up", 7.62),
                ]),
            },
        ];
        let text = bench_chart(&flavours);
        let doc = roxmltree::Document::parse(&text).expect("chart is well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let groups: Vec<_> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("flavour"))
            .collect();
        assert_eq!(groups.len(), 2);
        for (g, f) in groups.iter().zip(&flavours) {
            assert_eq!(g.attribute("data-flavour"), Some(f.name.as_str()));
            let total = f.phases.last().map(|p| p.1).unwrap_or(0.0);
            assert_eq!(
                g.attribute("data-total"),
                Some(format!("{total:.3}").as_str())
            );
            let rects: Vec<(String, String)> = g
                .descendants()
                .filter(|n| n.has_tag_name("rect"))
                .map(|n| {
                    (
                        n.attribute("data-phase").unwrap_or("").to_string(),
                        n.attribute("data-at").unwrap_or("").to_string(),
                    )
                })
                .collect();
            let want: Vec<(String, String)> = f
                .phases
                .iter()
                .map(|(n, t)| (n.clone(), format!("{t:.3}")))
                .collect();
            assert_eq!(rects, want);
        }
        // The bars share one scale: the longest flavour fills the bar width.
        let widths: Vec<f64> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("flavour"))
            .map(|g| {
                g.descendants()
                    .filter(|n| n.has_tag_name("rect"))
                    .filter_map(|n| n.attribute("width")?.parse::<f64>().ok())
                    .sum()
            })
            .collect();
        assert!((widths[1] - 640.0).abs() < 0.1, "{widths:?}");
        assert!((widths[0] - 640.0 * 2.15 / 7.62).abs() < 0.1, "{widths:?}");
        // The name with markup characters is text, not markup.
        assert!(doc
            .descendants()
            .any(|n| n.is_text() && n.text().is_some_and(|t| t.contains("chain <debian>"))));
    }

    #[test]
    fn timeline_has_one_rect_per_phase_with_its_time() {
        let p = phases(&[("firmware loaded", 0.25), ("target up", 7.5)]);
        let text = timeline(&p, 8.0);
        let doc = roxmltree::Document::parse(&text).unwrap();
        let got: Vec<_> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("phase"))
            .map(|n| {
                (
                    n.attribute("data-phase").unwrap().to_string(),
                    n.attribute("data-at").unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("firmware loaded".to_string(), "0.250".to_string()),
                ("target up".to_string(), "7.500".to_string())
            ]
        );
    }
}
