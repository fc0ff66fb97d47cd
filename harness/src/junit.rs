//! JUnit XML for `netboot-harness run --junit FILE`, for CI systems that
//! read test results outside nextest (which writes its own). Written with
//! `quick-junit`, the crate nextest itself uses, so both files have the
//! same shape: one `<testsuite name="netboot-harness">`, one `<testcase>`
//! per scenario variant with its wall time, and a `<failure>` carrying the
//! runner's failure report. It only renders; it must not run anything.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// The outcome of one scenario variant.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Variant name (`<file stem>[.<mode>]`).
    pub name: String,
    /// Wall time of the run.
    pub time: Duration,
    /// None when it passed; else the first line (message) and the whole
    /// failure report (step, console tail, artifact directory).
    pub failure: Option<(String, String)>,
}

/// Renders the JUnit document for `cases`.
pub fn render(cases: &[CaseResult]) -> Result<String, quick_junit::SerializeError> {
    let mut suite = TestSuite::new("netboot-harness");
    let mut total = Duration::ZERO;
    for c in cases {
        let status = match &c.failure {
            None => TestCaseStatus::success(),
            Some((message, report)) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(message.as_str())
                    .set_type("scenario failure")
                    .set_description(report.as_str());
                s
            }
        };
        let mut case = TestCase::new(c.name.as_str(), status);
        case.set_classname("boot").set_time(c.time);
        suite.add_test_case(case);
        total += c.time;
    }
    suite.set_time(total);
    let mut report = Report::new("netboot-harness");
    report.set_time(total).add_test_suite(suite);
    report.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_testcase_per_run_with_failure_details() {
        let xml = render(&[
            CaseResult {
                name: "mac-file".into(),
                time: Duration::from_millis(7250),
                failure: None,
            },
            CaseResult {
                name: "labels.inprocess".into(),
                time: Duration::from_millis(3500),
                failure: Some((
                    "step 2/3 expecting /TARGET-UP/: timed out".into(),
                    "scenario labels: step 2/3 ... <console> & more".into(),
                )),
            },
        ])
        .unwrap();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let cases: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].attribute("name"), Some("mac-file"));
        assert_eq!(cases[0].attribute("time"), Some("7.250"));
        assert!(!cases[0].children().any(|n| n.has_tag_name("failure")));
        let failure = cases[1]
            .children()
            .find(|n| n.has_tag_name("failure"))
            .expect("failure element");
        assert_eq!(
            failure.attribute("message"),
            Some("step 2/3 expecting /TARGET-UP/: timed out")
        );
        assert_eq!(
            failure.text(),
            Some("scenario labels: step 2/3 ... <console> & more")
        );
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        assert_eq!(suite.attribute("tests"), Some("2"));
        assert_eq!(suite.attribute("failures"), Some("1"));
    }
}
