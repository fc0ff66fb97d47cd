//! The reports of a run, read back with real parsers (scraper's HTML5
//! parser, roxmltree for SVG and JUnit XML): `report.html` holds the numbers
//! of `result.txt` (phase and step times, in its tables and its timeline
//! SVG), highlights each matched console line, puts a failure's reason on
//! top and links the logs; `index.html` lists both runs with their verdict,
//! duration and phase bars; `run --junit` writes one testcase per run.

mod support;

use netboot_harness::report::{RunRecord, INDEX_HTML, REPORT_HTML, REPORT_JSON};
use scraper::{ElementRef, Html, Selector};
use std::path::Path;
use support::*;

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("selector {s}: {e:?}"))
}

fn text(e: ElementRef<'_>) -> String {
    e.text().collect::<String>().trim().to_string()
}

/// `result.txt`'s step and phase lines: (`{:.3}` seconds, pattern/name).
struct ResultTxt {
    verdict_line: String,
    steps: Vec<(String, String)>,
    phases: Vec<(String, String)>,
}

fn read_result_txt(dir: &Path) -> ResultTxt {
    let t = std::fs::read_to_string(dir.join("result.txt")).expect("result.txt");
    let mut r = ResultTxt {
        verdict_line: t.lines().next().unwrap_or_default().to_string(),
        steps: Vec::new(),
        phases: Vec::new(),
    };
    for line in t.lines() {
        let mut words = line.split_whitespace();
        let (Some(kind), Some(secs), Some("s")) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let rest = words.collect::<Vec<_>>().join(" ");
        match kind {
            "step" => r
                .steps
                .push((secs.to_string(), rest.trim_matches('/').to_string())),
            "phase" => r.phases.push((secs.to_string(), rest)),
            _ => {}
        }
    }
    r
}

/// Checks `report.html` of `dir` against its `result.txt`; returns the
/// parsed page.
fn check_report(dir: &Path) -> Html {
    let result = read_result_txt(dir);
    assert!(
        !result.steps.is_empty() && !result.phases.is_empty(),
        "{}: result.txt has no step or phase to compare",
        dir.display()
    );
    let html = std::fs::read_to_string(dir.join(REPORT_HTML)).expect("report.html written");
    let page = Html::parse_document(&html);
    assert!(
        page.errors.is_empty(),
        "HTML parse errors: {:?}",
        page.errors
    );

    // Phase table = result.txt's phase lines.
    let rows: Vec<(String, String)> = page
        .select(&sel("#phases tr.phase"))
        .map(|tr| {
            let name = tr
                .select(&sel("span.name"))
                .next()
                .map(text)
                .unwrap_or_default();
            let at = tr
                .select(&sel("td.at"))
                .next()
                .map(text)
                .unwrap_or_default();
            (at, name)
        })
        .collect();
    assert_eq!(rows, result.phases, "{}", dir.display());

    // The timeline is well-formed SVG with one segment per phase, same numbers.
    let timeline = page
        .select(&sel("#timeline svg"))
        .next()
        .expect("timeline svg");
    let svg_text = timeline.html();
    let svg = roxmltree::Document::parse(&svg_text).expect("timeline is valid XML");
    let segs: Vec<(String, String)> = svg
        .descendants()
        .filter(|n| n.attribute("class") == Some("phase"))
        .map(|n| {
            (
                n.attribute("data-at").unwrap_or_default().to_string(),
                n.attribute("data-phase").unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(segs, result.phases);

    // Step table: matched steps carry result.txt's times, and each links to
    // a highlighted console line whose text matches the step's pattern.
    let matched: Vec<(String, String, String)> = page
        .select(&sel("#steps tr.step"))
        .filter(|tr| !tr.value().classes().any(|c| c == "notreached"))
        .map(|tr| {
            let pattern = tr.select(&sel("code")).next().map(text).unwrap_or_default();
            let a = tr.select(&sel("td.at a")).next().expect("step link");
            (
                text(a),
                pattern,
                a.value().attr("href").unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(matched.len(), result.steps.len());
    assert_eq!(
        matched
            .iter()
            .map(|(t, p, _)| (t.clone(), p.clone()))
            .collect::<Vec<_>>(),
        result.steps
    );
    for (i, (at, pattern, href)) in matched.iter().enumerate() {
        let id = href.trim_start_matches('#');
        let line = page
            .select(&sel(&format!("#console span.line#{id}")))
            .next()
            .unwrap_or_else(|| panic!("no console line {href}"));
        assert!(
            line.value().classes().any(|c| c == "match"),
            "line {href} not highlighted"
        );
        let badge = format!("step {} @ {at} s", i + 1);
        assert!(
            line.select(&sel("span.badge")).any(|b| text(b) == badge),
            "line {href} has no badge {badge:?}"
        );
        // The line's own text (without time and badge) matches the step
        // (single-line patterns only).
        if !pattern.contains("\\n") {
            let own: String = line
                .children()
                .filter_map(|c| c.value().as_text().map(|t| t.to_string()))
                .collect();
            let re = regex::Regex::new(&format!("(?m){pattern}")).expect("step regex");
            assert!(re.is_match(own.trim_start()), "{own:?} !~ /{pattern}/");
        }
    }

    // Links to the logs, each to a file that exists.
    let links: Vec<String> = page
        .select(&sel("#links a"))
        .filter_map(|a| a.value().attr("href").map(str::to_string))
        .collect();
    for f in [
        "console.log",
        "result.txt",
        "qemu-cmdline.sh",
        "qemu.log",
        "qmp.log",
    ] {
        assert!(links.iter().any(|l| l == f), "no link to {f}: {links:?}");
    }
    for l in &links {
        assert!(dir.join(l).exists(), "link {l} points nowhere");
    }

    // The verdict box is the first thing after the title and description.
    let verdict = page.select(&sel("#verdict")).next().expect("verdict");
    let want = if result.verdict_line.starts_with("PASS") {
        "pass"
    } else {
        "fail"
    };
    assert!(verdict.value().classes().any(|c| c == want));
    page
}

#[test]
fn reports_hold_the_numbers_of_result_txt() {
    let dir = tempfile::tempdir().expect("dir");
    let pass = scenario_file(
        dir.path(),
        "report-netboot",
        r#"description = "report self-test: a netboot with every phase"
[network]
mode = "slirp"
[tftp]
"pxelinux.0" = "@pxelinux"
"vmlinuz" = "@target-kernel"
"initrd.gz" = "@target-initrd"
"pxelinux.cfg/default" = """
DEFAULT one
LABEL one
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttysclp0 quiet panic=-1 report=<yes>
"""
[[step]]
expect = '^S390-PXELINUX: config pxelinux.cfg/default'
[[step]]
expect = '^TARGET-UP cmdline=.*report=<yes>$'
[[step]]
expect = '^TARGET-INITRDS target last=target$'
"#,
    );
    let fail = scenario_file(
        dir.path(),
        "report-fail",
        &direct_boot(
            "",
            "[[step]]\nexpect = '^TARGET-UP'\n[[step]]\nexpect = 'never printed'\ntimeout = 1\n",
        ),
    );
    let junit = dir.path().join("junit.xml");
    let token = unique_token();
    let child = harness_command(
        &token,
        &[
            "run",
            path_str(&pass),
            path_str(&fail),
            "--junit",
            path_str(&junit),
        ],
    )
    .spawn()
    .expect("netboot-harness run");
    let (ok, output) = finished(child);
    assert!(!ok, "report-fail must fail the command:\n{output}");
    assert_no_process_left(&token);

    let root = netboot_harness::artifacts::artifacts_root();
    let pass_page = check_report(&root.join("report-netboot"));
    // A netboot passes through every phase up to the target.
    let phases: Vec<String> = pass_page
        .select(&sel("#phases span.name"))
        .map(text)
        .collect();
    for p in [
        "pxelinux.0 loaded",
        "first kernel at /init",
        "lease",
        "config found",
        "files fetched",
        "kexec",
        "target up",
    ] {
        assert!(phases.iter().any(|x| x == p), "no phase {p}: {phases:?}");
    }
    // Console text with markup characters is text, not markup.
    assert!(pass_page
        .select(&sel("#console span.line"))
        .any(|l| text(l).contains("report=<yes>")));

    let fail_page = check_report(&root.join("report-fail"));
    let reason = fail_page
        .select(&sel("#failure"))
        .next()
        .map(text)
        .unwrap_or_default();
    assert!(
        reason.contains("step 2/2 expecting /never printed/: timed out"),
        "{reason}"
    );
    // The step that did not match is listed as such.
    assert_eq!(fail_page.select(&sel("#steps tr.notreached")).count(), 1);

    // The index lists both runs with their verdict, duration and phases.
    let index =
        Html::parse_document(&std::fs::read_to_string(root.join(INDEX_HTML)).expect("index.html"));
    assert!(index.errors.is_empty(), "{:?}", index.errors);
    for (name, verdict) in [("report-netboot", "PASS"), ("report-fail", "FAIL")] {
        let record: RunRecord = serde_json::from_slice(
            &std::fs::read(root.join(name).join(REPORT_JSON)).expect("report.json"),
        )
        .expect("valid report.json");
        let row = index
            .select(&sel(&format!("tr.run[data-scenario=\"{name}\"]")))
            .next()
            .unwrap_or_else(|| panic!("no index row for {name}"));
        assert_eq!(row.value().attr("data-verdict"), Some(verdict));
        let duration = format!("{:.1}", record.duration_s);
        assert_eq!(row.value().attr("data-duration"), Some(duration.as_str()));
        assert_eq!(
            row.select(&sel("td.duration")).next().map(text).as_deref(),
            Some(duration.as_str())
        );
        let link = row
            .select(&sel("a"))
            .next()
            .and_then(|a| a.value().attr("href"));
        assert_eq!(link, Some(format!("{name}/report.html").as_str()));
        let bar = row.select(&sel("svg")).next().expect("phase bar").html();
        let bar = roxmltree::Document::parse(&bar).expect("bar is valid XML");
        let at: Vec<String> = bar
            .descendants()
            .filter(|n| n.attribute("class") == Some("phase"))
            .filter_map(|n| n.attribute("data-at").map(str::to_string))
            .collect();
        let want: Vec<String> = record
            .phases
            .iter()
            .map(|(_, t)| format!("{t:.3}"))
            .collect();
        assert_eq!(at, want, "{name}");
    }

    // run --junit: one testcase per run, the failure with its reason.
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    let doc = roxmltree::Document::parse(&xml).expect("junit is valid XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(
        cases
            .iter()
            .map(|c| c.attribute("name").unwrap_or_default())
            .collect::<Vec<_>>(),
        ["report-netboot", "report-fail"]
    );
    assert!(!cases[0].children().any(|n| n.has_tag_name("failure")));
    let failure = cases[1]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("failure element");
    assert!(failure
        .attribute("message")
        .is_some_and(|m| m.contains("never printed")));
}
